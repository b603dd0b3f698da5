// TopK: the K largest (or smallest) elements along an axis, K given as input 1; outputs the
// values and their int64 indices.
#include "ops/infer_util.hpp"

namespace kiln {
namespace {

Status infer_topk(InferContext& ctx) {
  const TensorType& in = ctx.input(0);
  if (ctx.input(1).dtype != DType::kInt64) return ctx.error("K must be int64, got {}", dtype_name(ctx.input(1).dtype));
  std::optional<int64_t> k;
  if (auto kv = int_values(ctx, 1)) {
    if (kv->size() != 1) return ctx.error("K must hold one value, got {}", kv->size());
    if ((*kv)[0] < 0) return ctx.error("K must be non-negative, got {}", (*kv)[0]);
    k = (*kv)[0];
  }
  Shape out = in.shape;
  if (in.shape.has_rank()) {
    const int64_t rank = static_cast<int64_t>(in.shape.rank());
    const int64_t axis_attr = ctx.attrs().i("axis", -1);
    if (axis_attr < -rank || axis_attr >= rank)
      return ctx.error("axis {} is out of range for rank {}", axis_attr, rank);
    const size_t axis = static_cast<size_t>(axis_attr < 0 ? axis_attr + rank : axis_attr);
    const Dim& d = in.shape[axis];
    if (k && d.known() && *k > d.value)
      return ctx.error("K = {} is larger than dim {} of size {}", *k, axis, d.value);
    out.dims()[axis] = k ? Dim(*k) : Dim();
  }
  ctx.set_output(0, in.dtype, out);
  ctx.set_output(1, DType::kInt64, out);
  return Status::Ok();
}

}  // namespace
}  // namespace kiln

KILN_REGISTER_OP({.name = "TopK", .min_inputs = 2, .max_inputs = 2, .min_outputs = 2, .max_outputs = 2,
                  .infer = kiln::infer_topk});
