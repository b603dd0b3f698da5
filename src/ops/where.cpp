// Where(condition, X, Y): elements of X where condition is true, else of Y; all three broadcast.
#include "ops/elementwise_infer.hpp"

namespace kiln {
namespace {

Status infer_where(InferContext& ctx) {
  DType cond = ctx.input(0).dtype;
  if (cond != DType::kBool && cond != DType::kUndefined)
    return ctx.error("condition (input 0) must be bool, got {}", dtype_name(cond));
  KILN_RETURN_IF_ERROR(check_same_dtype(ctx, 1, 3));
  auto s = broadcast_shapes({ctx.input(0).shape, ctx.input(1).shape, ctx.input(2).shape});
  if (!s) return ctx.error("{}", s.status().message());
  ctx.set_output(0, ctx.input(1).dtype, *s);
  return Status::Ok();
}

}  // namespace
}  // namespace kiln

KILN_REGISTER_OP({.name = "Where", .min_inputs = 3, .max_inputs = 3, .infer = kiln::infer_where})
