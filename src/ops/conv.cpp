// Conv and ConvTranspose: schemas and shape inference (N-d, groups, auto_pad, dilations).
#include <algorithm>

#include "ops/conv_shape.hpp"
#include "ops/infer_util.hpp"
#include "ops/window_geometry.hpp"

namespace kiln {
namespace {

// The spatial sizes of a shape (from dim 2 on); -1 where unknown.
Dims spatial_sizes(const Shape& s) {
  Dims d;
  for (size_t i = 2; i < s.rank(); ++i) d.push_back(s[i].known() ? s[i].value : -1);
  return d;
}

Dim dim_or_unknown(int64_t v) { return v >= 0 ? Dim(v) : Dim(); }

// Checks X/W/B ranks and group; returns the spatial rank (or -1 when no rank is known).
Expected<int64_t> check_conv_ranks(const InferContext& ctx, const Shape& x, const Shape& w, const Shape* bias,
                                   int64_t group) {
  if (group < 1) return ctx.error("group {} must be positive", group);
  int64_t rank = x.has_rank() ? static_cast<int64_t>(x.rank()) : (w.has_rank() ? static_cast<int64_t>(w.rank()) : -1);
  if (rank < 0) return rank;
  if (rank < 3) return ctx.error("X must have rank 3 or more (N, C, spatial...), got {}", x.to_string());
  if (x.has_rank() && w.has_rank() && x.rank() != w.rank())
    return ctx.error("X {} and W {} must have the same rank", x.to_string(), w.to_string());
  if (bias && bias->has_rank() && bias->rank() != 1)
    return ctx.error("B must be 1-D, got {}", bias->to_string());
  return rank - 2;
}

// X, W and B share one dtype.
Status check_conv_dtypes(const InferContext& ctx) {
  const DType x = ctx.input(0).dtype, w = ctx.input(1).dtype;
  if (x != w) return ctx.error("X is {} but W is {}", dtype_name(x), dtype_name(w));
  if (ctx.has_input(2) && ctx.input(2).dtype != x)
    return ctx.error("X is {} but B is {}", dtype_name(x), dtype_name(ctx.input(2).dtype));
  return Status::Ok();
}

// Checks X/W/B dtypes, then ranks and group.
Expected<int64_t> check_conv_inputs(const InferContext& ctx, int64_t group) {
  KILN_RETURN_IF_ERROR(check_conv_dtypes(ctx));
  return check_conv_ranks(ctx, ctx.input(0).shape, ctx.input(1).shape,
                          ctx.has_input(2) ? &ctx.input(2).shape : nullptr, group);
}

Status infer_conv(InferContext& ctx) {
  const int64_t group = ctx.attrs().i("group", 1);
  KILN_RETURN_IF_ERROR(check_conv_dtypes(ctx));
  KILN_ASSIGN_OR_RETURN(Shape out, conv_output_shape(ctx, ctx.input(0).shape, ctx.input(1).shape,
                                                     ctx.has_input(2) ? &ctx.input(2).shape : nullptr, group));
  ctx.set_output(0, ctx.input(0).dtype, std::move(out));
  return Status::Ok();
}

Status infer_conv_transpose(InferContext& ctx) {
  const int64_t group = ctx.attrs().i("group", 1);
  KILN_ASSIGN_OR_RETURN(int64_t nd, check_conv_inputs(ctx, group));
  const DType dtype = ctx.input(0).dtype;
  if (nd < 0) {
    ctx.set_output(0, dtype, Shape::unknown_rank());
    return Status::Ok();
  }
  const Shape& x = ctx.input(0).shape;
  const Shape& w = ctx.input(1).shape;
  Dim n = x.has_rank() ? x[0] : Dim();
  // W is (C, M / group, k...): the output has W[1] * group channels.
  Dim m = w.has_rank() && w[1].known() ? Dim(w[1].value * group) : Dim();
  if (x.has_rank() && w.has_rank() && x[1].known() && w[0].known() && x[1].value != w[0].value)
    return ctx.error("X {} has {} channels but W {} expects {}", x.to_string(), x[1].value, w.to_string(),
                     w[0].value);
  if (x.has_rank() && x[1].known() && x[1].value % group != 0)
    return ctx.error("X {} has {} channels, not divisible by group {}", x.to_string(), x[1].value, group);
  if (ctx.has_input(2) && m.known()) {
    const Shape& b = ctx.input(2).shape;
    if (b.has_rank() && b[0].known() && b[0].value != m.value)
      return ctx.error("B {} must have one value per output channel ({})", b.to_string(), m.value);
  }
  Dims in = x.has_rank() ? spatial_sizes(x) : Dims(static_cast<size_t>(nd), -1);
  Dims kernel = w.has_rank() ? spatial_sizes(w) : Dims(static_cast<size_t>(nd), -1);
  KILN_ASSIGN_OR_RETURN(Window win, resolve_transposed_window(ctx.node(), in, kernel));
  std::vector<Dim> out{n, m};
  for (int64_t v : win.out) out.push_back(dim_or_unknown(v));
  ctx.set_output(0, dtype, Shape(std::move(out)));
  return Status::Ok();
}

}  // namespace

Expected<Shape> conv_output_shape(const InferContext& ctx, const Shape& x, const Shape& w, const Shape* bias,
                                  int64_t group) {
  KILN_ASSIGN_OR_RETURN(int64_t nd, check_conv_ranks(ctx, x, w, bias, group));
  if (nd < 0) return Shape::unknown_rank();
  Dim n = x.has_rank() ? x[0] : Dim();
  Dim m = w.has_rank() ? w[0] : Dim();
  if (x.has_rank() && w.has_rank() && x[1].known() && w[1].known() && x[1].value != w[1].value * group)
    return ctx.error("X {} has {} channels but W {} with group {} expects {}", x.to_string(), x[1].value,
                     w.to_string(), group, w[1].value * group);
  if (m.known() && m.value % group != 0)
    return ctx.error("W {} has {} output channels, not divisible by group {}", w.to_string(), m.value, group);
  if (bias && m.known() && bias->has_rank() && (*bias)[0].known() && (*bias)[0].value != m.value)
    return ctx.error("B {} must have one value per output channel ({})", bias->to_string(), m.value);
  Dims in = x.has_rank() ? spatial_sizes(x) : Dims(static_cast<size_t>(nd), -1);
  std::optional<Dims> kernel;
  if (w.has_rank()) {
    Dims k = spatial_sizes(w);
    if (std::all_of(k.begin(), k.end(), [](int64_t v) { return v >= 0; })) kernel = k;
  }
  std::vector<Dim> out{n, m};
  if (!kernel && !ctx.attrs().has("kernel_shape")) {
    // The kernel size is unknown: so are the output sizes.
    for (int64_t i = 0; i < nd; ++i) out.emplace_back();
  } else {
    auto win = resolve_window(ctx.node(), in, kernel ? &*kernel : nullptr, /*ceil_mode=*/false);
    if (!win) return win.status();
    for (int64_t v : win->out) out.push_back(dim_or_unknown(v));
  }
  return Shape(std::move(out));
}

}  // namespace kiln

KILN_REGISTER_OP({.name = "Conv", .min_inputs = 2, .max_inputs = 3, .infer = kiln::infer_conv});
KILN_REGISTER_OP({.name = "ConvTranspose", .min_inputs = 2, .max_inputs = 3, .infer = kiln::infer_conv_transpose});
