// Resize: nearest/linear/cubic over any subset of axes, from scales or sizes.
#include "ops/resize.hpp"

#include <cmath>

#include "ops/tensor_infer_util.hpp"

namespace kiln {

namespace {
template <typename E>
Expected<E> pick(const Node& node, const char* attr, const std::string& value,
                 std::initializer_list<std::pair<const char*, E>> options) {
  std::string names;
  for (const auto& [name, e] : options) {
    if (value == name) return e;
    names += (names.empty() ? "" : ", ") + std::string(name);
  }
  return invalid_model("{}: {} must be one of {}, got '{}'", node.describe(), attr, names, value);
}
}  // namespace

Expected<ResizeAttrs> resize_attrs(const Node& node, int64_t rank) {
  using A = ResizeAttrs;
  const Attributes& at = node.attrs;
  A r;
  KILN_ASSIGN_OR_RETURN(r.mode, pick<A::Mode>(node, "mode", at.s("mode", "nearest"),
                                              {{"nearest", A::Mode::kNearest}, {"linear", A::Mode::kLinear},
                                               {"cubic", A::Mode::kCubic}}));
  KILN_ASSIGN_OR_RETURN(r.coord, pick<A::Coord>(node, "coordinate_transformation_mode",
                                                at.s("coordinate_transformation_mode", "half_pixel"),
                                                {{"half_pixel", A::Coord::kHalfPixel},
                                                 {"half_pixel_symmetric", A::Coord::kHalfPixelSymmetric},
                                                 {"pytorch_half_pixel", A::Coord::kPytorchHalfPixel},
                                                 {"align_corners", A::Coord::kAlignCorners},
                                                 {"asymmetric", A::Coord::kAsymmetric},
                                                 {"tf_crop_and_resize", A::Coord::kTfCropAndResize}}));
  KILN_ASSIGN_OR_RETURN(r.nearest, pick<A::Nearest>(node, "nearest_mode", at.s("nearest_mode", "round_prefer_floor"),
                                                    {{"round_prefer_floor", A::Nearest::kRoundPreferFloor},
                                                     {"round_prefer_ceil", A::Nearest::kRoundPreferCeil},
                                                     {"floor", A::Nearest::kFloor}, {"ceil", A::Nearest::kCeil}}));
  KILN_ASSIGN_OR_RETURN(r.policy, pick<A::AspectPolicy>(node, "keep_aspect_ratio_policy",
                                                        at.s("keep_aspect_ratio_policy", "stretch"),
                                                        {{"stretch", A::AspectPolicy::kStretch},
                                                         {"not_larger", A::AspectPolicy::kNotLarger},
                                                         {"not_smaller", A::AspectPolicy::kNotSmaller}}));
  r.cubic_a = at.f("cubic_coeff_a", -0.75f);
  r.exclude_outside = at.i("exclude_outside", 0) != 0;
  r.antialias = at.i("antialias", 0) != 0;
  r.extrapolation_value = at.f("extrapolation_value", 0.f);
  if (at.has("axes")) {
    std::vector<bool> seen(static_cast<size_t>(rank), false);
    for (int64_t a : at.ints("axes")) {
      if (a < -rank || a >= rank) return invalid_model("{}: axis {} is out of range for rank {}", node.describe(), a, rank);
      if (a < 0) a += rank;
      if (seen[static_cast<size_t>(a)]) return invalid_model("{}: axis {} is repeated in axes", node.describe(), a);
      seen[static_cast<size_t>(a)] = true;
      r.axes.push_back(a);
    }
  } else {
    for (int64_t i = 0; i < rank; ++i) r.axes.push_back(i);
  }
  return r;
}

Expected<ResizePlan> resize_plan(const Node& node, const ResizeAttrs& attrs, const std::vector<Dim>& in,
                                 const std::optional<std::vector<double>>& scales,
                                 const std::optional<std::vector<int64_t>>& sizes,
                                 const std::optional<std::vector<double>>& roi) {
  const size_t rank = in.size(), n = attrs.axes.size();
  if (scales && sizes) return invalid_model("{}: only one of scales and sizes may be given", node.describe());
  if (!scales && !sizes) return invalid_model("{}: one of scales and sizes must be given", node.describe());
  const size_t given = scales ? scales->size() : sizes->size();
  if (given != n)
    return invalid_model("{}: {} has {} values, expected {} (one per resized axis)", node.describe(),
                         scales ? "scales" : "sizes", given, n);
  ResizePlan p;
  p.out = in;
  p.scales.assign(rank, 1.0);
  p.roi_start.assign(rank, 0.0);
  p.roi_end.assign(rank, 1.0);
  if (roi && attrs.coord == ResizeAttrs::Coord::kTfCropAndResize) {
    if (roi->size() != 2 * n)
      return invalid_model("{}: roi has {} values, expected {}", node.describe(), roi->size(), 2 * n);
    for (size_t i = 0; i < n; ++i) {
      p.roi_start[static_cast<size_t>(attrs.axes[i])] = (*roi)[i];
      p.roi_end[static_cast<size_t>(attrs.axes[i])] = (*roi)[n + i];
    }
  }
  if (scales) {
    for (size_t i = 0; i < n; ++i) {
      const double s = (*scales)[i];
      const size_t a = static_cast<size_t>(attrs.axes[i]);
      if (!(s > 0)) return invalid_model("{}: scales must be positive, got {}", node.describe(), s);
      p.scales[a] = s;
      const double extent = p.roi_end[a] - p.roi_start[a];
      if (in[a].known()) p.out[a] = Dim(static_cast<int64_t>(std::floor(static_cast<double>(in[a].value) * extent * s)));
      else if (!(s == 1.0 && extent == 1.0)) p.out[a] = Dim();
    }
    return p;
  }
  for (size_t i = 0; i < n; ++i)
    if ((*sizes)[i] < 0) return invalid_model("{}: sizes has a negative value {}", node.describe(), (*sizes)[i]);
  if (attrs.policy == ResizeAttrs::AspectPolicy::kStretch) {
    for (size_t i = 0; i < n; ++i) {
      const size_t a = static_cast<size_t>(attrs.axes[i]);
      p.out[a] = Dim((*sizes)[i]);
      p.scales[a] = in[a].known() && in[a].value > 0
                        ? static_cast<double>((*sizes)[i]) / static_cast<double>(in[a].value)
                        : std::nan("");
    }
    return p;
  }
  // keep_aspect_ratio_policy: one scale for every resized axis, the smallest or largest ratio.
  double scale = 0;
  for (size_t i = 0; i < n; ++i) {
    const Dim& d = in[static_cast<size_t>(attrs.axes[i])];
    if (!d.known() || d.value == 0) {
      for (int64_t a : attrs.axes) p.out[static_cast<size_t>(a)] = Dim();
      return p;
    }
    const double r = static_cast<double>((*sizes)[i]) / static_cast<double>(d.value);
    if (i == 0) scale = r;
    else scale = attrs.policy == ResizeAttrs::AspectPolicy::kNotLarger ? std::min(scale, r) : std::max(scale, r);
  }
  for (int64_t a : attrs.axes) {
    const size_t k = static_cast<size_t>(a);
    p.scales[k] = scale;
    p.out[k] = Dim(static_cast<int64_t>(scale * static_cast<double>(in[k].value) + 0.5));  // round half up
  }
  return p;
}

namespace {

// An optional input that counts as absent when unwired or empty; nullopt with *unknown set when
// wired but not known yet.
std::optional<std::vector<double>> optional_values(const InferContext& ctx, size_t i, bool* unknown) {
  if (!input_wired(ctx, i)) return std::nullopt;
  const Shape& s = ctx.input(i).shape;
  if (s.is_static() && dims_numel(*s.to_dims()) == 0) return std::nullopt;
  const Tensor* t = ctx.value(i);
  if (!t) {
    *unknown = true;
    return std::nullopt;
  }
  if (t->numel() == 0) return std::nullopt;
  return t->to_double_vector();
}

Status infer_resize(InferContext& ctx) {
  const TensorType& x = ctx.input(0);
  if (!x.shape.has_rank()) {
    ctx.set_output(0, x.dtype, Shape::unknown_rank());
    return Status::Ok();
  }
  const int64_t rank = static_cast<int64_t>(x.shape.rank());
  KILN_ASSIGN_OR_RETURN(ResizeAttrs attrs, resize_attrs(ctx.node(), rank));
  bool unknown = false;
  auto roi = optional_values(ctx, 1, &unknown);
  auto scales = optional_values(ctx, 2, &unknown);
  auto sizes_d = optional_values(ctx, 3, &unknown);
  if (unknown) {
    ctx.set_output(0, x.dtype, Shape(std::vector<Dim>(static_cast<size_t>(rank))));
    return Status::Ok();
  }
  if (input_wired(ctx, 3) && sizes_d && !is_integer(ctx.input(3).dtype))
    return ctx.error("sizes must be int64, got {}", dtype_name(ctx.input(3).dtype));
  std::optional<std::vector<int64_t>> sizes;
  if (sizes_d) sizes = int_values(ctx, 3);
  KILN_ASSIGN_OR_RETURN(ResizePlan plan, resize_plan(ctx.node(), attrs, x.shape.dims(), scales, sizes, roi));
  ctx.set_output(0, x.dtype, Shape(std::move(plan.out)));
  return Status::Ok();
}

}  // namespace
}  // namespace kiln

KILN_REGISTER_OP({.name = "Resize", .min_inputs = 1, .max_inputs = 4, .infer = kiln::infer_resize});
