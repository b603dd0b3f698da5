// Identity: the output is the input (a tensor, a sequence or an optional).
#include "ops/infer_util.hpp"

namespace kiln {
namespace {
Status infer_identity(InferContext& ctx) {
  ctx.set_output_type(0, ctx.input(0));
  return Status::Ok();
}
}  // namespace
}  // namespace kiln

KILN_REGISTER_OP({.name = "Identity", .min_inputs = 1, .max_inputs = 1, .infer = kiln::infer_identity,
                  .non_tensor_values = true});
