// Cast (to the ONNX dtype in attribute `to`) and CastLike (to the dtype of input 1).
#include "ops/infer_util.hpp"
#include "ops/onnx_dtype.hpp"

namespace kiln {
namespace {

Status infer_cast(InferContext& ctx) {
  const auto* to = ctx.attrs().get_ptr<int64_t>("to");
  if (!to) return ctx.error("attribute 'to' (an integer ONNX data type) is required");
  // STRING (8) is a Cast target only: no other op makes string tensors from a dtype attribute.
  constexpr int64_t kOnnxString = 8;
  DType target = DType::kString;
  if (*to != kOnnxString) {
    KILN_ASSIGN_OR_RETURN(target, dtype_from_onnx_code(ctx, "to", *to));
  }
  ctx.set_output(0, target, ctx.input(0).shape);
  return Status::Ok();
}

Status infer_cast_like(InferContext& ctx) {
  ctx.set_output(0, ctx.input(1).dtype, ctx.input(0).shape);
  return Status::Ok();
}

}  // namespace
}  // namespace kiln

KILN_REGISTER_OP({.name = "Cast", .min_inputs = 1, .max_inputs = 1, .infer = kiln::infer_cast})
KILN_REGISTER_OP({.name = "CastLike", .min_inputs = 2, .max_inputs = 2, .infer = kiln::infer_cast_like})
