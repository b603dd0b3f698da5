// Compress, NonZero, Unique: ops whose output size depends on the input data. The kernels
// allocate their outputs; inference gives the rank and whatever dims are known.
#include "ops/tensor_infer_util.hpp"

namespace kiln {
namespace {

Status infer_compress(InferContext& ctx) {
  const TensorType& in = ctx.input(0);
  const TensorType& cond = ctx.input(1);
  if (cond.dtype != DType::kUndefined && cond.dtype != DType::kBool)
    return ctx.error("condition must be bool, got {}", dtype_name(cond.dtype));
  if (cond.shape.has_rank() && cond.shape.rank() != 1)
    return ctx.error("condition must be 1-D, got shape {}", cond.shape.to_string());
  // The selected count is known when the condition is a constant.
  Dim count;
  if (const Tensor* c = ctx.value(1)) {
    int64_t n = 0;
    for (int64_t i = 0; i < c->numel(); ++i) n += c->data<bool>()[i] ? 1 : 0;
    count = Dim(n);
  }
  if (!ctx.attrs().has("axis")) {
    ctx.set_output(0, in.dtype, Shape({count}));
    return Status::Ok();
  }
  if (!in.shape.has_rank()) {
    ctx.set_output(0, in.dtype, Shape::unknown_rank());
    return Status::Ok();
  }
  KILN_ASSIGN_OR_RETURN(int64_t axis, normalize_axis(ctx, ctx.attrs().i("axis"), static_cast<int64_t>(in.shape.rank())));
  std::vector<Dim> out = in.shape.dims();
  out[static_cast<size_t>(axis)] = count;
  ctx.set_output(0, in.dtype, Shape(std::move(out)));
  return Status::Ok();
}

Status infer_non_zero(InferContext& ctx) {
  const Shape& s = ctx.input(0).shape;
  // A scalar is treated as a 1-D tensor of one element (as numpy does).
  Dim rows = s.has_rank() ? Dim(std::max<int64_t>(1, static_cast<int64_t>(s.rank()))) : Dim();
  ctx.set_output(0, DType::kInt64, Shape({rows, Dim()}));
  return Status::Ok();
}

Status infer_unique(InferContext& ctx) {
  const TensorType& in = ctx.input(0);
  Shape y({Dim()});
  if (ctx.attrs().has("axis")) {
    if (!in.shape.has_rank()) {
      y = Shape::unknown_rank();
    } else {
      KILN_ASSIGN_OR_RETURN(int64_t axis, normalize_axis(ctx, ctx.attrs().i("axis"), static_cast<int64_t>(in.shape.rank())));
      std::vector<Dim> d = in.shape.dims();
      d[static_cast<size_t>(axis)] = Dim();
      y = Shape(std::move(d));
    }
  }
  ctx.set_output(0, in.dtype, y);
  ctx.set_output(1, DType::kInt64, Shape({Dim()}));
  Dim n;  // inverse_indices has one entry per input element (or slice along axis)
  if (in.shape.has_rank()) {
    if (!ctx.attrs().has("axis")) {
      n = dim_product(in.shape.dims(), 0, in.shape.rank());
    } else {
      int64_t a = ctx.attrs().i("axis");
      n = in.shape[static_cast<size_t>(a < 0 ? a + static_cast<int64_t>(in.shape.rank()) : a)];
    }
  }
  ctx.set_output(2, DType::kInt64, Shape({n}));
  ctx.set_output(3, DType::kInt64, Shape({Dim()}));
  return Status::Ok();
}

}  // namespace
}  // namespace kiln

KILN_REGISTER_OP({.name = "Compress", .min_inputs = 2, .max_inputs = 2, .infer = kiln::infer_compress});
KILN_REGISTER_OP({.name = "NonZero", .min_inputs = 1, .max_inputs = 1, .infer = kiln::infer_non_zero});
KILN_REGISTER_OP({.name = "Unique", .min_inputs = 1, .max_inputs = 1, .max_outputs = 4, .infer = kiln::infer_unique});
