// QuantizeLinear, DequantizeLinear (opset 21: per tensor, per axis, blocked) and
// DynamicQuantizeLinear: schemas and shape inference.
#include "ops/infer_util.hpp"
#include "ops/onnx_dtype.hpp"
#include "ops/quant_params.hpp"

namespace kiln {
namespace {

// The types kiln quantizes to: 8/16-bit integers and float8 E4M3FN (the other float8 types and
// int4 have no kiln dtype: the importer and dtype_from_onnx_code report them unsupported).
bool is_quantized_type(DType t) {
  return t == DType::kInt8 || t == DType::kUInt8 || t == DType::kInt16 || t == DType::kUInt16 ||
         t == DType::kFloat8E4M3FN;
}

Status check_scale_dtype(const InferContext& ctx, const char* what, DType t) {
  if (!is_floating(t)) return ctx.error("{} must be a floating-point tensor, got {}", what, dtype_name(t));
  return Status::Ok();
}

// saturate (opset 19+) only changes float8 outputs: out-of-range values become +-448 (1) or NaN (0).
Status check_saturate(const InferContext& ctx) {
  const int64_t saturate = ctx.attrs().i("saturate", 1);
  if (saturate != 0 && saturate != 1) return ctx.error("saturate must be 0 or 1, got {}", saturate);
  return Status::Ok();
}

// The output dtype: y_zero_point's, else the output_dtype attribute, else uint8. Both given must agree.
Expected<DType> quantized_output_dtype(const InferContext& ctx) {
  const int64_t code = ctx.attrs().i("output_dtype", 0);
  DType attr_dtype = DType::kUndefined;
  constexpr int64_t kOnnxFloat8E4M3FN = 17;  // generic code lookup refuses float8 (Cast has no kernel)
  if (code == kOnnxFloat8E4M3FN) {
    attr_dtype = DType::kFloat8E4M3FN;
  } else if (code != 0) {
    KILN_ASSIGN_OR_RETURN(attr_dtype, dtype_from_onnx_code(ctx, "output_dtype", code));
  }
  if (ctx.has_input(2)) {
    const DType zp = ctx.input(2).dtype;
    if (attr_dtype != DType::kUndefined && attr_dtype != zp)
      return ctx.error("output_dtype {} differs from y_zero_point's dtype {}", dtype_name(attr_dtype), dtype_name(zp));
    attr_dtype = zp;
  }
  if (attr_dtype == DType::kUndefined) attr_dtype = DType::kUInt8;
  if (!is_quantized_type(attr_dtype))
    return ctx.error("cannot quantize to {}: the output must be int8, uint8, int16, uint16 or float8e4m3fn",
                     dtype_name(attr_dtype));
  return attr_dtype;
}

// y = saturate(round(x / y_scale) + y_zero_point).
Status infer_quantize_linear(InferContext& ctx) {
  const TensorType& x = ctx.input(0);
  if (!is_floating(x.dtype) && x.dtype != DType::kInt32)
    return ctx.error("x must be a floating-point or int32 tensor, got {}", dtype_name(x.dtype));
  // Opset 19+ lets an int32 x have an int32 scale (both T1).
  if (!(x.dtype == DType::kInt32 && ctx.input(1).dtype == DType::kInt32))
    KILN_RETURN_IF_ERROR(check_scale_dtype(ctx, "y_scale", ctx.input(1).dtype));
  KILN_RETURN_IF_ERROR(check_saturate(ctx));
  KILN_ASSIGN_OR_RETURN(DType out, quantized_output_dtype(ctx));
  const int64_t axis = ctx.attrs().i("axis", 1), block = ctx.attrs().i("block_size", 0);
  KILN_RETURN_IF_ERROR(check_qdq_param(ctx, "y_scale", x.shape, ctx.input(1).shape, axis, block));
  if (ctx.has_input(2))
    KILN_RETURN_IF_ERROR(check_same_param_shape(ctx, "y_zero_point", ctx.input(2).shape, "y_scale", ctx.input(1).shape));
  ctx.set_output(0, out, x.shape);
  return Status::Ok();
}

// y = (x - x_zero_point) * x_scale, of x_scale's dtype.
Status infer_dequantize_linear(InferContext& ctx) {
  const TensorType& x = ctx.input(0);
  if (!is_quantized_type(x.dtype) && x.dtype != DType::kInt32)
    return ctx.error("x must be int8, uint8, int16, uint16, int32 or float8e4m3fn, got {}", dtype_name(x.dtype));
  const DType scale = ctx.input(1).dtype;
  KILN_RETURN_IF_ERROR(check_scale_dtype(ctx, "x_scale", scale));
  if (ctx.has_input(2)) KILN_RETURN_IF_ERROR(check_same_dtype(ctx, "x_zero_point", ctx.input(2).dtype, "x", x.dtype));
  const int64_t axis = ctx.attrs().i("axis", 1), block = ctx.attrs().i("block_size", 0);
  KILN_RETURN_IF_ERROR(check_qdq_param(ctx, "x_scale", x.shape, ctx.input(1).shape, axis, block));
  if (ctx.has_input(2))
    KILN_RETURN_IF_ERROR(check_same_param_shape(ctx, "x_zero_point", ctx.input(2).shape, "x_scale", ctx.input(1).shape));
  ctx.set_output(0, scale, x.shape);
  return Status::Ok();
}

// Outputs y (uint8, x's shape), y_scale (float scalar) and y_zero_point (uint8 scalar).
Status infer_dynamic_quantize_linear(InferContext& ctx) {
  const TensorType& x = ctx.input(0);
  if (x.dtype != DType::kFloat32) return ctx.error("x must be float32, got {}", dtype_name(x.dtype));
  ctx.set_output(0, DType::kUInt8, x.shape);
  ctx.set_output(1, DType::kFloat32, Shape::scalar());
  ctx.set_output(2, DType::kUInt8, Shape::scalar());
  return Status::Ok();
}

}  // namespace
}  // namespace kiln

KILN_REGISTER_OP({.name = "QuantizeLinear", .min_inputs = 2, .max_inputs = 3, .infer = kiln::infer_quantize_linear})
KILN_REGISTER_OP({.name = "DequantizeLinear", .min_inputs = 2, .max_inputs = 3,
                  .infer = kiln::infer_dequantize_linear})
KILN_REGISTER_OP({.name = "DynamicQuantizeLinear", .min_inputs = 1, .max_inputs = 1, .min_outputs = 3,
                  .max_outputs = 3, .infer = kiln::infer_dynamic_quantize_linear})
