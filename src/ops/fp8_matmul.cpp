// kiln.Fp8Quantize and kiln.Fp8MatMul, made by the fp8-gemm-fusion pass (CUDA backend) from
// explicit FP8 Q/DQ around a MatMul/Gemm: the CUDA layers quantize X to float8 E4M3 once (shared
// by every GEMM reading it) and run one cuBLASLt FP8 GEMM with a bias/activation epilogue.
//
// kiln.Fp8Quantize(X, scale) -> float8e4m3fn of X's shape: QuantizeLinear per tensor with
//   saturate=1, e4m3(x / scale), ties to even, +-448 at most. X float32/16/bfloat16; scale: one
//   float value.
// kiln.Fp8MatMul(Xq, x_scale, W, w_scale [, bias] [, residual] [, y_scale]) -> Y:
//   Y = act(Xq·x_scale · (W·w_scale)ᵀ + bias [+ residual]), i.e. the DQ -> MatMul it replaced.
//   With y_scale (fp8-quantize-fusion: the GEMM whose only reader was a kiln.Fp8Quantize), Y is
//   that quantization instead: e4m3(y / y_scale) of the x_scale-dtype y, float8e4m3fn.
//   Xq [..., M, K] float8e4m3fn; W [N, K] float8e4m3fn constant, stored transposed (the row-major
//   form of the column-major "TN" operand cuBLASLt's FP8 GEMM requires); scales: one float value
//   each. Y [..., M, N] has x_scale's dtype (as DequantizeLinear's output), float32/16/bfloat16;
//   bias [N] (optional: may be an absent input) and residual (optional, Y's shape) of that dtype.
//   activation: "" | "Relu" | "Gelu" (Gelu: attribute `approximate` "none" | "tanh").
#include "ops/infer_util.hpp"

namespace kiln {
namespace {

Status check_scale(const InferContext& ctx, size_t i, const char* what) {
  const TensorType& s = ctx.input(i);
  if (!is_floating(s.dtype)) return ctx.error("{} must be a float tensor, got {}", what, dtype_name(s.dtype));
  if (auto d = s.shape.to_dims(); d && dims_numel(*d) != 1)
    return ctx.error("{} must hold one value (per-tensor scale), got {}", what, s.shape.to_string());
  return Status::Ok();
}

bool gemm_float(DType t) { return t == DType::kFloat32 || t == DType::kFloat16 || t == DType::kBFloat16; }

Status infer_fp8_quantize(InferContext& ctx) {
  const TensorType& x = ctx.input(0);
  if (!gemm_float(x.dtype)) return ctx.error("X must be float32, float16 or bfloat16, got {}", dtype_name(x.dtype));
  KILN_RETURN_IF_ERROR(check_scale(ctx, 1, "scale"));
  ctx.set_output(0, DType::kFloat8E4M3FN, x.shape);
  return Status::Ok();
}

Status infer_fp8_matmul(InferContext& ctx) {
  const TensorType &xq = ctx.input(0), &w = ctx.input(2);
  if (xq.dtype != DType::kFloat8E4M3FN) return ctx.error("X must be float8e4m3fn, got {}", dtype_name(xq.dtype));
  if (w.dtype != DType::kFloat8E4M3FN) return ctx.error("W must be float8e4m3fn, got {}", dtype_name(w.dtype));
  KILN_RETURN_IF_ERROR(check_scale(ctx, 1, "x_scale"));
  KILN_RETURN_IF_ERROR(check_scale(ctx, 3, "w_scale"));
  const DType yt = ctx.input(1).dtype;
  if (!gemm_float(yt)) return ctx.error("x_scale (Y's dtype) must be float32, float16 or bfloat16, got {}", dtype_name(yt));
  TensorType x = xq;
  x.dtype = yt;  // bias, residual and Y
  const std::string act = ctx.node().attrs.s("activation", "");
  if (!act.empty() && act != "Relu" && act != "Gelu")
    return ctx.error("unknown activation '{}' (expected \"\", \"Relu\" or \"Gelu\")", act);
  const std::string approx = ctx.node().attrs.s("approximate", "none");
  if (approx != "none" && approx != "tanh") return ctx.error("approximate must be \"none\" or \"tanh\", got '{}'", approx);
  if (w.shape.has_rank() && w.shape.rank() != 2) return ctx.error("W must be 2-D [N, K], got {}", w.shape.to_string());
  if (x.shape.has_rank() && x.shape.rank() < 2) return ctx.error("X must have rank >= 2, got {}", x.shape.to_string());
  if (!x.shape.has_rank() || !w.shape.has_rank()) {
    ctx.set_output(0, x.dtype, Shape());
    return Status::Ok();
  }
  const Dim k = x.shape[x.shape.rank() - 1], wk = w.shape[1], n = w.shape[0];
  if (k.known() && wk.known() && k.value != wk.value)
    return ctx.error("X {} and W {} (transposed, [N, K]) disagree on K", x.shape.to_string(), w.shape.to_string());
  std::vector<Dim> out;
  for (size_t i = 0; i + 1 < x.shape.rank(); ++i) out.push_back(x.shape[i]);
  out.push_back(n);
  Shape y(std::move(out));
  if (ctx.has_input(4)) {
    const TensorType& b = ctx.input(4);
    if (b.dtype != x.dtype) return ctx.error("bias is {} but Y is {}", dtype_name(b.dtype), dtype_name(x.dtype));
    if (b.shape.has_rank() && (b.shape.rank() != 1 || (b.shape[0].known() && n.known() && b.shape[0].value != n.value)))
      return ctx.error("bias must be [N] = [{}], got {}", n.to_string(), b.shape.to_string());
  }
  if (ctx.has_input(5)) {
    const TensorType& r = ctx.input(5);
    if (r.dtype != x.dtype) return ctx.error("residual is {} but Y is {}", dtype_name(r.dtype), dtype_name(x.dtype));
    auto rd = r.shape.to_dims(), od = y.to_dims();
    if (rd && od && *rd != *od)
      return ctx.error("residual {} does not have the output's shape {}", r.shape.to_string(), y.to_string());
  }
  if (ctx.has_input(6)) {
    KILN_RETURN_IF_ERROR(check_scale(ctx, 6, "y_scale"));
    ctx.set_output(0, DType::kFloat8E4M3FN, std::move(y));
    return Status::Ok();
  }
  ctx.set_output(0, x.dtype, std::move(y));
  return Status::Ok();
}

}  // namespace
}  // namespace kiln

KILN_REGISTER_OP({.name = "Fp8Quantize", .domain = "kiln", .min_inputs = 2, .max_inputs = 2,
                  .infer = kiln::infer_fp8_quantize});
KILN_REGISTER_OP({.name = "Fp8MatMul", .domain = "kiln", .min_inputs = 4, .max_inputs = 7,
                  .infer = kiln::infer_fp8_matmul});
