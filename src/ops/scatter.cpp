// ScatterND and ScatterElements (reduction none/add/mul/max/min).
#include "ops/tensor_infer_util.hpp"

namespace kiln {
namespace {

Status check_reduction(const InferContext& ctx) {
  const std::string r = ctx.attrs().s("reduction", "none");
  if (r != "none" && r != "add" && r != "mul" && r != "max" && r != "min")
    return ctx.error("reduction must be none, add, mul, max or min, got '{}'", r);
  if (ctx.input(2).dtype != DType::kUndefined && ctx.input(0).dtype != DType::kUndefined &&
      ctx.input(2).dtype != ctx.input(0).dtype)
    return ctx.error("updates have dtype {}, but data has {}", dtype_name(ctx.input(2).dtype), dtype_name(ctx.input(0).dtype));
  return Status::Ok();
}

Status infer_scatter_nd(InferContext& ctx) {
  KILN_RETURN_IF_ERROR(check_reduction(ctx));
  const Shape &data = ctx.input(0).shape, &idx = ctx.input(1).shape, &upd = ctx.input(2).shape;
  if (ctx.input(1).dtype != DType::kUndefined && ctx.input(1).dtype != DType::kInt64)
    return ctx.error("indices must be int64, got {}", dtype_name(ctx.input(1).dtype));
  if (data.has_rank() && idx.has_rank() && upd.has_rank()) {
    if (idx.rank() < 1) return ctx.error("indices must have rank >= 1");
    const Dim& k = idx[idx.rank() - 1];
    if (k.known()) {
      if (k.value > static_cast<int64_t>(data.rank()))
        return ctx.error("the last dim of indices shape {} exceeds the rank of data shape {}", idx.to_string(), data.to_string());
      // updates must have shape indices.shape[:-1] + data.shape[k:].
      std::vector<Dim> want(idx.dims().begin(), idx.dims().end() - 1);
      want.insert(want.end(), data.dims().begin() + k.value, data.dims().end());
      bool ok = want.size() == upd.rank();
      for (size_t i = 0; ok && i < want.size(); ++i)
        ok = !want[i].known() || !upd[i].known() || want[i].value == upd[i].value;
      if (!ok)
        return ctx.error("updates shape {} must be {} for data shape {} and indices shape {}", upd.to_string(),
                         Shape(want).to_string(), data.to_string(), idx.to_string());
    }
  }
  ctx.set_output(0, ctx.input(0).dtype, data);
  return Status::Ok();
}

Status infer_scatter_elements(InferContext& ctx) {
  KILN_RETURN_IF_ERROR(check_reduction(ctx));
  const Shape &data = ctx.input(0).shape, &idx = ctx.input(1).shape, &upd = ctx.input(2).shape;
  DType it = ctx.input(1).dtype;
  if (it != DType::kUndefined && it != DType::kInt32 && it != DType::kInt64)
    return ctx.error("indices must be int32 or int64, got {}", dtype_name(it));
  if (data.has_rank()) {
    const int64_t rank = static_cast<int64_t>(data.rank());
    if (rank == 0) return ctx.error("data must have rank >= 1");
    KILN_RETURN_IF_ERROR(normalize_axis(ctx, ctx.attrs().i("axis", 0), rank));
    if (idx.has_rank() && idx.rank() != data.rank())
      return ctx.error("indices shape {} must have the rank of data shape {}", idx.to_string(), data.to_string());
  }
  if (idx.has_rank() && upd.has_rank() && !(idx == upd)) {
    bool ok = idx.rank() == upd.rank();
    for (size_t i = 0; ok && i < idx.rank(); ++i) ok = !idx[i].known() || !upd[i].known() || idx[i].value == upd[i].value;
    if (!ok) return ctx.error("updates shape {} must equal indices shape {}", upd.to_string(), idx.to_string());
  }
  ctx.set_output(0, ctx.input(0).dtype, data);
  return Status::Ok();
}

}  // namespace
}  // namespace kiln

KILN_REGISTER_OP({.name = "ScatterND", .min_inputs = 3, .max_inputs = 3, .infer = kiln::infer_scatter_nd});
KILN_REGISTER_OP({.name = "ScatterElements", .min_inputs = 3, .max_inputs = 3, .infer = kiln::infer_scatter_elements});
