// The optimizers of domain ai.onnx.preview.training: Adagrad, Adam and Momentum. Each takes a
// learning rate R and step count T (scalars), then n tensors of each per-tensor group (X, G and the
// optimizer state: H for Adagrad, V for Momentum, V and H for Adam) and returns the updated X and
// state tensors in the same group order.
#include "ops/infer_util.hpp"

namespace kiln {
namespace {

// Groups of per-tensor inputs after R and T: 3 for Adagrad (X, G, H) and Momentum (X, G, V), 4 for
// Adam (X, G, V, H); outputs hold the groups less G.
template <size_t kGroups>
Status infer_optimizer(InferContext& ctx) {
  const size_t tensors = ctx.num_inputs() - 2;
  if (ctx.num_inputs() < 2 + kGroups || tensors % kGroups != 0)
    return ctx.error("expects R, T and {} groups of equally many tensors, got {} inputs", kGroups,
                     ctx.num_inputs());
  const size_t n = tensors / kGroups;
  // Trailing outputs may be omitted.
  if (ctx.num_outputs() > n * (kGroups - 1))
    return ctx.error("expects at most {} outputs for {} optimized tensors, got {}", n * (kGroups - 1), n, ctx.num_outputs());
  const TensorType& r = ctx.input(0);
  const TensorType& t = ctx.input(1);
  if (r.dtype != DType::kUndefined && !is_floating(r.dtype))
    return ctx.error("learning rate R must be floating-point, got {}", dtype_name(r.dtype));
  if (t.dtype != DType::kUndefined && t.dtype != DType::kInt64)
    return ctx.error("step count T must be int64, got {}", dtype_name(t.dtype));
  for (size_t i = 0; i < 2; ++i) {
    const Shape& s = ctx.input(i).shape;
    if (s.has_rank() && s.rank() != 0) return ctx.error("input {} must be a scalar, got {}", i, s.to_string());
  }
  for (size_t k = 0; k < n; ++k) {
    const TensorType& x = ctx.input(2 + k);
    if (x.dtype != DType::kUndefined && !is_floating(x.dtype))
      return ctx.unsupported("X{} is {}; only floating-point types are supported", k + 1, dtype_name(x.dtype));
    for (size_t gi = 1; gi < kGroups; ++gi) {
      const TensorType& other = ctx.input(2 + gi * n + k);
      if (other.dtype != x.dtype)
        return ctx.error("input {} is {} but X{} is {}", 2 + gi * n + k, dtype_name(other.dtype), k + 1,
                         dtype_name(x.dtype));
      if (x.shape.is_static() && other.shape.is_static() && !(x.shape == other.shape))
        return ctx.error("input {} has shape {} but X{} has {}", 2 + gi * n + k, other.shape.to_string(), k + 1,
                         x.shape.to_string());
    }
    for (size_t gi = 0; gi + 1 < kGroups; ++gi) ctx.set_output(gi * n + k, x.dtype, x.shape);
  }
  return Status::Ok();
}

}  // namespace
}  // namespace kiln

KILN_REGISTER_OP({.name = "Adagrad", .domain = "ai.onnx.preview.training", .min_inputs = 5, .min_outputs = 2, .max_outputs = INT_MAX, .infer = kiln::infer_optimizer<3>});
KILN_REGISTER_OP({.name = "Momentum", .domain = "ai.onnx.preview.training", .min_inputs = 5, .min_outputs = 2, .max_outputs = INT_MAX, .infer = kiln::infer_optimizer<3>});
KILN_REGISTER_OP({.name = "Adam", .domain = "ai.onnx.preview.training", .min_inputs = 6, .min_outputs = 3, .max_outputs = INT_MAX, .infer = kiln::infer_optimizer<4>});
