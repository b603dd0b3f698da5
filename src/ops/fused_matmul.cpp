// kiln.FusedMatMul: Y = act(A · B + bias [+ residual]), made by the matmul-bias fusion pass (CUDA
// backend) so one cuBLASLt call with a bias epilogue (and C = residual) replaces MatMul + Add
// [+ Add] [+ Relu].
//   A [..., M, K] (rank >= 2), B [K, N] (2-D), bias [N], residual (optional) of Y's shape, all of
//   one float dtype; Y [..., M, N]. activation: "" (none), "Relu" or "GeluTanh" (GELU's tanh
//   approximation 0.5x(1 + tanh(sqrt(2/pi)(x + 0.044715x^3))), which cuBLASLt's GELU epilogue computes). kiln_fused: the names of the
//   nodes it replaced.
#include "ops/infer_util.hpp"

namespace kiln {
namespace {

Status infer_fused_matmul(InferContext& ctx) {
  const TensorType &a = ctx.input(0), &b = ctx.input(1), &bias = ctx.input(2);
  if (a.dtype != b.dtype || a.dtype != bias.dtype)
    return ctx.error("A, B and bias must share a dtype (got {}, {}, {})", dtype_name(a.dtype), dtype_name(b.dtype),
                     dtype_name(bias.dtype));
  if (!is_floating(a.dtype)) return ctx.error("dtype {} is not a float type", dtype_name(a.dtype));
  const std::string act = ctx.node().attrs.s("activation", "");
  if (!act.empty() && act != "Relu" && act != "GeluTanh")
    return ctx.error("unknown activation '{}' (expected \"\", \"Relu\" or \"GeluTanh\")", act);
  if (b.shape.has_rank() && b.shape.rank() != 2) return ctx.error("B must be 2-D, got {}", b.shape.to_string());
  if (a.shape.has_rank() && a.shape.rank() < 2) return ctx.error("A must have rank >= 2, got {}", a.shape.to_string());
  if (bias.shape.has_rank()) {
    if (bias.shape.rank() != 1) return ctx.error("bias must be 1-D, got {}", bias.shape.to_string());
    if (b.shape.has_rank() && b.shape[1].known() && bias.shape[0].known() && b.shape[1].value != bias.shape[0].value)
      return ctx.error("bias {} does not match B {}", bias.shape.to_string(), b.shape.to_string());
  }
  KILN_ASSIGN_OR_RETURN(Shape out, matmul_shape(ctx, a.shape, b.shape));
  if (ctx.has_input(3)) {
    const TensorType& r = ctx.input(3);
    if (r.dtype != a.dtype) return ctx.error("residual is {} but A is {}", dtype_name(r.dtype), dtype_name(a.dtype));
    auto rd = r.shape.to_dims(), od = out.to_dims();
    if (rd && od && *rd != *od)
      return ctx.error("residual {} does not have the output's shape {}", r.shape.to_string(), out.to_string());
  }
  ctx.set_output(0, a.dtype, std::move(out));
  return Status::Ok();
}

}  // namespace
}  // namespace kiln

KILN_REGISTER_OP({.name = "FusedMatMul", .domain = "kiln", .min_inputs = 3, .max_inputs = 4,
                  .infer = kiln::infer_fused_matmul});
