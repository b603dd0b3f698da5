// MatMulInteger, QLinearMatMul, ConvInteger and QLinearConv: schemas and shape inference.
#include "ops/conv_shape.hpp"
#include "ops/infer_util.hpp"
#include "ops/quant_params.hpp"

namespace kiln {
namespace {

bool is_8bit(DType t) { return t == DType::kInt8 || t == DType::kUInt8; }

Status check_8bit(const InferContext& ctx, const char* what, DType t) {
  if (!is_8bit(t)) return ctx.error("{} must be int8 or uint8, got {}", what, dtype_name(t));
  return Status::Ok();
}

Status check_scale(const InferContext& ctx, const char* what, size_t input) {
  if (!is_floating(ctx.input(input).dtype))
    return ctx.error("{} must be a floating-point tensor, got {}", what, dtype_name(ctx.input(input).dtype));
  return Status::Ok();
}

// An 8-bit data input and its (optional) zero point of the same dtype.
Status check_data_and_zero_point(const InferContext& ctx, const char* what, size_t input, const char* zp_name,
                                 size_t zp) {
  KILN_RETURN_IF_ERROR(check_8bit(ctx, what, ctx.input(input).dtype));
  if (ctx.has_input(zp)) KILN_RETURN_IF_ERROR(check_same_dtype(ctx, zp_name, ctx.input(zp).dtype, what, ctx.input(input).dtype));
  return Status::Ok();
}

// Y (int32) = (A - a_zero_point) x (B - b_zero_point), numpy matmul semantics.
Status infer_matmul_integer(InferContext& ctx) {
  KILN_RETURN_IF_ERROR(check_data_and_zero_point(ctx, "A", 0, "a_zero_point", 2));
  KILN_RETURN_IF_ERROR(check_data_and_zero_point(ctx, "B", 1, "b_zero_point", 3));
  const Shape& a = ctx.input(0).shape;
  const Shape& b = ctx.input(1).shape;
  if (ctx.has_input(2)) KILN_RETURN_IF_ERROR(check_matmul_param(ctx, "a_zero_point", a, ctx.input(2).shape, true));
  if (ctx.has_input(3)) KILN_RETURN_IF_ERROR(check_matmul_param(ctx, "b_zero_point", b, ctx.input(3).shape, false));
  KILN_ASSIGN_OR_RETURN(Shape out, matmul_shape(ctx, a, b));
  ctx.set_output(0, DType::kInt32, std::move(out));
  return Status::Ok();
}

// Inputs: a, a_scale, a_zero_point, b, b_scale, b_zero_point, y_scale, y_zero_point.
Status infer_qlinear_matmul(InferContext& ctx) {
  KILN_RETURN_IF_ERROR(check_data_and_zero_point(ctx, "a", 0, "a_zero_point", 2));
  KILN_RETURN_IF_ERROR(check_data_and_zero_point(ctx, "b", 3, "b_zero_point", 5));
  KILN_RETURN_IF_ERROR(check_8bit(ctx, "y_zero_point", ctx.input(7).dtype));
  KILN_RETURN_IF_ERROR(check_scale(ctx, "a_scale", 1));
  KILN_RETURN_IF_ERROR(check_scale(ctx, "b_scale", 4));
  KILN_RETURN_IF_ERROR(check_scale(ctx, "y_scale", 6));
  const Shape& a = ctx.input(0).shape;
  const Shape& b = ctx.input(3).shape;
  KILN_RETURN_IF_ERROR(check_matmul_param(ctx, "a_scale", a, ctx.input(1).shape, true));
  KILN_RETURN_IF_ERROR(check_matmul_param(ctx, "a_zero_point", a, ctx.input(2).shape, true));
  KILN_RETURN_IF_ERROR(check_matmul_param(ctx, "b_scale", b, ctx.input(4).shape, false));
  KILN_RETURN_IF_ERROR(check_matmul_param(ctx, "b_zero_point", b, ctx.input(5).shape, false));
  KILN_RETURN_IF_ERROR(check_scalar_param(ctx, "y_scale", ctx.input(6).shape));
  KILN_RETURN_IF_ERROR(check_scalar_param(ctx, "y_zero_point", ctx.input(7).shape));
  KILN_ASSIGN_OR_RETURN(Shape out, matmul_shape(ctx, a, b));
  ctx.set_output(0, ctx.input(7).dtype, std::move(out));
  return Status::Ok();
}

Dim output_channels(const Shape& w) { return w.has_rank() && w.rank() > 0 ? w[0] : Dim(); }

// Y (int32) = Conv(x - x_zero_point, w - w_zero_point); the padding holds x_zero_point.
Status infer_conv_integer(InferContext& ctx) {
  KILN_RETURN_IF_ERROR(check_data_and_zero_point(ctx, "x", 0, "x_zero_point", 2));
  KILN_RETURN_IF_ERROR(check_data_and_zero_point(ctx, "w", 1, "w_zero_point", 3));
  const Shape& w = ctx.input(1).shape;
  if (ctx.has_input(2)) KILN_RETURN_IF_ERROR(check_scalar_param(ctx, "x_zero_point", ctx.input(2).shape));
  if (ctx.has_input(3))
    KILN_RETURN_IF_ERROR(check_per_channel_param(ctx, "w_zero_point", ctx.input(3).shape, output_channels(w)));
  KILN_ASSIGN_OR_RETURN(Shape out, conv_output_shape(ctx, ctx.input(0).shape, w, nullptr, ctx.attrs().i("group", 1)));
  ctx.set_output(0, DType::kInt32, std::move(out));
  return Status::Ok();
}

// Inputs: x, x_scale, x_zero_point, w, w_scale, w_zero_point, y_scale, y_zero_point, B (int32).
Status infer_qlinear_conv(InferContext& ctx) {
  KILN_RETURN_IF_ERROR(check_data_and_zero_point(ctx, "x", 0, "x_zero_point", 2));
  KILN_RETURN_IF_ERROR(check_data_and_zero_point(ctx, "w", 3, "w_zero_point", 5));
  KILN_RETURN_IF_ERROR(check_8bit(ctx, "y_zero_point", ctx.input(7).dtype));
  KILN_RETURN_IF_ERROR(check_scale(ctx, "x_scale", 1));
  KILN_RETURN_IF_ERROR(check_scale(ctx, "w_scale", 4));
  KILN_RETURN_IF_ERROR(check_scale(ctx, "y_scale", 6));
  if (ctx.has_input(8) && ctx.input(8).dtype != DType::kInt32)
    return ctx.error("B must be int32, got {}", dtype_name(ctx.input(8).dtype));
  const Shape& w = ctx.input(3).shape;
  const Dim m = output_channels(w);
  KILN_RETURN_IF_ERROR(check_scalar_param(ctx, "x_scale", ctx.input(1).shape));
  KILN_RETURN_IF_ERROR(check_scalar_param(ctx, "x_zero_point", ctx.input(2).shape));
  KILN_RETURN_IF_ERROR(check_per_channel_param(ctx, "w_scale", ctx.input(4).shape, m));
  KILN_RETURN_IF_ERROR(check_per_channel_param(ctx, "w_zero_point", ctx.input(5).shape, m));
  KILN_RETURN_IF_ERROR(check_scalar_param(ctx, "y_scale", ctx.input(6).shape));
  KILN_RETURN_IF_ERROR(check_scalar_param(ctx, "y_zero_point", ctx.input(7).shape));
  KILN_ASSIGN_OR_RETURN(Shape out, conv_output_shape(ctx, ctx.input(0).shape, w,
                                                     ctx.has_input(8) ? &ctx.input(8).shape : nullptr,
                                                     ctx.attrs().i("group", 1)));
  ctx.set_output(0, ctx.input(7).dtype, std::move(out));
  return Status::Ok();
}

}  // namespace
}  // namespace kiln

KILN_REGISTER_OP({.name = "MatMulInteger", .min_inputs = 2, .max_inputs = 4, .infer = kiln::infer_matmul_integer})
KILN_REGISTER_OP({.name = "QLinearMatMul", .min_inputs = 8, .max_inputs = 8, .infer = kiln::infer_qlinear_matmul})
KILN_REGISTER_OP({.name = "ConvInteger", .min_inputs = 2, .max_inputs = 4, .infer = kiln::infer_conv_integer})
KILN_REGISTER_OP({.name = "QLinearConv", .min_inputs = 8, .max_inputs = 9, .infer = kiln::infer_qlinear_conv})
