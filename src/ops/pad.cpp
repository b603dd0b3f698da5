// Pad (constant/reflect/edge/wrap; pads, constant_value and axes inputs) and CenterCropPad.
#include "ops/pad.hpp"

#include "ops/tensor_infer_util.hpp"

namespace kiln {

Expected<std::vector<PadAmount>> pad_amounts(const Node& node, int64_t rank, const std::vector<int64_t>& pads,
                                             const std::optional<std::vector<int64_t>>& axes) {
  std::vector<int64_t> ax;
  if (axes) {
    ax = *axes;
  } else {
    for (int64_t i = 0; i < rank; ++i) ax.push_back(i);
  }
  if (pads.size() != 2 * ax.size())
    return invalid_model("{}: pads has {} values, expected {} (2 per padded axis of an input of rank {})",
                         node.describe(), pads.size(), 2 * ax.size(), rank);
  std::vector<PadAmount> out(static_cast<size_t>(rank));
  std::vector<bool> seen(static_cast<size_t>(rank), false);
  for (size_t i = 0; i < ax.size(); ++i) {
    int64_t a = ax[i];
    if (a < -rank || a >= rank) return invalid_model("{}: axis {} is out of range for rank {}", node.describe(), a, rank);
    if (a < 0) a += rank;
    if (seen[static_cast<size_t>(a)]) return invalid_model("{}: axis {} is padded twice", node.describe(), a);
    seen[static_cast<size_t>(a)] = true;
    out[static_cast<size_t>(a)] = {pads[i], pads[i + ax.size()]};
  }
  return out;
}

Expected<std::vector<PadAmount>> center_crop_pad_amounts(const Node& node, const Dims& dims,
                                                         const std::vector<int64_t>& shape) {
  const int64_t rank = static_cast<int64_t>(dims.size());
  std::vector<int64_t> ax = node.attrs.ints("axes");
  if (!node.attrs.has("axes"))
    for (int64_t i = 0; i < rank; ++i) ax.push_back(i);
  if (shape.size() != ax.size())
    return invalid_model("{}: shape has {} values, expected {} (one per axis)", node.describe(), shape.size(), ax.size());
  std::vector<PadAmount> out(dims.size());
  for (size_t i = 0; i < ax.size(); ++i) {
    int64_t a = ax[i];
    if (a < -rank || a >= rank) return invalid_model("{}: axis {} is out of range for rank {}", node.describe(), a, rank);
    if (a < 0) a += rank;
    if (shape[i] < 0) return invalid_model("{}: shape has a negative dim {}", node.describe(), shape[i]);
    const int64_t diff = shape[i] - dims[static_cast<size_t>(a)];
    const int64_t begin = diff >= 0 ? diff / 2 : -((-diff) / 2);
    out[static_cast<size_t>(a)] = {begin, diff - begin};
  }
  return out;
}

namespace {

Status infer_pad(InferContext& ctx) {
  const TensorType& in = ctx.input(0);
  const std::string mode = ctx.attrs().s("mode", "constant");
  if (mode != "constant" && mode != "reflect" && mode != "edge" && mode != "wrap")
    return ctx.error("mode must be constant, reflect, edge or wrap, got '{}'", mode);
  KILN_ASSIGN_OR_RETURN(auto pads, int_list_input(ctx, 1, "pads"));
  std::optional<std::vector<int64_t>> axes;
  bool axes_unknown = false;
  if (input_wired(ctx, 3)) {
    KILN_ASSIGN_OR_RETURN(axes, int_list_input(ctx, 3, "axes"));
    axes_unknown = !axes;
  }
  if (input_wired(ctx, 2)) {
    const TensorType& cv = ctx.input(2);
    if (cv.dtype != DType::kUndefined && in.dtype != DType::kUndefined && cv.dtype != in.dtype)
      return ctx.error("constant_value has dtype {}, but data has {}", dtype_name(cv.dtype), dtype_name(in.dtype));
    if (cv.shape.is_static() && dims_numel(*cv.shape.to_dims()) > 1)  // empty means absent
      return ctx.error("constant_value must be one value, got shape {}", cv.shape.to_string());
  }
  if (!in.shape.has_rank()) {
    ctx.set_output(0, in.dtype, Shape::unknown_rank());
    return Status::Ok();
  }
  if (!pads || axes_unknown) {
    ctx.set_output(0, in.dtype, Shape(std::vector<Dim>(in.shape.rank())));
    return Status::Ok();
  }
  const int64_t rank = static_cast<int64_t>(in.shape.rank());
  KILN_ASSIGN_OR_RETURN(auto amounts, pad_amounts(ctx.node(), rank, *pads, axes));
  std::vector<Dim> out = in.shape.dims();
  for (size_t i = 0; i < out.size(); ++i) {
    const PadAmount& p = amounts[i];
    if (!out[i].known()) {
      if (p.begin != 0 || p.end != 0) out[i] = Dim();
      continue;
    }
    const int64_t d = out[i].value, kept = d - std::max<int64_t>(0, -p.begin) - std::max<int64_t>(0, -p.end);
    const int64_t n = d + p.begin + p.end;
    if (n < 0 || kept < 0)
      return ctx.error("pads [{}] remove more than the {} elements of axis {} (input shape {})", fmt::join(*pads, ","), d,
                       i, in.shape.to_string());
    if (mode != "constant" && kept == 0 && n > 0)
      return ctx.error("{} padding of axis {} has no elements to copy (input shape {})", mode, i, in.shape.to_string());
    out[i] = Dim(n);
  }
  ctx.set_output(0, in.dtype, Shape(std::move(out)));
  return Status::Ok();
}

Status infer_center_crop_pad(InferContext& ctx) {
  const TensorType& in = ctx.input(0);
  KILN_ASSIGN_OR_RETURN(auto shape, int_list_input(ctx, 1, "shape"));
  if (!in.shape.has_rank()) {
    ctx.set_output(0, in.dtype, Shape::unknown_rank());
    return Status::Ok();
  }
  const int64_t rank = static_cast<int64_t>(in.shape.rank());
  std::vector<int64_t> axes = ctx.attrs().ints("axes");
  if (!ctx.attrs().has("axes"))
    for (int64_t i = 0; i < rank; ++i) axes.push_back(i);
  KILN_ASSIGN_OR_RETURN(axes, normalize_axes(ctx, axes, rank));
  std::vector<Dim> out = in.shape.dims();
  if (shape && shape->size() != axes.size())
    return ctx.error("shape has {} values, expected {} (one per axis)", shape->size(), axes.size());
  for (size_t i = 0; i < axes.size(); ++i) {
    if (shape && (*shape)[i] < 0) return ctx.error("shape has a negative dim {}", (*shape)[i]);
    out[static_cast<size_t>(axes[i])] = shape ? Dim((*shape)[i]) : Dim();
  }
  ctx.set_output(0, in.dtype, Shape(std::move(out)));
  return Status::Ok();
}

}  // namespace
}  // namespace kiln

KILN_REGISTER_OP({.name = "Pad", .min_inputs = 2, .max_inputs = 4, .infer = kiln::infer_pad});
KILN_REGISTER_OP({.name = "CenterCropPad", .min_inputs = 2, .max_inputs = 2, .infer = kiln::infer_center_crop_pad});
