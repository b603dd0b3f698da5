// Slice (opset 13 form: starts/ends/axes/steps inputs) with the spec's clamping rules.
#include "ops/slice.hpp"

#include <algorithm>

#include "ops/tensor_infer_util.hpp"

namespace kiln {

Expected<std::vector<SliceSpec>> slice_specs(const Node& node, int64_t rank, const std::vector<int64_t>& starts,
                                             const std::vector<int64_t>& ends,
                                             const std::optional<std::vector<int64_t>>& axes,
                                             const std::optional<std::vector<int64_t>>& steps) {
  const size_t n = starts.size();
  if (ends.size() != n || (axes && axes->size() != n) || (steps && steps->size() != n))
    return invalid_model("{}: starts, ends, axes and steps must have one length, got {}, {}, {}, {}", node.describe(),
                         n, ends.size(), axes ? axes->size() : n, steps ? steps->size() : n);
  std::vector<SliceSpec> specs(n);
  std::vector<bool> seen(static_cast<size_t>(std::max<int64_t>(rank, 0)), false);
  for (size_t i = 0; i < n; ++i) {
    int64_t a = axes ? (*axes)[i] : static_cast<int64_t>(i);
    if (a < -rank || a >= rank)
      return invalid_model("{}: axis {} is out of range for rank {}", node.describe(), a, rank);
    if (a < 0) a += rank;
    if (seen[static_cast<size_t>(a)]) return invalid_model("{}: axis {} is sliced twice", node.describe(), a);
    seen[static_cast<size_t>(a)] = true;
    int64_t step = steps ? (*steps)[i] : 1;
    if (step == 0) return invalid_model("{}: step of axis {} is 0", node.describe(), a);
    specs[i] = SliceSpec{a, starts[i], ends[i], step};
  }
  return specs;
}

SliceRange slice_range(int64_t dim, const SliceSpec& s) {
  if (dim <= 0) return {0, 0};
  int64_t start = s.start, end = s.end;
  // Negative values count from the end; INT64_MIN + dim cannot overflow because dim >= 0.
  if (start < 0) start += dim;
  if (end < 0) end += dim;
  // Counts are computed as 1 + (distance - 1) / |step| so that huge steps cannot overflow.
  if (s.step > 0) {
    start = std::clamp<int64_t>(start, 0, dim);
    end = std::clamp<int64_t>(end, 0, dim);
    return {start, end > start ? 1 + (end - start - 1) / s.step : 0};
  }
  start = std::clamp<int64_t>(start, 0, dim - 1);
  end = std::clamp<int64_t>(end, -1, dim - 1);
  const int64_t abs_step = s.step == INT64_MIN ? INT64_MAX : -s.step;
  return {start, start > end ? 1 + (start - end - 1) / abs_step : 0};
}

namespace {

std::optional<std::vector<int64_t>> optional_input(const InferContext& ctx, size_t i, bool* unknown) {
  if (!input_wired(ctx, i)) return std::nullopt;
  auto v = int_values(ctx, i);
  if (!v) *unknown = true;
  return v;
}

Status infer_slice(InferContext& ctx) {
  const TensorType& in = ctx.input(0);
  for (size_t i = 1; i < 5; ++i)
    if (input_wired(ctx, i)) KILN_RETURN_IF_ERROR(int_list_input(ctx, i, i == 1 ? "starts" : i == 2 ? "ends" : i == 3 ? "axes" : "steps"));
  if (!in.shape.has_rank()) {
    ctx.set_output(0, in.dtype, Shape::unknown_rank());
    return Status::Ok();
  }
  const int64_t rank = static_cast<int64_t>(in.shape.rank());
  bool unknown = false;
  auto starts = int_values(ctx, 1), ends = int_values(ctx, 2);
  auto axes = optional_input(ctx, 3, &unknown);
  bool axes_unknown = unknown;
  auto steps = optional_input(ctx, 4, &unknown);
  if (!starts || !ends || unknown) {
    // Axes that are not sliced keep their dims when the axes are known.
    std::vector<Dim> out(static_cast<size_t>(rank));
    if (axes && !axes_unknown) {
      out = in.shape.dims();
      for (int64_t a : *axes)
        if (a >= -rank && a < rank) out[static_cast<size_t>(a < 0 ? a + rank : a)] = Dim();
    }
    ctx.set_output(0, in.dtype, Shape(std::move(out)));
    return Status::Ok();
  }
  KILN_ASSIGN_OR_RETURN(auto specs, slice_specs(ctx.node(), rank, *starts, *ends, axes, steps));
  std::vector<Dim> out = in.shape.dims();
  for (const SliceSpec& s : specs) {
    Dim& d = out[static_cast<size_t>(s.axis)];
    if (d.known()) d = Dim(slice_range(d.value, s).count);
    else if (!(s.start == 0 && s.step == 1 && s.end >= INT32_MAX)) d = Dim();  // [0:] keeps a symbolic dim
  }
  Shape result(std::move(out));
  if (rank == 1 && foldable_int(ctx, 0) && result.is_static()) {
    auto v = *ctx.value(0)->to_int64_vector();
    SliceRange r = slice_range(static_cast<int64_t>(v.size()), specs.empty() ? SliceSpec{0, 0, INT64_MAX, 1} : specs[0]);
    std::vector<int64_t> sliced;
    const int64_t step = specs.empty() ? 1 : specs[0].step;
    for (int64_t i = 0; i < r.count; ++i) sliced.push_back(v[static_cast<size_t>(r.first + i * step)]);
    set_int_output_value(ctx, 0, in.dtype, *result.to_dims(), sliced);
  }
  ctx.set_output(0, in.dtype, std::move(result));
  return Status::Ok();
}

}  // namespace
}  // namespace kiln

KILN_REGISTER_OP({.name = "Slice", .min_inputs = 3, .max_inputs = 5, .infer = kiln::infer_slice});
