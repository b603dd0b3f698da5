// Det: determinants of the trailing square matrices of a [*, M, M] tensor; output shape [*].
#include "ops/infer_util.hpp"

namespace kiln {
namespace {

Status infer_det(InferContext& ctx) {
  const TensorType& in = ctx.input(0);
  if (!in.shape.has_rank()) {
    ctx.set_output(0, in.dtype, Shape::unknown_rank());
    return Status::Ok();
  }
  const size_t r = in.shape.rank();
  if (r < 2) return ctx.error("input must have rank >= 2, got {}", in.shape.to_string());
  const Dim& m = in.shape[r - 2];
  const Dim& n = in.shape[r - 1];
  if (m.known() && n.known() && m.value != n.value)
    return ctx.error("the trailing matrices must be square, got {}", in.shape.to_string());
  ctx.set_output(0, in.dtype, Shape(std::vector<Dim>(in.shape.dims().begin(), in.shape.dims().end() - 2)));
  return Status::Ok();
}

}  // namespace
}  // namespace kiln

KILN_REGISTER_OP({.name = "Det", .min_inputs = 1, .max_inputs = 1, .infer = kiln::infer_det});
