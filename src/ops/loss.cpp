// NegativeLogLikelihoodLoss and SoftmaxCrossEntropyLoss: input/scores (N, C, d1..dk), integer
// target/labels (N, d1..dk), optional per-class weight (C).
#include "ops/infer_util.hpp"

namespace kiln {
namespace {

// Shared by both ops: validates ranks, dtypes and `reduction`, sets the loss output (the target's
// shape for "none", a scalar otherwise) and, when present, SCE's log_prob output (like scores).
Status infer_loss(InferContext& ctx) {
  const TensorType& x = ctx.input(0);
  const TensorType& target = ctx.input(1);
  if (x.dtype != DType::kUndefined && !is_floating(x.dtype))
    return ctx.unsupported("input 0 is {}; only floating-point types are supported", dtype_name(x.dtype));
  if (target.dtype != DType::kUndefined && target.dtype != DType::kInt32 && target.dtype != DType::kInt64)
    return ctx.error("target must be int32 or int64, got {}", dtype_name(target.dtype));
  if (ctx.has_input(2) && x.dtype != DType::kUndefined && ctx.input(2).dtype != x.dtype)
    return ctx.error("weight is {} but input is {}", dtype_name(ctx.input(2).dtype), dtype_name(x.dtype));
  const std::string reduction = ctx.attrs().s("reduction", "mean");
  if (reduction != "none" && reduction != "sum" && reduction != "mean")
    return ctx.error("reduction '{}' must be none, sum or mean", reduction);

  if (x.shape.has_rank() && x.shape.rank() < 2)
    return ctx.error("input must have rank 2 or more (N, C, ...), got {}", x.shape.to_string());
  if (x.shape.has_rank() && target.shape.has_rank()) {
    if (target.shape.rank() + 1 != x.shape.rank())
      return ctx.error("target {} must have rank {} for input {}", target.shape.to_string(),
                       x.shape.rank() - 1, x.shape.to_string());
    for (size_t i = 0; i < target.shape.rank(); ++i) {
      const Dim& a = x.shape[i == 0 ? 0 : i + 1];
      const Dim& b = target.shape[i];
      if (a.known() && b.known() && a.value != b.value)
        return ctx.error("target {} does not match input {}", target.shape.to_string(), x.shape.to_string());
    }
  }
  if (ctx.has_input(2) && ctx.input(2).shape.has_rank()) {
    const Shape& w = ctx.input(2).shape;
    if (w.rank() != 1) return ctx.error("weight must be 1-D (C), got {}", w.to_string());
    if (x.shape.has_rank() && w[0].known() && x.shape[1].known() && w[0].value != x.shape[1].value)
      return ctx.error("weight {} does not match C of input {}", w.to_string(), x.shape.to_string());
  }

  Shape loss_shape = Shape::scalar();
  if (reduction == "none") {
    if (target.shape.has_rank()) {
      loss_shape = target.shape;
    } else if (x.shape.has_rank()) {
      std::vector<Dim> d = x.shape.dims();
      d.erase(d.begin() + 1);
      loss_shape = Shape(std::move(d));
    } else {
      loss_shape = Shape::unknown_rank();
    }
  }
  ctx.set_output(0, x.dtype, loss_shape);
  if (ctx.num_outputs() > 1) ctx.set_output(1, x.dtype, x.shape);
  return Status::Ok();
}

}  // namespace
}  // namespace kiln

KILN_REGISTER_OP({.name = "NegativeLogLikelihoodLoss", .min_inputs = 2, .max_inputs = 3, .infer = kiln::infer_loss});
KILN_REGISTER_OP({.name = "SoftmaxCrossEntropyLoss", .min_inputs = 2, .max_inputs = 3, .min_outputs = 1, .max_outputs = 2, .infer = kiln::infer_loss});
