// Trilu (keep the upper/lower triangle of the last two dims), OneHot, ReverseSequence.
#include "ops/tensor_infer_util.hpp"

namespace kiln {
namespace {

Status infer_trilu(InferContext& ctx) {
  const TensorType& in = ctx.input(0);
  if (in.shape.has_rank() && in.shape.rank() < 2)
    return ctx.error("input must have rank >= 2, got shape {}", in.shape.to_string());
  if (input_wired(ctx, 1)) {
    const Shape& k = ctx.input(1).shape;
    if (k.is_static() && dims_numel(*k.to_dims()) != 1) return ctx.error("k must be a scalar, got shape {}", k.to_string());
    if (ctx.input(1).dtype != DType::kUndefined && ctx.input(1).dtype != DType::kInt64)
      return ctx.error("k must be int64, got {}", dtype_name(ctx.input(1).dtype));
  }
  ctx.set_output(0, in.dtype, in.shape);
  return Status::Ok();
}

Status infer_one_hot(InferContext& ctx) {
  const TensorType& idx = ctx.input(0);
  const TensorType& values = ctx.input(2);
  if (values.shape.is_static() && dims_numel(*values.shape.to_dims()) != 2)
    return ctx.error("values must hold 2 elements [off, on], got shape {}", values.shape.to_string());
  const Shape& ds = ctx.input(1).shape;
  if (ds.is_static() && dims_numel(*ds.to_dims()) != 1) return ctx.error("depth must be a scalar, got shape {}", ds.to_string());
  if (!idx.shape.has_rank()) {
    ctx.set_output(0, values.dtype, Shape::unknown_rank());
    return Status::Ok();
  }
  const int64_t out_rank = static_cast<int64_t>(idx.shape.rank()) + 1;
  int64_t axis = ctx.attrs().i("axis", -1);
  if (axis < -out_rank || axis >= out_rank)
    return ctx.error("axis {} is out of range for output rank {}", axis, out_rank);
  if (axis < 0) axis += out_rank;
  Dim depth;
  if (const Tensor* d = ctx.value(1)) {
    const double v = d->scalar_as_double();
    if (!(v >= 1)) return ctx.error("depth must be positive, got {}", v);
    depth = Dim(static_cast<int64_t>(v));
  }
  std::vector<Dim> out = idx.shape.dims();
  out.insert(out.begin() + axis, depth);
  ctx.set_output(0, values.dtype, Shape(std::move(out)));
  return Status::Ok();
}

Status infer_reverse_sequence(InferContext& ctx) {
  const TensorType& in = ctx.input(0);
  const int64_t b = ctx.attrs().i("batch_axis", 1), t = ctx.attrs().i("time_axis", 0);
  if (!((b == 0 && t == 1) || (b == 1 && t == 0)))
    return ctx.error("batch_axis and time_axis must be 0 and 1 (in some order), got {} and {}", b, t);
  if (in.shape.has_rank() && in.shape.rank() < 2)
    return ctx.error("input must have rank >= 2, got shape {}", in.shape.to_string());
  const Shape& lens = ctx.input(1).shape;
  if (lens.has_rank() && lens.rank() != 1) return ctx.error("sequence_lens must be 1-D, got shape {}", lens.to_string());
  if (in.shape.has_rank() && lens.has_rank() && in.shape[static_cast<size_t>(b)].known() && lens[0].known() &&
      in.shape[static_cast<size_t>(b)].value != lens[0].value)
    return ctx.error("sequence_lens has {} values, but the batch dim of input shape {} is {}", lens[0].value,
                     in.shape.to_string(), in.shape[static_cast<size_t>(b)].value);
  ctx.set_output(0, in.dtype, in.shape);
  return Status::Ok();
}

}  // namespace
}  // namespace kiln

KILN_REGISTER_OP({.name = "Trilu", .min_inputs = 1, .max_inputs = 2, .infer = kiln::infer_trilu});
KILN_REGISTER_OP({.name = "OneHot", .min_inputs = 3, .max_inputs = 3, .infer = kiln::infer_one_hot});
KILN_REGISTER_OP({.name = "ReverseSequence", .min_inputs = 2, .max_inputs = 2, .infer = kiln::infer_reverse_sequence});
