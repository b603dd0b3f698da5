// CumSum: cumulative sum along an axis given as input 1 (a scalar), with exclusive/reverse.
#include "ops/infer_util.hpp"

namespace kiln {
namespace {

Status infer_cumsum(InferContext& ctx) {
  const TensorType& in = ctx.input(0);
  const DType at = ctx.input(1).dtype;
  if (at != DType::kInt32 && at != DType::kInt64)
    return ctx.error("axis must be int32 or int64, got {}", dtype_name(at));
  if (auto axis = int_values(ctx, 1)) {
    if (axis->size() != 1) return ctx.error("axis must hold one value, got {}", axis->size());
    if (in.shape.has_rank()) {
      const int64_t rank = static_cast<int64_t>(in.shape.rank());
      if ((*axis)[0] < -rank || (*axis)[0] >= rank)
        return ctx.error("axis {} is out of range for rank {}", (*axis)[0], rank);
    }
  }
  ctx.set_output(0, in.dtype, in.shape);
  return Status::Ok();
}

}  // namespace
}  // namespace kiln

KILN_REGISTER_OP({.name = "CumSum", .min_inputs = 2, .max_inputs = 2, .infer = kiln::infer_cumsum});
