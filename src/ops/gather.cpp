// Gather, GatherElements, GatherND: indexing with int32/int64 indices (negative ones count from the end).
#include "ops/tensor_infer_util.hpp"

namespace kiln {
namespace {

Status check_indices_type(const InferContext& ctx, size_t i) {
  DType t = ctx.input(i).dtype;
  if (t != DType::kUndefined && t != DType::kInt32 && t != DType::kInt64)
    return ctx.error("indices must be int32 or int64, got {}", dtype_name(t));
  return Status::Ok();
}

Status infer_gather(InferContext& ctx) {
  KILN_RETURN_IF_ERROR(check_indices_type(ctx, 1));
  const TensorType& data = ctx.input(0);
  const Shape& idx = ctx.input(1).shape;
  if (!data.shape.has_rank() || !idx.has_rank()) {
    ctx.set_output(0, data.dtype, Shape::unknown_rank());
    return Status::Ok();
  }
  const int64_t rank = static_cast<int64_t>(data.shape.rank());
  if (rank == 0) return ctx.error("data must have rank >= 1");
  KILN_ASSIGN_OR_RETURN(int64_t axis, normalize_axis(ctx, ctx.attrs().i("axis", 0), rank));
  const Dim& axis_dim = data.shape[static_cast<size_t>(axis)];
  std::vector<Dim> out(data.shape.dims().begin(), data.shape.dims().begin() + axis);
  out.insert(out.end(), idx.dims().begin(), idx.dims().end());
  out.insert(out.end(), data.shape.dims().begin() + axis + 1, data.shape.dims().end());
  Shape result(std::move(out));
  auto indices = int_values(ctx, 1);
  if (indices && axis_dim.known()) {
    for (int64_t& i : *indices) {
      if (i < -axis_dim.value || i >= axis_dim.value)
        return ctx.error("index {} is out of range for axis {} of data shape {}", i, axis, data.shape.to_string());
      if (i < 0) i += axis_dim.value;
    }
  }
  // Fold shape arithmetic such as Gather(Shape(x), 0).
  if (indices && foldable_int(ctx, 0) && result.is_static() && dims_numel(*result.to_dims()) <= kMaxFoldElements) {
    const Tensor* t = ctx.value(0);
    auto v = *t->to_int64_vector();
    int64_t outer = 1, inner = 1;
    for (int64_t k = 0; k < rank; ++k) {
      if (k < axis) outer *= t->dims()[static_cast<size_t>(k)];
      if (k > axis) inner *= t->dims()[static_cast<size_t>(k)];
    }
    std::vector<int64_t> g;
    for (int64_t o = 0; o < outer; ++o)
      for (int64_t j : *indices)
        for (int64_t i = 0; i < inner; ++i) g.push_back(v[static_cast<size_t>((o * axis_dim.value + j) * inner + i)]);
    set_int_output_value(ctx, 0, data.dtype, *result.to_dims(), g);
  }
  ctx.set_output(0, data.dtype, std::move(result));
  return Status::Ok();
}

Status infer_gather_elements(InferContext& ctx) {
  KILN_RETURN_IF_ERROR(check_indices_type(ctx, 1));
  const TensorType& data = ctx.input(0);
  const Shape& idx = ctx.input(1).shape;
  if (data.shape.has_rank()) {
    const int64_t rank = static_cast<int64_t>(data.shape.rank());
    if (rank == 0) return ctx.error("data must have rank >= 1");
    KILN_RETURN_IF_ERROR(normalize_axis(ctx, ctx.attrs().i("axis", 0), rank));
    if (idx.has_rank() && idx.rank() != data.shape.rank())
      return ctx.error("indices shape {} must have the rank of data shape {}", idx.to_string(), data.shape.to_string());
  }
  ctx.set_output(0, data.dtype, idx);
  return Status::Ok();
}

Status infer_gather_nd(InferContext& ctx) {
  const TensorType& data = ctx.input(0);
  const Shape& idx = ctx.input(1).shape;
  DType it = ctx.input(1).dtype;
  if (it != DType::kUndefined && it != DType::kInt64) return ctx.error("indices must be int64, got {}", dtype_name(it));
  const int64_t b = ctx.attrs().i("batch_dims", 0);
  if (!data.shape.has_rank() || !idx.has_rank()) {
    ctx.set_output(0, data.dtype, Shape::unknown_rank());
    return Status::Ok();
  }
  const int64_t r = static_cast<int64_t>(data.shape.rank()), q = static_cast<int64_t>(idx.rank());
  if (r < 1 || q < 1) return ctx.error("data and indices must have rank >= 1");
  if (b < 0 || b >= std::min(r, q))
    return ctx.error("batch_dims {} must be in [0, {})", b, std::min(r, q));
  for (int64_t i = 0; i < b; ++i) {
    const Dim &dd = data.shape[static_cast<size_t>(i)], &id = idx[static_cast<size_t>(i)];
    if (dd.known() && id.known() && dd.value != id.value)
      return ctx.error("batch dim {} differs: data shape {} vs indices shape {}", i, data.shape.to_string(), idx.to_string());
  }
  const Dim& last = idx[static_cast<size_t>(q - 1)];
  if (!last.known()) {
    ctx.set_output(0, data.dtype, Shape::unknown_rank());
    return Status::Ok();
  }
  const int64_t k = last.value;
  if (k < 1 || k > r - b)
    return ctx.error("the last dim of indices shape {} must be in [1, {}]", idx.to_string(), r - b);
  std::vector<Dim> out(idx.dims().begin(), idx.dims().end() - 1);
  out.insert(out.end(), data.shape.dims().begin() + b + k, data.shape.dims().end());
  ctx.set_output(0, data.dtype, Shape(std::move(out)));
  return Status::Ok();
}

}  // namespace
}  // namespace kiln

KILN_REGISTER_OP({.name = "Gather", .min_inputs = 2, .max_inputs = 2, .infer = kiln::infer_gather});
KILN_REGISTER_OP({.name = "GatherElements", .min_inputs = 2, .max_inputs = 2, .infer = kiln::infer_gather_elements});
KILN_REGISTER_OP({.name = "GatherND", .min_inputs = 2, .max_inputs = 2, .infer = kiln::infer_gather_nd});
