// Normalization rules for ops whose semantics changed between opsets 7 and 21.
#include <algorithm>
#include <cctype>
#include <cstring>

#include "onnx/normalize_rules.hpp"

namespace kiln::onnx_import {

namespace {

// Softmax/LogSoftmax/Hardmax before 13 coerce the input to 2-D at `axis` (default 1) and normalize
// each row. Exact rewrite: Flatten(axis) -> op(axis=-1) -> Reshape to the input's shape. When the
// rank is known and `axis` is the last one, the coercion changes nothing and axis=-1 suffices.
Status softmax_coerced(Rewriter& rw, Node& n) {
  if (!n.has_input(0) || !n.has_output(0)) return node_error(n, "needs an input and an output");
  int64_t axis = n.attrs.i("axis", 1);
  TensorType in = rw.type(n.inputs[0]);
  if (in.shape.has_rank()) {
    const auto rank = static_cast<int64_t>(in.shape.rank());
    if (axis < -rank || axis >= std::max<int64_t>(rank, 1))
      return node_error(n, "axis {} is out of range for rank {}", axis, rank);
    if ((axis < 0 ? axis + rank : axis) >= rank - 1) {
      n.attrs.set("axis", int64_t{-1});
      return Status::Ok();
    }
  }
  Value* x = n.inputs[0];
  Value* y = n.outputs[0];
  Attributes flatten;
  flatten.set("axis", axis);
  Value* flat = rw.new_value(n, "flat");
  rw.add_before(n, "Flatten", {x}, {flat}, flatten);
  Value* shape = rw.new_value(n, "shape");
  rw.add_before(n, "Shape", {x}, {shape});
  Value* rows = rw.new_value(n, "rows");
  n.inputs[0] = flat;
  Rewriter::set_output(n, 0, rows);
  n.attrs.set("axis", int64_t{-1});
  rw.add_after(n, "Reshape", {rows, shape}, {y});
  return Status::Ok();
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

// Upsample (every version) -> Resize-13 with a scales input. Upsample's output index is
// x_in = x_out / scale (Resize's "asymmetric"), rounded down in nearest mode.
Status upsample_to_resize(Rewriter& rw, Node& n) {
  std::string mode = lower(n.attrs.s("mode", "nearest"));
  if (mode == "bilinear" || mode == "trilinear") mode = "linear";
  if (mode != "nearest" && mode != "linear") return node_error(n, "unknown Upsample mode '{}'", mode);
  Value* scales = nullptr;
  if (n.opset < 7) {  // height_scale/width_scale on a 4-D input
    const float* h = n.attrs.get_ptr<float>("height_scale");
    const float* w = n.attrs.get_ptr<float>("width_scale");
    if (!h || !w) return node_error(n, "Upsample-1 needs height_scale and width_scale");
    scales = rw.new_constant(n, "scales", float_vector({1.f, 1.f, *h, *w}));
  } else if (n.opset < 9) {
    const auto* s = n.attrs.get_ptr<std::vector<float>>("scales");
    if (!s) return node_error(n, "Upsample-7 needs the 'scales' attribute");
    scales = rw.new_constant(n, "scales", float_vector(*s));
  } else {
    if (!n.has_input(1)) return node_error(n, "Upsample needs a scales input");
    scales = n.inputs[1];
  }
  for (const char* a : {"height_scale", "width_scale", "scales"}) n.attrs.erase(a);
  n.op_type = "Resize";
  n.inputs = {n.inputs.empty() ? nullptr : n.inputs[0], nullptr, scales};
  n.attrs.set("mode", mode);
  n.attrs.set("coordinate_transformation_mode", std::string("asymmetric"));
  n.attrs.set("nearest_mode", std::string("floor"));
  return Status::Ok();
}

// Resize-10 (X, scales) had Upsample's semantics: -> (X, roi absent, scales), asymmetric, floor.
Status resize10(Rewriter&, Node& n) {
  if (n.inputs.size() != 2) return node_error(n, "Resize-10 takes 2 inputs (X, scales)");
  n.inputs = {n.inputs[0], nullptr, n.inputs[1]};
  n.attrs.set("mode", n.attrs.s("mode", "nearest"));
  n.attrs.set("coordinate_transformation_mode", std::string("asymmetric"));
  n.attrs.set("nearest_mode", std::string("floor"));
  return Status::Ok();
}

// Resize-11's tf_half_pixel_for_nn (gone in 13) maps x_out to (x_out + 0.5) / scale, which is
// half_pixel's coordinate plus 0.5: rounding that with round_prefer_floor is ceil() of the
// half_pixel coordinate, and floor() of it is round_prefer_ceil.
Status resize11_modes(Rewriter&, Node& n) {
  if (n.attrs.s("coordinate_transformation_mode") != "tf_half_pixel_for_nn") return Status::Ok();
  std::string nearest = n.attrs.s("nearest_mode", "round_prefer_floor");
  std::string mapped = nearest == "round_prefer_floor" ? "ceil" : nearest == "floor" ? "round_prefer_ceil" : "";
  if (mapped.empty() || n.attrs.s("mode", "nearest") != "nearest")
    return node_unsupported(n, "coordinate_transformation_mode tf_half_pixel_for_nn with mode '{}' and "
                               "nearest_mode '{}' has no opset-13 equivalent",
                            n.attrs.s("mode", "nearest"), nearest);
  n.attrs.set("coordinate_transformation_mode", std::string("half_pixel"));
  n.attrs.set("nearest_mode", mapped);
  return Status::Ok();
}

// Resize-11 required roi and scales even when unused (empty tensors): absent inputs since 13.
Status resize_optional_inputs(Rewriter&, Node& n) {
  auto empty_const = [&](size_t i) {
    const Tensor* t = Rewriter::constant(n.has_input(i) ? n.inputs[i] : nullptr);
    return t && t->numel() == 0;
  };
  const bool crop = n.attrs.s("coordinate_transformation_mode") == "tf_crop_and_resize";
  if (n.has_input(1) && (empty_const(1) || (!crop && Rewriter::constant(n.inputs[1]))))
    Rewriter::set_input(n, 1, nullptr);  // roi only matters for tf_crop_and_resize
  if (n.has_input(2) && empty_const(2) && n.has_input(3)) Rewriter::set_input(n, 2, nullptr);
  return Status::Ok();
}

// Scatter (9, deprecated in 11) is ScatterElements.
Status scatter_elements(Rewriter&, Node& n) {
  n.op_type = "ScatterElements";
  return Status::Ok();
}

// BatchNormalization before 14 computed batch statistics when its extra outputs were used
// (training); unused ones are dropped, used ones cannot be run by an inference engine.
Status batchnorm_outputs(Rewriter& rw, Node& n) {
  for (size_t i = 1; i < n.outputs.size(); ++i) {
    Value* v = n.outputs[i];
    if (!v) continue;
    bool used = !rw.graph().consumers(v).empty() ||
                std::find(rw.graph().outputs.begin(), rw.graph().outputs.end(), v) != rw.graph().outputs.end();
    if (used)
      return node_unsupported(n, "output {} ('{}') makes this a training-mode BatchNormalization", i, v->name);
  }
  for (size_t i = 1; i < n.outputs.size(); ++i)
    if (n.outputs[i]) n.outputs[i]->producer = nullptr;
  n.outputs.resize(1);
  return Status::Ok();
}

// BatchNormalization `spatial` (< 9): spatial=0 has per-activation statistics of shape
// (C, D1, ...), which broadcast against (N, C, D1, ...): an exact elementwise rewrite.
Status batchnorm_spatial(Rewriter& rw, Node& n) {
  int64_t spatial = n.attrs.i("spatial", 1);
  n.attrs.erase("spatial");
  if (spatial != 0) return Status::Ok();
  if (n.inputs.size() != 5 || !n.has_input(0) || !n.has_input(1) || !n.has_input(2) || !n.has_input(3) ||
      !n.has_input(4))
    return node_error(n, "BatchNormalization needs 5 inputs");
  Value *x = n.inputs[0], *scale = n.inputs[1], *bias = n.inputs[2], *mean = n.inputs[3], *var = n.inputs[4];
  float eps = n.attrs.f("epsilon", 1e-5f);
  Value* centered = rw.new_value(n, "centered");
  rw.add_before(n, "Sub", {x, mean}, {centered});
  Value* eps_v = rw.scalar_like(n, "epsilon", eps, var);
  Value* var_eps = rw.new_value(n, "var_eps");
  rw.add_before(n, "Add", {var, eps_v}, {var_eps});
  Value* stddev = rw.new_value(n, "stddev");
  rw.add_before(n, "Sqrt", {var_eps}, {stddev});
  Value* normed = rw.new_value(n, "normalized");
  rw.add_before(n, "Div", {centered, stddev}, {normed});
  Value* scaled = rw.new_value(n, "scaled");
  rw.add_before(n, "Mul", {normed, scale}, {scaled});
  n.op_type = "Add";  // the node itself adds the bias
  n.inputs = {scaled, bias};
  n.attrs = Attributes();
  return Status::Ok();
}

// GridSample-16's bilinear/bicubic are called linear/cubic since 20.
Status gridsample_modes(Rewriter&, Node& n) {
  std::string mode = n.attrs.s("mode", "bilinear");
  n.attrs.set("mode", std::string(mode == "bilinear" ? "linear" : mode == "bicubic" ? "cubic" : mode));
  return Status::Ok();
}

// GroupNormalization-18 takes scale/bias per group; 21 per channel: repeat each group's value
// over its C / num_groups channels (needs constant scale/bias and a known channel count).
Status groupnorm_per_channel(Rewriter& rw, Node& n) {
  const int64_t groups = n.attrs.i("num_groups", 0);
  TensorType x = rw.type(n.inputs.empty() ? nullptr : n.inputs[0]);
  const Tensor* scale = Rewriter::constant(n.has_input(1) ? n.inputs[1] : nullptr);
  const Tensor* bias = Rewriter::constant(n.has_input(2) ? n.inputs[2] : nullptr);
  if (!scale || !bias || !x.shape.has_rank() || x.shape.rank() < 2 || !x.shape[1].known() || groups <= 0)
    return node_unsupported(n, "GroupNormalization before opset 21 needs constant scale and bias and a known "
                               "channel count");
  const int64_t channels = x.shape[1].value;
  if (channels % groups != 0 || scale->numel() != groups || bias->numel() != groups)
    return node_error(n, "{} channels, num_groups {}, scale {} and bias {} do not match", channels, groups,
                      scale->describe(), bias->describe());
  for (size_t i : {size_t{1}, size_t{2}}) {
    const Tensor& per_group = *Rewriter::constant(n.inputs[i]);
    Tensor per_channel(per_group.dtype(), {channels});
    const size_t elem = dtype_size(per_group.dtype());
    for (int64_t c = 0; c < channels; ++c)
      std::memcpy(static_cast<char*>(per_channel.raw_data()) + c * elem,
                  static_cast<const char*>(per_group.raw_data()) + (c / (channels / groups)) * elem, elem);
    n.inputs[i] = rw.new_constant(n, i == 1 ? "scale" : "bias", std::move(per_channel));
  }
  return Status::Ok();
}

}  // namespace

const std::vector<NormalizeRule>& semantic_rules() {
  constexpr int kAll = 1000;  // every opset
  static const std::vector<NormalizeRule> rules = {
      {"Softmax", 13, softmax_coerced},
      {"LogSoftmax", 13, softmax_coerced},
      {"Hardmax", 13, softmax_coerced},
      {"Upsample", kAll, upsample_to_resize},
      {"Resize", 11, resize10},
      {"Resize", 13, resize11_modes},
      {"Resize", kAll, resize_optional_inputs},
      {"Scatter", kAll, scatter_elements},
      {"BatchNormalization", 14, batchnorm_outputs},
      {"BatchNormalization", 9, batchnorm_spatial},
      {"GridSample", 20, gridsample_modes},
      {"GroupNormalization", 21, groupnorm_per_channel},
  };
  return rules;
}

}  // namespace kiln::onnx_import
