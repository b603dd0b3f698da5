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
  if (!a.shape.has_rank() || !b.shape.has_rank()) {
    ctx.set_output(0, a.dtype, Shape::unknown_rank());
    return Status::Ok();
  }
  if (a.shape.rank() == 0 || b.shape.rank() == 0)
    return ctx.error("operands must have rank 1 or more, got A {} and B {}", a.shape.to_string(), b.shape.to_string());
  // A 1-D A is a row vector and a 1-D B a column vector; the added dim is then removed.
  std::vector<Dim> ad = a.shape.dims(), bd = b.shape.dims();
  const bool a_vec = ad.size() == 1, b_vec = bd.size() == 1;
  if (a_vec) ad.insert(ad.begin(), Dim(1));
  if (b_vec) bd.push_back(Dim(1));
  if (dims_conflict(ad.back(), bd[bd.size() - 2]))
    return ctx.error("inner dims differ: A {} and B {}", a.shape.to_string(), b.shape.to_string());
  auto batch = broadcast_shapes({Shape(std::vector<Dim>(ad.begin(), ad.end() - 2)),
                                 Shape(std::vector<Dim>(bd.begin(), bd.end() - 2))});
  if (!batch)
    return ctx.error("batch dims of A {} and B {} cannot be broadcast", a.shape.to_string(), b.shape.to_string());
  std::vector<Dim> out = batch->dims();
  if (!a_vec) out.push_back(ad[ad.size() - 2]);
  if (!b_vec) out.push_back(bd.back());
  ctx.set_output(0, a.dtype, Shape(std::move(out)));
  return Status::Ok();
}

}  // namespace
}  // namespace kiln

KILN_REGISTER_OP({.name = "Gemm", .min_inputs = 2, .max_inputs = 3, .infer = kiln::infer_gemm});
KILN_REGISTER_OP({.name = "MatMul", .min_inputs = 2, .max_inputs = 2, .infer = kiln::infer_matmul});
