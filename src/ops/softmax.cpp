// Softmax, LogSoftmax, Hardmax (opset 13+: along one axis) and Dropout.
#include "ops/infer_util.hpp"

namespace kiln {
namespace {

Status infer_softmax(InferContext& ctx) {
  const TensorType& x = ctx.input(0);
  if (x.dtype != DType::kUndefined && !is_floating(x.dtype))
    return ctx.unsupported("input 0 is {}; only floating-point types are supported", dtype_name(x.dtype));
  if (x.shape.has_rank())
    KILN_RETURN_IF_ERROR(normalize_axis(ctx, ctx.attrs().i("axis", -1), static_cast<int64_t>(x.shape.rank())));
  return infer_same_as_input0(ctx);
}

// Dropout: output like data; the optional mask is bool of the same shape.
Status infer_dropout(InferContext& ctx) {
  const TensorType& x = ctx.input(0);
  for (size_t i = 1; i < 3; ++i) {
    if (!ctx.has_input(i)) continue;
    const Shape& s = ctx.input(i).shape;
    if (s.has_rank() && s.rank() != 0 && !(s.rank() == 1 && s[0].known() && s[0].value == 1))
      return ctx.error("{} must be a scalar, got {}", i == 1 ? "ratio" : "training_mode", s.to_string());
  }
  if (ctx.has_input(2) && ctx.input(2).dtype != DType::kBool)
    return ctx.error("training_mode must be bool, got {}", dtype_name(ctx.input(2).dtype));
  if (ctx.has_input(1) && !is_floating(ctx.input(1).dtype))
    return ctx.error("ratio must be a floating-point scalar, got {}", dtype_name(ctx.input(1).dtype));
  ctx.set_output(0, x.dtype, x.shape);
  if (ctx.num_outputs() > 1) ctx.set_output(1, DType::kBool, x.shape);
  return Status::Ok();
}

}  // namespace
}  // namespace kiln

KILN_REGISTER_OP({.name = "Softmax", .min_inputs = 1, .max_inputs = 1, .infer = kiln::infer_softmax});
KILN_REGISTER_OP({.name = "LogSoftmax", .min_inputs = 1, .max_inputs = 1, .infer = kiln::infer_softmax});
KILN_REGISTER_OP({.name = "Hardmax", .min_inputs = 1, .max_inputs = 1, .infer = kiln::infer_softmax});
KILN_REGISTER_OP({.name = "Dropout", .min_inputs = 1, .max_inputs = 3, .min_outputs = 1, .max_outputs = 2, .infer = kiln::infer_dropout});
