// Col2Im (opset 18): input [N, C * prod(block_shape), L] -> [N, C, *image_shape], the adjoint of
// the im2col gather with the strides/dilations/pads attributes (L must be the number of blocks).
#include "ops/infer_util.hpp"
#include "ops/window_geometry.hpp"

namespace kiln {
namespace {

Expected<std::optional<Dims>> shape_input(const InferContext& ctx, size_t i, const char* name) {
  if (ctx.input(i).dtype != DType::kInt64) return ctx.error("{} must be int64, got {}", name, dtype_name(ctx.input(i).dtype));
  const Shape& s = ctx.input(i).shape;
  if (s.has_rank() && s.rank() != 1) return ctx.error("{} must be 1-D, got {}", name, s.to_string());
  auto v = int_values(ctx, i);
  if (v && v->empty()) return ctx.error("{} must not be empty", name);
  return v ? std::optional<Dims>(*v) : std::nullopt;
}

Status infer_col2im(InferContext& ctx) {
  const TensorType& in = ctx.input(0);
  if (in.shape.has_rank() && in.shape.rank() != 3)
    return ctx.error("input must be [N, C * prod(block_shape), L], got {}", in.shape.to_string());
  KILN_ASSIGN_OR_RETURN(const std::optional<Dims> image, shape_input(ctx, 1, "image_shape"));
  KILN_ASSIGN_OR_RETURN(const std::optional<Dims> block, shape_input(ctx, 2, "block_shape"));
  const Dim n = in.shape.has_rank() ? in.shape[0] : Dim();
  const Dim cols = in.shape.has_rank() ? in.shape[1] : Dim();
  const Dim blocks = in.shape.has_rank() ? in.shape[2] : Dim();
  // The spatial rank: from either value, or the (static) length of image_shape / block_shape.
  std::optional<size_t> nd;
  if (image) nd = image->size();
  else if (block) nd = block->size();
  else if (ctx.input(1).shape.is_static()) nd = static_cast<size_t>(ctx.input(1).shape[0].value);
  if (image && block && image->size() != block->size())
    return ctx.error("image_shape [{}] and block_shape [{}] differ in length", fmt::join(*image, ","),
                     fmt::join(*block, ","));
  Dim channels;
  if (block) {
    int64_t block_size = 1;
    for (int64_t b : *block) {
      if (b < 1) return ctx.error("block_shape [{}] must be positive", fmt::join(*block, ","));
      block_size *= b;
    }
    if (cols.known() && cols.value % block_size != 0)
      return ctx.error("input dim 1 ({}) is not a multiple of prod(block_shape) = {}", cols.value, block_size);
    if (cols.known()) channels = Dim(cols.value / block_size);
  }
  if (image && block) {
    for (int64_t d : *image)
      if (d < 1) return ctx.error("image_shape [{}] must be positive", fmt::join(*image, ","));
    KILN_ASSIGN_OR_RETURN(Window w, resolve_window(ctx.node(), *image, &*block, false));
    int64_t count = 1;
    for (int64_t o : w.out) count *= o;
    if (blocks.known() && blocks.value != count)
      return ctx.error("input dim 2 ({}) must be the number of blocks, {} ([{}])", blocks.value, count,
                       fmt::join(w.out, "x"));
  }
  if (!nd) {
    ctx.set_output(0, in.dtype, Shape());
    return Status::Ok();
  }
  std::vector<Dim> out = {n, channels};
  for (size_t i = 0; i < *nd; ++i) out.push_back(image ? Dim((*image)[i]) : Dim());
  ctx.set_output(0, in.dtype, Shape(out));
  return Status::Ok();
}

}  // namespace
}  // namespace kiln

KILN_REGISTER_OP({.name = "Col2Im", .min_inputs = 3, .max_inputs = 3, .infer = kiln::infer_col2im});
