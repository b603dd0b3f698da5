// Gemm and MatMul: schemas and shape inference.
#include "ops/infer_util.hpp"

namespace kiln {
namespace {

// Two known dims that must agree; unknown ones are accepted.
bool dims_conflict(const Dim& a, const Dim& b) { return a.known() && b.known() && a.value != b.value; }

Status infer_gemm(InferContext& ctx) {
  const TensorType& a = ctx.input(0);
  const TensorType& b = ctx.input(1);
  if (a.dtype != b.dtype) return ctx.error("A is {} but B is {}", dtype_name(a.dtype), dtype_name(b.dtype));
  if (ctx.has_input(2) && ctx.input(2).dtype != a.dtype)
    return ctx.error("A is {} but C is {}", dtype_name(a.dtype), dtype_name(ctx.input(2).dtype));
  if ((a.shape.has_rank() && a.shape.rank() != 2) || (b.shape.has_rank() && b.shape.rank() != 2))
    return ctx.error("A {} and B {} must be 2-D", a.shape.to_string(), b.shape.to_string());
  const bool ta = ctx.attrs().i("transA", 0) != 0, tb = ctx.attrs().i("transB", 0) != 0;
  Dim m, n, ka, kb;
  if (a.shape.has_rank()) {
    m = a.shape[ta ? 1 : 0];
    ka = a.shape[ta ? 0 : 1];
  }
  if (b.shape.has_rank()) {
    kb = b.shape[tb ? 1 : 0];
    n = b.shape[tb ? 0 : 1];
  }
  if (dims_conflict(ka, kb))
    return ctx.error("inner dims differ: A {} (transA={}) and B {} (transB={})", a.shape.to_string(), int(ta),
                     b.shape.to_string(), int(tb));
  if (ctx.has_input(2) && ctx.input(2).shape.has_rank()) {
    // C broadcasts one way to (M, N).
    const Shape& c = ctx.input(2).shape;
    if (c.rank() > 2) return ctx.error("C {} must have rank 2 or less", c.to_string());
    const Dim out[2] = {m, n};
    for (size_t i = 0; i < c.rank(); ++i) {
      const Dim& d = c[i];
      const Dim& o = out[2 - c.rank() + i];
      if (d.known() && d.value != 1 && dims_conflict(d, o))
        return ctx.error("C {} cannot be broadcast to the output [{},{}]", c.to_string(), m.to_string(), n.to_string());
    }
  }
  ctx.set_output(0, a.dtype, Shape({m, n}));
  return Status::Ok();
}

Status infer_matmul(InferContext& ctx) {
  const TensorType& a = ctx.input(0);
  const TensorType& b = ctx.input(1);
  if (a.dtype != b.dtype) return ctx.error("A is {} but B is {}", dtype_name(a.dtype), dtype_name(b.dtype));
  KILN_ASSIGN_OR_RETURN(Shape out, matmul_shape(ctx, a.shape, b.shape));
  ctx.set_output(0, a.dtype, std::move(out));
  return Status::Ok();
}

}  // namespace
}  // namespace kiln

KILN_REGISTER_OP({.name = "Gemm", .min_inputs = 2, .max_inputs = 3, .infer = kiln::infer_gemm});
KILN_REGISTER_OP({.name = "MatMul", .min_inputs = 2, .max_inputs = 2, .infer = kiln::infer_matmul});
