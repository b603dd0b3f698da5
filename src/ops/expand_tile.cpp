// Expand (bidirectional broadcast to a shape) and Tile (repeat along each axis).
#include "ops/tensor_infer_util.hpp"

namespace kiln {
namespace {

Status infer_expand(InferContext& ctx) {
  const TensorType& in = ctx.input(0);
  KILN_ASSIGN_OR_RETURN(auto shape, int_list_input(ctx, 1, "shape"));
  if (shape) {
    for (int64_t d : *shape)
      if (d < 0) return ctx.error("shape [{}] has a negative dim", fmt::join(*shape, ","));
    auto out = broadcast_shapes({in.shape, Shape::from_dims(*shape)});
    if (!out)
      return ctx.error("cannot expand input of shape {} to shape [{}]: {}", in.shape.to_string(), fmt::join(*shape, ","),
                       out.status().message());
    ctx.set_output(0, in.dtype, *out);
    return Status::Ok();
  }
  const Shape& s = ctx.input(1).shape;
  if (!in.shape.has_rank() || !s.has_rank() || s.rank() != 1 || !s[0].known()) {
    ctx.set_output(0, in.dtype, Shape::unknown_rank());
    return Status::Ok();
  }
  // The target is computed: a dim of the input other than 1 stays, the rest is unknown.
  const size_t rank = std::max(in.shape.rank(), static_cast<size_t>(s[0].value));
  std::vector<Dim> out(rank);
  for (size_t i = 0; i < in.shape.rank(); ++i) {
    const Dim& d = in.shape[i];
    if (d.known() && d.value != 1) out[rank - in.shape.rank() + i] = d;
  }
  ctx.set_output(0, in.dtype, Shape(std::move(out)));
  return Status::Ok();
}

Status infer_tile(InferContext& ctx) {
  const TensorType& in = ctx.input(0);
  KILN_ASSIGN_OR_RETURN(auto repeats, int_list_input(ctx, 1, "repeats"));
  if (!in.shape.has_rank()) {
    ctx.set_output(0, in.dtype, repeats ? Shape(std::vector<Dim>(repeats->size())) : Shape::unknown_rank());
    return Status::Ok();
  }
  if (!repeats) {
    ctx.set_output(0, in.dtype, Shape(std::vector<Dim>(in.shape.rank())));
    return Status::Ok();
  }
  if (repeats->size() != in.shape.rank())
    return ctx.error("repeats has {} values, but the input shape {} has rank {}", repeats->size(),
                     in.shape.to_string(), in.shape.rank());
  std::vector<Dim> out = in.shape.dims();
  for (size_t i = 0; i < out.size(); ++i) {
    int64_t r = (*repeats)[i];
    if (r < 0) return ctx.error("repeats [{}] has a negative value", fmt::join(*repeats, ","));
    if (out[i].known()) out[i] = Dim(out[i].value * r);
    else if (r == 0) out[i] = Dim(0);
    else if (r != 1) out[i] = Dim();
  }
  ctx.set_output(0, in.dtype, Shape(std::move(out)));
  return Status::Ok();
}

}  // namespace
}  // namespace kiln

KILN_REGISTER_OP({.name = "Expand", .min_inputs = 2, .max_inputs = 2, .infer = kiln::infer_expand});
KILN_REGISTER_OP({.name = "Tile", .min_inputs = 2, .max_inputs = 2, .infer = kiln::infer_tile});
