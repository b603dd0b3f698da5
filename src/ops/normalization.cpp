// Normalization ops: BatchNormalization, InstanceNormalization, LayerNormalization,
// GroupNormalization, LRN, MeanVarianceNormalization.
#include "ops/infer_util.hpp"

namespace kiln {
namespace {

Status check_floating(const InferContext& ctx, size_t input) {
  DType t = ctx.input(input).dtype;
  if (t != DType::kUndefined && !is_floating(t))
    return ctx.unsupported("input {} is {}; only floating-point types are supported", input, dtype_name(t));
  return Status::Ok();
}

// A per-channel parameter (1-D of size C) where C is X's dim 1.
Status check_per_channel(const InferContext& ctx, size_t input, const char* name) {
  const Shape& x = ctx.input(0).shape;
  const Shape& p = ctx.input(input).shape;
  if (!p.has_rank()) return Status::Ok();
  if (p.rank() != 1) return ctx.error("{} {} must be 1-D (one value per channel)", name, p.to_string());
  if (x.has_rank() && x.rank() >= 2 && x[1].known() && p[0].known() && p[0].value != x[1].value)
    return ctx.error("{} {} must have one value per channel of X {}", name, p.to_string(), x.to_string());
  return Status::Ok();
}

Status check_rank_at_least(const InferContext& ctx, size_t rank) {
  const Shape& x = ctx.input(0).shape;
  if (x.has_rank() && x.rank() < rank)
    return ctx.error("X must have rank {} or more, got {}", rank, x.to_string());
  return Status::Ok();
}

Status infer_batch_norm(InferContext& ctx) {
  KILN_RETURN_IF_ERROR(check_floating(ctx, 0));
  KILN_RETURN_IF_ERROR(check_rank_at_least(ctx, 2));
  static const char* names[] = {"X", "scale", "B", "input_mean", "input_var"};
  for (size_t i = 1; i < 5; ++i) KILN_RETURN_IF_ERROR(check_per_channel(ctx, i, names[i]));
  const bool training = ctx.attrs().i("training_mode", 0) != 0;
  if (!training && (ctx.node().has_output(1) || ctx.node().has_output(2)))
    return ctx.error("running_mean and running_var outputs require training_mode=1");
  ctx.set_output(0, ctx.input(0).dtype, ctx.input(0).shape);
  for (size_t i = 1; i < ctx.num_outputs(); ++i) ctx.set_output(i, ctx.input(2 + i).dtype, ctx.input(2 + i).shape);
  return Status::Ok();
}

Status infer_instance_norm(InferContext& ctx) {
  KILN_RETURN_IF_ERROR(check_floating(ctx, 0));
  KILN_RETURN_IF_ERROR(check_rank_at_least(ctx, 3));
  KILN_RETURN_IF_ERROR(check_per_channel(ctx, 1, "scale"));
  KILN_RETURN_IF_ERROR(check_per_channel(ctx, 2, "B"));
  return infer_same_as_input0(ctx);
}

Status infer_group_norm(InferContext& ctx) {
  KILN_RETURN_IF_ERROR(check_floating(ctx, 0));
  KILN_RETURN_IF_ERROR(check_rank_at_least(ctx, 2));
  KILN_RETURN_IF_ERROR(check_per_channel(ctx, 1, "scale"));
  KILN_RETURN_IF_ERROR(check_per_channel(ctx, 2, "bias"));
  if (!ctx.attrs().has("num_groups")) return ctx.error("attribute num_groups is required");
  const int64_t groups = ctx.attrs().i("num_groups");
  if (groups < 1) return ctx.error("num_groups {} must be positive", groups);
  const Shape& x = ctx.input(0).shape;
  if (x.has_rank() && x[1].known() && x[1].value % groups != 0)
    return ctx.error("X {} has {} channels, not divisible by num_groups {}", x.to_string(), x[1].value, groups);
  return infer_same_as_input0(ctx);
}

// stash_type is an ONNX TensorProto data type code.
Expected<DType> stash_dtype(const InferContext& ctx) {
  switch (ctx.attrs().i("stash_type", 1)) {
    case 1: return DType::kFloat32;
    case 10: return DType::kFloat16;
    case 11: return DType::kFloat64;
    case 16: return DType::kBFloat16;
    default: return ctx.error("stash_type {} is not a floating-point type", ctx.attrs().i("stash_type", 1));
  }
}

Status infer_layer_norm(InferContext& ctx) {
  KILN_RETURN_IF_ERROR(check_floating(ctx, 0));
  KILN_ASSIGN_OR_RETURN(DType stash, stash_dtype(ctx));
  const TensorType& x = ctx.input(0);
  ctx.set_output(0, x.dtype, x.shape);
  if (!x.shape.has_rank()) {
    for (size_t i = 1; i < ctx.num_outputs(); ++i) ctx.set_output(i, stash, Shape::unknown_rank());
    return Status::Ok();
  }
  const int64_t rank = static_cast<int64_t>(x.shape.rank());
  if (rank == 0) return ctx.error("X must have rank 1 or more");
  KILN_ASSIGN_OR_RETURN(int64_t axis, normalize_axis(ctx, ctx.attrs().i("axis", -1), rank));
  // Scale and B broadcast to X (they usually have X's normalized dims).
  for (size_t i = 1; i < 3; ++i) {
    if (!ctx.has_input(i)) continue;
    auto b = broadcast_shapes({x.shape, ctx.input(i).shape});
    if (!b || !(b->has_rank() && b->rank() == x.shape.rank()))
      return ctx.error("{} {} does not broadcast to X {}", i == 1 ? "Scale" : "B", ctx.input(i).shape.to_string(),
                       x.shape.to_string());
  }
  std::vector<Dim> stats(x.shape.dims().begin(), x.shape.dims().begin() + axis);
  stats.resize(static_cast<size_t>(rank), Dim(1));
  for (size_t i = 1; i < ctx.num_outputs(); ++i) ctx.set_output(i, stash, Shape(stats));
  return Status::Ok();
}

Status infer_lrn(InferContext& ctx) {
  KILN_RETURN_IF_ERROR(check_floating(ctx, 0));
  KILN_RETURN_IF_ERROR(check_rank_at_least(ctx, 2));
  if (ctx.attrs().i("size", 0) < 1) return ctx.error("attribute size (required) must be positive, got {}", ctx.attrs().i("size", 0));
  return infer_same_as_input0(ctx);
}

Status infer_mvn(InferContext& ctx) {
  KILN_RETURN_IF_ERROR(check_floating(ctx, 0));
  const Shape& x = ctx.input(0).shape;
  if (x.has_rank()) {
    for (int64_t a : ctx.attrs().ints("axes", {0, 2, 3}))
      KILN_RETURN_IF_ERROR(normalize_axis(ctx, a, static_cast<int64_t>(x.rank())));
  }
  return infer_same_as_input0(ctx);
}

}  // namespace
}  // namespace kiln

KILN_REGISTER_OP({.name = "BatchNormalization", .min_inputs = 5, .max_inputs = 5, .min_outputs = 1, .max_outputs = 3, .infer = kiln::infer_batch_norm});
KILN_REGISTER_OP({.name = "InstanceNormalization", .min_inputs = 3, .max_inputs = 3, .infer = kiln::infer_instance_norm});
KILN_REGISTER_OP({.name = "GroupNormalization", .min_inputs = 3, .max_inputs = 3, .infer = kiln::infer_group_norm});
KILN_REGISTER_OP({.name = "LayerNormalization", .min_inputs = 2, .max_inputs = 3, .min_outputs = 1, .max_outputs = 3, .infer = kiln::infer_layer_norm});
KILN_REGISTER_OP({.name = "LRN", .min_inputs = 1, .max_inputs = 1, .infer = kiln::infer_lrn});
KILN_REGISTER_OP({.name = "MeanVarianceNormalization", .min_inputs = 1, .max_inputs = 1, .infer = kiln::infer_mvn});
