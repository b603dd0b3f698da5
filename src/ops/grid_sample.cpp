// GridSample (opset 20: N-d, modes linear/nearest/cubic; the importer renames opset 16's
// bilinear/bicubic): X [N, C, d1..dr] sampled at grid [N, o1..or, r] -> [N, C, o1..or].
// AffineGrid (opset 20): theta [N, 2, 3] / [N, 3, 4] and size (N, C, H, W) / (N, C, D, H, W)
// -> grid [N, H, W, 2] / [N, D, H, W, 3].
#include "ops/infer_util.hpp"

namespace kiln {
namespace {

Status check_align_corners(const InferContext& ctx) {
  const int64_t a = ctx.attrs().i("align_corners", 0);
  if (a != 0 && a != 1) return ctx.error("attribute align_corners must be 0 or 1, got {}", a);
  return Status::Ok();
}

Status infer_grid_sample(InferContext& ctx) {
  const std::string mode = ctx.attrs().s("mode", "linear");
  if (mode != "linear" && mode != "nearest" && mode != "cubic")
    return ctx.error("mode must be 'linear', 'nearest' or 'cubic', got '{}'", mode);
  const std::string padding = ctx.attrs().s("padding_mode", "zeros");
  if (padding != "zeros" && padding != "border" && padding != "reflection")
    return ctx.error("padding_mode must be 'zeros', 'border' or 'reflection', got '{}'", padding);
  KILN_RETURN_IF_ERROR(check_align_corners(ctx));
  const TensorType& x = ctx.input(0);
  const TensorType& grid = ctx.input(1);
  if (!is_floating(grid.dtype)) return ctx.error("grid must be a float tensor, got {}", dtype_name(grid.dtype));
  if (x.shape.has_rank() && x.shape.rank() < 3)
    return ctx.error("X must be [N, C, d1, ..., dr] with r >= 1, got {}", x.shape.to_string());
  if (x.shape.has_rank())
    for (size_t i = 2; i < x.shape.rank(); ++i)
      if (x.shape[i].known() && x.shape[i].value == 0)
        return ctx.error("X {} has an empty spatial dim: there is nothing to sample", x.shape.to_string());
  if (!grid.shape.has_rank()) {
    ctx.set_output(0, x.dtype, x.shape.has_rank() ? Shape(std::vector<Dim>(x.shape.rank())) : Shape());
    return Status::Ok();
  }
  const size_t rank = grid.shape.rank();  // N, o1..or, r: the rank of X and Y too
  const Dim& coords = grid.shape[rank - 1];
  if (rank < 3 || (x.shape.has_rank() && x.shape.rank() != rank) ||
      (coords.known() && coords.value != static_cast<int64_t>(rank - 2)))
    return ctx.error("grid must be [N, o1, ..., or, r] for X [N, C, d1, ..., dr], got grid {} and X {}",
                     grid.shape.to_string(), x.shape.to_string());
  Dim n = grid.shape[0];
  if (x.shape.has_rank()) {
    const Dim& xn = x.shape[0];
    if (xn.known() && n.known() && xn.value != n.value)
      return ctx.error("X {} and grid {} differ in batch size", x.shape.to_string(), grid.shape.to_string());
    if (!n.known()) n = xn;
  }
  std::vector<Dim> out = {n, x.shape.has_rank() ? x.shape[1] : Dim()};
  for (size_t i = 1; i + 1 < rank; ++i) out.push_back(grid.shape[i]);
  ctx.set_output(0, x.dtype, Shape(out));
  return Status::Ok();
}

Status infer_affine_grid(InferContext& ctx) {
  KILN_RETURN_IF_ERROR(check_align_corners(ctx));
  const TensorType& theta = ctx.input(0);
  if (!is_floating(theta.dtype)) return ctx.error("theta must be a float tensor, got {}", dtype_name(theta.dtype));
  if (ctx.input(1).dtype != DType::kInt64) return ctx.error("size must be int64, got {}", dtype_name(ctx.input(1).dtype));
  const Shape& t = theta.shape;
  if (t.has_rank() && (t.rank() != 3 || (t[1].known() && t[1].value != 2 && t[1].value != 3) ||
                       (t[1].known() && t[2].known() && t[2].value != t[1].value + 1)))
    return ctx.error("theta must be [N, 2, 3] (2-D) or [N, 3, 4] (3-D), got {}", t.to_string());
  const Shape& s = ctx.input(1).shape;
  if (s.has_rank() && (s.rank() != 1 || (s[0].known() && s[0].value != 4 && s[0].value != 5)))
    return ctx.error("size must hold 4 (N, C, H, W) or 5 (N, C, D, H, W) values, got shape {}", s.to_string());
  // The spatial rank, from theta or from size.
  int64_t nd = -1;
  if (t.has_rank() && t[1].known()) nd = t[1].value;
  if (s.has_rank() && s[0].known()) {
    if (nd >= 0 && nd != s[0].value - 2)
      return ctx.error("theta {} is for {}-D grids but size has {} values", t.to_string(), nd, s[0].value);
    nd = s[0].value - 2;
  }
  Dim n = t.has_rank() ? t[0] : Dim();
  auto size = int_values(ctx, 1);
  if (size) {
    for (int64_t v : *size)
      if (v < 0) return ctx.error("size [{}] must not be negative", fmt::join(*size, ","));
    if (n.known() && (*size)[0] != n.value)
      return ctx.error("size [{}] has batch {} but theta has {}", fmt::join(*size, ","), (*size)[0], n.value);
    n = Dim((*size)[0]);
  }
  if (nd < 0) {
    ctx.set_output(0, theta.dtype, Shape());
    return Status::Ok();
  }
  std::vector<Dim> out = {n};
  for (int64_t i = 0; i < nd; ++i) out.push_back(size ? Dim((*size)[static_cast<size_t>(2 + i)]) : Dim());
  out.push_back(Dim(nd));
  ctx.set_output(0, theta.dtype, Shape(out));
  return Status::Ok();
}

}  // namespace
}  // namespace kiln

KILN_REGISTER_OP({.name = "GridSample", .min_inputs = 2, .max_inputs = 2, .infer = kiln::infer_grid_sample});
KILN_REGISTER_OP({.name = "AffineGrid", .min_inputs = 2, .max_inputs = 2, .infer = kiln::infer_affine_grid});
