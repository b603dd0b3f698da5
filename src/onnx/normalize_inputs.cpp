// Normalization rules for attributes that later opsets take as inputs.
#include "onnx/normalize_rules.hpp"

namespace kiln::onnx_import {

namespace {

// Reduce*(axes) -> Reduce*(data, axes): opset 18 (ReduceSum: 13). Absent axes stay absent: both
// forms then reduce over every axis (noop_with_empty_axes defaults to 0).
Status reduce_axes(Rewriter& rw, Node& n) {
  rw.ints_attr_to_input(n, "axes", 1);
  return Status::Ok();
}

// Squeeze/Unsqueeze(axes) -> (data, axes): opset 13.
Status squeeze_axes(Rewriter& rw, Node& n) {
  rw.ints_attr_to_input(n, "axes", 1);
  return Status::Ok();
}

// Split(split) -> Split(input, split): opset 13. Split-1 could already take `split` as input 1.
Status split_input(Rewriter& rw, Node& n) {
  if (n.attrs.has("split")) rw.ints_attr_to_input(n, "split", 1);
  if (n.opset < 2 && !n.attrs.has("axis")) n.attrs.set("axis", int64_t{0});
  return Status::Ok();
}

// Opset 18 needs `num_outputs` when `split` is absent (before, the output count implied it).
Status split_num_outputs(Rewriter&, Node& n) {
  if (!n.has_input(1) && !n.attrs.has("num_outputs"))
    n.attrs.set("num_outputs", static_cast<int64_t>(n.outputs.size()));
  return Status::Ok();
}

// Slice(starts, ends, axes) -> Slice(data, starts, ends, axes): opset 10.
Status slice_inputs(Rewriter& rw, Node& n) {
  if (!n.attrs.has("starts") || !n.attrs.has("ends"))
    return node_error(n, "Slice needs the 'starts' and 'ends' attributes before opset 10");
  rw.ints_attr_to_input(n, "starts", 1);
  rw.ints_attr_to_input(n, "ends", 2);
  rw.ints_attr_to_input(n, "axes", 3);
  return Status::Ok();
}

// Pad(pads|paddings, value) -> Pad(data, pads, constant_value): opset 11.
Status pad_inputs(Rewriter& rw, Node& n) {
  std::string attr = n.attrs.has("pads") ? "pads" : "paddings";  // Pad-1 called it `paddings`
  if (!n.attrs.has(attr)) return node_error(n, "Pad needs the 'pads' attribute before opset 11");
  rw.ints_attr_to_input(n, attr, 1);
  float value = n.attrs.f("value", 0.f);
  n.attrs.erase("value");
  if (value != 0.f) rw.set_input(n, 2, rw.scalar_like(n, "constant_value", value, n.inputs[0]));
  return Status::Ok();
}

// Clip(min, max) -> Clip(input, min, max): opset 11. An absent bound stays absent (no bound).
Status clip_inputs(Rewriter& rw, Node& n) {
  const float* lo = n.attrs.get_ptr<float>("min");
  const float* hi = n.attrs.get_ptr<float>("max");
  if (lo) rw.set_input(n, 1, rw.scalar_like(n, "min", *lo, n.inputs[0]));
  if (hi) rw.set_input(n, 2, rw.scalar_like(n, "max", *hi, n.inputs[0]));
  n.attrs.erase("min");
  n.attrs.erase("max");
  return Status::Ok();
}

// TopK(k) -> TopK(X, K): opset 10; K is a 1-element int64 tensor.
Status topk_input(Rewriter& rw, Node& n) {
  const int64_t* k = n.attrs.get_ptr<int64_t>("k");
  if (!k) return node_error(n, "TopK needs the 'k' attribute before opset 10");
  rw.set_input(n, 1, rw.new_constant(n, "k", int64_vector({*k})));
  n.attrs.erase("k");
  return Status::Ok();
}

// Reshape(shape) -> Reshape(data, shape): opset 5.
Status reshape_input(Rewriter& rw, Node& n) {
  if (!n.attrs.has("shape")) return node_error(n, "Reshape needs the 'shape' attribute before opset 5");
  rw.ints_attr_to_input(n, "shape", 1);
  return Status::Ok();
}

// Dropout: `is_test` (< 7) is dropped like ONNX's version converter does: later opsets have no
// training switch before 12, and kiln runs inference.
Status dropout_is_test(Rewriter&, Node& n) {
  n.attrs.erase("is_test");
  return Status::Ok();
}

// Dropout(ratio) -> Dropout(data, ratio): opset 12.
Status dropout_ratio(Rewriter& rw, Node& n) {
  if (const float* r = n.attrs.get_ptr<float>("ratio"))
    rw.set_input(n, 1, rw.new_constant(n, "ratio", Tensor::scalar<float>(*r)));
  n.attrs.erase("ratio");
  return Status::Ok();
}

// Dropout's mask had the data's type before opset 10 (bool since): cast it back.
Status dropout_mask(Rewriter& rw, Node& n) {
  if (!n.has_output(1)) return Status::Ok();
  Value* mask = n.outputs[1];
  Value* as_bool = rw.new_value(n, "mask_bool");
  Rewriter::set_output(n, 1, as_bool);
  rw.add_after(n, "CastLike", {as_bool, n.inputs[0]}, {mask});
  return Status::Ok();
}

// Tile(input, tiles, axis) -> Tile(input, repeats): opset 6. Needs constant tiles/axis and a
// known rank to build `repeats`.
Status tile_repeats(Rewriter& rw, Node& n) {
  if (n.inputs.size() != 3) return Status::Ok();  // already the 2-input form
  const Tensor* tiles = Rewriter::constant(n.inputs[1]);
  const Tensor* axis = Rewriter::constant(n.inputs[2]);
  TensorType in = rw.type(n.inputs[0]);
  if (!tiles || !axis || !in.shape.has_rank() || tiles->numel() != 1 || axis->numel() != 1)
    return node_unsupported(n, "Tile-1 (tiles, axis) needs constant tiles and axis and a known input rank");
  auto t = tiles->to_int64_vector();
  auto a = axis->to_int64_vector();
  if (!t || !a) return node_error(n, "Tile-1 tiles and axis must be integers");
  int64_t rank = static_cast<int64_t>(in.shape.rank());
  int64_t ax = (*a)[0] < 0 ? (*a)[0] + rank : (*a)[0];
  if (ax < 0 || ax >= rank) return node_error(n, "Tile axis {} is out of range for rank {}", (*a)[0], rank);
  std::vector<int64_t> repeats(static_cast<size_t>(rank), 1);
  repeats[static_cast<size_t>(ax)] = (*t)[0];
  n.inputs = {n.inputs[0], rw.new_constant(n, "repeats", int64_vector(repeats))};
  return Status::Ok();
}

// DFT(axis attr, default 1) -> DFT(input, dft_length, axis): opset 20 (whose default is -2).
Status dft_axis(Rewriter& rw, Node& n) {
  int64_t axis = n.attrs.i("axis", 1);
  n.attrs.erase("axis");
  rw.set_input(n, 2, rw.new_constant(n, "axis", Tensor::scalar<int64_t>(axis)));
  return Status::Ok();
}

}  // namespace

const std::vector<NormalizeRule>& attribute_to_input_rules() {
  static const std::vector<NormalizeRule> rules = {
      {"ReduceSum", 13, reduce_axes},
      {"ReduceL1", 18, reduce_axes},
      {"ReduceL2", 18, reduce_axes},
      {"ReduceLogSum", 18, reduce_axes},
      {"ReduceLogSumExp", 18, reduce_axes},
      {"ReduceMax", 18, reduce_axes},
      {"ReduceMean", 18, reduce_axes},
      {"ReduceMin", 18, reduce_axes},
      {"ReduceProd", 18, reduce_axes},
      {"ReduceSumSquare", 18, reduce_axes},
      {"Squeeze", 13, squeeze_axes},
      {"Unsqueeze", 13, squeeze_axes},
      {"Split", 13, split_input},
      {"Split", 18, split_num_outputs},
      {"Slice", 10, slice_inputs},
      {"Pad", 11, pad_inputs},
      {"Clip", 11, clip_inputs},
      {"TopK", 10, topk_input},
      {"Reshape", 5, reshape_input},
      {"Dropout", 7, dropout_is_test},
      {"Dropout", 10, dropout_mask},
      {"Dropout", 12, dropout_ratio},
      {"Tile", 6, tile_repeats},
      {"DFT", 20, dft_axis},
  };
  return rules;
}

}  // namespace kiln::onnx_import
