// LpNormalization: x divided by its L1 or L2 norm along one axis.
#include "ops/infer_util.hpp"

namespace kiln {
namespace {

Status infer_lp_normalization(InferContext& ctx) {
  const int64_t p = ctx.attrs().i("p", 2);
  if (p != 1 && p != 2) return ctx.error("p must be 1 or 2, got {}", p);
  const TensorType& in = ctx.input(0);
  if (in.shape.has_rank()) {
    const int64_t rank = static_cast<int64_t>(in.shape.rank());
    const int64_t axis = ctx.attrs().i("axis", -1);
    if (axis < -rank || axis >= rank) return ctx.error("axis {} is out of range for rank {}", axis, rank);
  }
  ctx.set_output(0, in.dtype, in.shape);
  return Status::Ok();
}

}  // namespace
}  // namespace kiln

KILN_REGISTER_OP({.name = "LpNormalization", .min_inputs = 1, .max_inputs = 1, .infer = kiln::infer_lp_normalization});
