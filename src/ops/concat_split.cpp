// Concat and Split along one axis. Small integer inputs (shape arithmetic) are folded.
#include "ops/tensor_infer_util.hpp"

namespace kiln {
namespace {

Status infer_concat(InferContext& ctx) {
  if (!ctx.attrs().has("axis")) return ctx.error("attribute axis is required");
  DType dtype = DType::kUndefined;
  const Shape* ranked = nullptr;
  for (size_t i = 0; i < ctx.num_inputs(); ++i) {
    if (!input_wired(ctx, i)) return ctx.error("input {} is missing", i);
    const TensorType& t = ctx.input(i);
    if (t.dtype != DType::kUndefined) {
      if (dtype != DType::kUndefined && t.dtype != dtype)
        return ctx.error("inputs have different dtypes: {} and {}", dtype_name(dtype), dtype_name(t.dtype));
      dtype = t.dtype;
    }
    if (t.shape.has_rank() && !ranked) ranked = &t.shape;
  }
  if (!ranked) {
    ctx.set_output(0, dtype, Shape::unknown_rank());
    return Status::Ok();
  }
  const int64_t rank = static_cast<int64_t>(ranked->rank());
  KILN_ASSIGN_OR_RETURN(int64_t axis, normalize_axis(ctx, ctx.attrs().i("axis"), rank));
  if (rank == 0) return ctx.error("cannot concatenate scalars");
  std::vector<Dim> out = ranked->dims();
  out[static_cast<size_t>(axis)] = Dim(0);
  for (size_t i = 0; i < ctx.num_inputs(); ++i) {
    const Shape& s = ctx.input(i).shape;
    if (!s.has_rank()) {
      out[static_cast<size_t>(axis)] = Dim();
      continue;
    }
    if (static_cast<int64_t>(s.rank()) != rank)
      return ctx.error("input {} has shape {}, but input 0 has rank {}", i, s.to_string(), rank);
    for (size_t k = 0; k < s.rank(); ++k) {
      Dim& o = out[k];
      const Dim& d = s[k];
      if (static_cast<int64_t>(k) == axis) {
        o = o.known() && d.known() ? Dim(o.value + d.value) : Dim();
      } else if (d.known() && o.known() && d.value != o.value) {
        return ctx.error("input {} has shape {}, which differs from {} outside axis {}", i, s.to_string(),
                         ranked->to_string(), axis);
      } else if (!o.known() && d.known()) {
        o = d;
      }
    }
  }
  Shape result(std::move(out));
  // Fold shape arithmetic (Concat of Shape/Unsqueeze results into a Reshape target, ...).
  bool fold = result.is_static() && dims_numel(*result.to_dims()) <= kMaxFoldElements;
  for (size_t i = 0; fold && i < ctx.num_inputs(); ++i) fold = foldable_int(ctx, i);
  if (fold) {
    std::vector<int64_t> v;
    auto [outer, inner] = dims_outer_inner(*result.to_dims(), static_cast<size_t>(axis));
    for (int64_t o = 0; o < outer; ++o) {
      for (size_t i = 0; i < ctx.num_inputs(); ++i) {
        const Tensor* t = ctx.value(i);
        auto iv = *t->to_int64_vector();
        int64_t block = t->dims()[static_cast<size_t>(axis)] * inner;
        v.insert(v.end(), iv.begin() + o * block, iv.begin() + (o + 1) * block);
      }
    }
    set_int_output_value(ctx, 0, dtype, *result.to_dims(), v);
  }
  ctx.set_output(0, dtype, std::move(result));
  return Status::Ok();
}

Status infer_split(InferContext& ctx) {
  const TensorType& in = ctx.input(0);
  const size_t n = ctx.num_outputs();
  const bool has_num = ctx.attrs().has("num_outputs");
  if (has_num && ctx.attrs().i("num_outputs") != static_cast<int64_t>(n))
    return ctx.error("num_outputs is {}, but the node has {} outputs", ctx.attrs().i("num_outputs"), n);
  std::optional<std::vector<int64_t>> split;
  const bool split_wired = input_wired(ctx, 1);
  if (split_wired) {
    KILN_ASSIGN_OR_RETURN(split, int_list_input(ctx, 1, "split"));
    if (split && split->empty()) split.reset();  // an empty split input counts as absent
    if (has_num && (split || !ctx.value(1)))
      return ctx.error("the split input and the num_outputs attribute cannot both be given");
    if (split && split->size() != n)
      return ctx.error("split has {} values, but the node has {} outputs", split->size(), n);
  }
  if (!in.shape.has_rank()) {
    for (size_t i = 0; i < n; ++i) ctx.set_output(i, in.dtype, Shape::unknown_rank());
    return Status::Ok();
  }
  KILN_ASSIGN_OR_RETURN(int64_t axis, normalize_axis(ctx, ctx.attrs().i("axis", 0), static_cast<int64_t>(in.shape.rank())));
  if (in.shape.rank() == 0) return ctx.error("cannot split a scalar");
  const Dim& d = in.shape[static_cast<size_t>(axis)];
  std::vector<Dim> sizes(n);
  if (split) {
    int64_t sum = 0;
    for (size_t i = 0; i < n; ++i) {
      if ((*split)[i] < 0) return ctx.error("split [{}] has a negative size", fmt::join(*split, ","));
      sum += (*split)[i];
      sizes[i] = Dim((*split)[i]);
    }
    if (d.known() && sum != d.value)
      return ctx.error("split [{}] sums to {}, but axis {} of input shape {} has size {}", fmt::join(*split, ","), sum,
                       axis, in.shape.to_string(), d.value);
  } else if ((!split_wired || ctx.value(1)) && d.known()) {
    // Equal parts; when the size does not divide evenly, the last part is smaller.
    const int64_t chunk = (d.value + static_cast<int64_t>(n) - 1) / static_cast<int64_t>(n);
    const int64_t last = d.value - chunk * static_cast<int64_t>(n - 1);
    if (last < 0)
      return ctx.error("axis {} of input shape {} cannot be split into {} parts", axis, in.shape.to_string(), n);
    for (size_t i = 0; i < n; ++i) sizes[i] = Dim(i + 1 == n ? last : chunk);
  }
  int64_t offset = 0;
  const Tensor* value = foldable_int(ctx, 0) && in.shape.rank() == 1 ? ctx.value(0) : nullptr;
  for (size_t i = 0; i < n; ++i) {
    std::vector<Dim> dims = in.shape.dims();
    dims[static_cast<size_t>(axis)] = sizes[i];
    ctx.set_output(i, in.dtype, Shape(std::move(dims)));
    if (value && sizes[i].known()) {
      auto v = *value->to_int64_vector();
      set_int_output_value(ctx, i, in.dtype, {sizes[i].value},
                           std::vector<int64_t>(v.begin() + offset, v.begin() + offset + sizes[i].value));
      offset += sizes[i].value;
    }
  }
  return Status::Ok();
}

}  // namespace
}  // namespace kiln

KILN_REGISTER_OP({.name = "Concat", .min_inputs = 1, .infer = kiln::infer_concat});
KILN_REGISTER_OP({.name = "Split", .min_inputs = 1, .max_inputs = 2, .max_outputs = INT_MAX, .infer = kiln::infer_split});
