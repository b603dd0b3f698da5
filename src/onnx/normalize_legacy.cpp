// Normalization rules for forms from before opset 7 (ONNX 1.2 moved to numpy broadcasting).
#include <cmath>

#include "onnx/normalize_rules.hpp"
#include "onnx/proto_tensor.hpp"

namespace kiln::onnx_import {

namespace {

// Makes `v` (rank rb) rank rb + trailing by appending size-1 dims: a reshaped copy of a constant,
// else an Unsqueeze.
Value* append_unit_dims(Rewriter& rw, Node& n, Value* v, int64_t rb, int64_t trailing, const std::string& what) {
  if (const Tensor* c = Rewriter::constant(v)) {
    Dims dims = c->dims();
    dims.insert(dims.end(), static_cast<size_t>(trailing), 1);
    return rw.new_constant(n, what, c->reshaped(dims));
  }
  std::vector<int64_t> axes;
  for (int64_t i = 0; i < trailing; ++i) axes.push_back(rb + i);
  Value* out = rw.new_value(n, what);
  rw.add_before(n, "Unsqueeze", {v, rw.new_constant(n, what + "_axes", int64_vector(axes))}, {out});
  return out;
}

// Binary ops before 7: with broadcast=1, B is broadcast to A, aligned at `axis` of A when given
// (else at the trailing dims, like numpy). Aligning at `axis` = numpy after appending
// rank(A) - axis - rank(B) unit dims to B.
Status legacy_broadcast(Rewriter& rw, Node& n) {
  const int64_t broadcast = n.attrs.i("broadcast", 0);
  const int64_t* axis_attr = n.attrs.get_ptr<int64_t>("axis");
  const int64_t axis = axis_attr ? *axis_attr : 0;
  const bool has_axis = axis_attr != nullptr;
  n.attrs.erase("broadcast");
  n.attrs.erase("axis");
  if (!broadcast || !has_axis || !n.has_input(0) || !n.has_input(1)) return Status::Ok();
  TensorType a = rw.type(n.inputs[0]), b = rw.type(n.inputs[1]);
  if (!a.shape.has_rank() || !b.shape.has_rank())
    return node_unsupported(n, "legacy broadcasting (broadcast=1, axis={}) needs the ranks of both inputs, "
                               "which are not known at import", axis);
  const auto ra = static_cast<int64_t>(a.shape.rank()), rb = static_cast<int64_t>(b.shape.rank());
  const int64_t ax = axis < 0 ? axis + ra : axis;
  if (ax < 0 || ax + rb > ra)
    return node_error(n, "broadcast axis {} does not fit B of rank {} into A of rank {}", axis, rb, ra);
  const int64_t trailing = ra - ax - rb;
  if (trailing > 0) Rewriter::set_input(n, 1, append_unit_dims(rw, n, n.inputs[1], rb, trailing, "B_aligned"));
  return Status::Ok();
}

Status drop_broadcast(Rewriter&, Node& n) {
  n.attrs.erase("broadcast");  // Gemm's C broadcast was trailing-aligned: numpy does the same
  return Status::Ok();
}

// PRelu before 7 applied a 1-D slope of size C per channel (axis 1), which numpy broadcasting
// aligns with the last axis instead: give it trailing unit dims.
Status legacy_prelu(Rewriter& rw, Node& n) {
  if (!n.has_input(0) || !n.has_input(1)) return Status::Ok();
  TensorType x = rw.type(n.inputs[0]), slope = rw.type(n.inputs[1]);
  if (slope.shape.has_rank() && slope.shape.rank() != 1) return Status::Ok();
  if (slope.shape.is_static() && slope.shape[0].value == 1) return Status::Ok();  // one shared slope
  if (!x.shape.has_rank() || !slope.shape.has_rank())
    return node_unsupported(n, "PRelu before opset 7 needs the input ranks (per-channel slope)");
  const auto rx = static_cast<int64_t>(x.shape.rank());
  if (rx >= 3) Rewriter::set_input(n, 1, append_unit_dims(rw, n, n.inputs[1], 1, rx - 2, "slope_channels"));
  return Status::Ok();
}

// Cast before 6 named the target type with a string ("FLOAT").
Status cast_string_to(Rewriter&, Node& n) {
  const std::string* to = n.attrs.get_ptr<std::string>("to");
  if (!to) return Status::Ok();
  for (int32_t t = 1; t <= onnx::TensorProto::DataType_MAX; ++t) {
    if (onnx_dtype_name(t) == *to) {
      n.attrs.set("to", static_cast<int64_t>(t));
      return Status::Ok();
    }
  }
  return node_error(n, "unknown Cast target type '{}'", *to);
}

// Concat-1's axis was optional with default 1 (required since 4).
Status concat_axis(Rewriter&, Node& n) {
  if (!n.attrs.has("axis")) n.attrs.set("axis", int64_t{1});
  return Status::Ok();
}

// Selu-1's defaults were the 4-digit constants.
Status selu_defaults(Rewriter&, Node& n) {
  if (!n.attrs.has("alpha")) n.attrs.set("alpha", 1.6732f);
  if (!n.attrs.has("gamma")) n.attrs.set("gamma", 1.0507f);
  return Status::Ok();
}

// LpPool-1/GlobalLpPool-1 had a float p (default 2.0); an integer since 2.
Status lppool_p(Rewriter&, Node& n) {
  const float* p = n.attrs.get_ptr<float>("p");
  if (!p) return Status::Ok();
  if (*p != std::round(*p) || *p < 1) return node_unsupported(n, "non-integer p = {} is not supported", *p);
  n.attrs.set("p", static_cast<int64_t>(*p));
  return Status::Ok();
}

// RNN/GRU/LSTM `output_sequence` (< 7): whether Y is produced now follows from Y being present.
Status rnn_output_sequence(Rewriter&, Node& n) {
  n.attrs.erase("output_sequence");
  return Status::Ok();
}

// GRU-1's direction default was misspelt "foward" (fixed in 3): a model may carry it explicitly.
Status gru_direction_typo(Rewriter&, Node& n) {
  if (n.attrs.s("direction") == "foward") n.attrs.set("direction", std::string("forward"));
  return Status::Ok();
}

// BatchNormalization `is_test` (< 7): dropped, as ONNX's version converter does.
Status batchnorm_is_test(Rewriter&, Node& n) {
  n.attrs.erase("is_test");
  return Status::Ok();
}

}  // namespace

const std::vector<NormalizeRule>& legacy_rules() {
  static const std::vector<NormalizeRule> rules = {
      {"Add", 7, legacy_broadcast},     {"Sub", 7, legacy_broadcast},     {"Mul", 7, legacy_broadcast},
      {"Div", 7, legacy_broadcast},     {"Pow", 7, legacy_broadcast},     {"And", 7, legacy_broadcast},
      {"Or", 7, legacy_broadcast},      {"Xor", 7, legacy_broadcast},     {"Equal", 7, legacy_broadcast},
      {"Greater", 7, legacy_broadcast}, {"Less", 7, legacy_broadcast},    {"Gemm", 7, drop_broadcast},
      {"PRelu", 7, legacy_prelu},       {"Cast", 6, cast_string_to},      {"Concat", 4, concat_axis},
      {"Selu", 6, selu_defaults},       {"LpPool", 2, lppool_p},          {"GlobalLpPool", 2, lppool_p},
      {"RNN", 7, rnn_output_sequence},  {"GRU", 7, rnn_output_sequence},  {"LSTM", 7, rnn_output_sequence},
      {"GRU", 3, gru_direction_typo},
      {"BatchNormalization", 7, batchnorm_is_test},
  };
  return rules;
}

}  // namespace kiln::onnx_import
