// Sequence ops: SequenceEmpty, SequenceConstruct, SequenceInsert, SequenceErase, SequenceAt,
// SequenceLength, ConcatFromSequence, SplitToSequence, SequenceMap.
//
// A sequence value's TensorType describes its elements: the element dtype and the dims every
// element shares (unknown where they may differ). Positions are data: kernels check them.
#include "ops/infer_util.hpp"
#include "ops/onnx_dtype.hpp"

namespace kiln {
namespace {

TensorType sequence_of(DType dtype, Shape element) { return TensorType{dtype, std::move(element), ValueKind::kSequence}; }

// The shape both `a` and `b` have: dims that differ (or are unknown in one) become unknown.
Shape common_shape(const Shape& a, const Shape& b) {
  if (!a.has_rank() || !b.has_rank() || a.rank() != b.rank()) return Shape();
  std::vector<Dim> dims;
  for (size_t i = 0; i < a.rank(); ++i) dims.push_back(a[i] == b[i] ? a[i] : Dim());
  return Shape(std::move(dims));
}

Status require_sequence(const InferContext& ctx, size_t i) {
  if (ctx.input(i).kind != ValueKind::kSequence)
    return ctx.error("input {} must be a sequence, got {}", i, ctx.input(i).to_string());
  return Status::Ok();
}

Status require_tensor(const InferContext& ctx, size_t i) {
  if (ctx.has_input(i) && !ctx.input(i).is_tensor())
    return ctx.error("input {} must be a tensor, got {}", i, ctx.input(i).to_string());
  return Status::Ok();
}

Status infer_sequence_empty(InferContext& ctx) {
  KILN_ASSIGN_OR_RETURN(DType dt, dtype_from_onnx_code(ctx, "dtype", ctx.attrs().i("dtype", 1)));
  ctx.set_output_type(0, sequence_of(dt, Shape()));
  return Status::Ok();
}

Status infer_sequence_construct(InferContext& ctx) {
  Shape shape = ctx.input(0).shape;
  for (size_t i = 0; i < ctx.num_inputs(); ++i) {
    KILN_RETURN_IF_ERROR(require_tensor(ctx, i));
    if (ctx.input(i).dtype != ctx.input(0).dtype)
      return ctx.error("input {} has dtype {}, input 0 {}: a sequence holds one dtype", i,
                       dtype_name(ctx.input(i).dtype), dtype_name(ctx.input(0).dtype));
    shape = common_shape(shape, ctx.input(i).shape);
  }
  ctx.set_output_type(0, sequence_of(ctx.input(0).dtype, shape));
  return Status::Ok();
}

Status infer_sequence_insert(InferContext& ctx) {
  KILN_RETURN_IF_ERROR(require_sequence(ctx, 0));
  KILN_RETURN_IF_ERROR(require_tensor(ctx, 1));
  const TensorType& seq = ctx.input(0);
  if (ctx.input(1).dtype != seq.dtype)
    return ctx.error("inserts a {} tensor into a sequence of {}", dtype_name(ctx.input(1).dtype), dtype_name(seq.dtype));
  // An empty sequence's element shape is unknown, so nothing is known of the result's either.
  ctx.set_output_type(0, sequence_of(seq.dtype, common_shape(seq.shape, ctx.input(1).shape)));
  return Status::Ok();
}

Status infer_sequence_erase(InferContext& ctx) {
  KILN_RETURN_IF_ERROR(require_sequence(ctx, 0));
  ctx.set_output_type(0, sequence_of(ctx.input(0).dtype, ctx.input(0).shape));
  return Status::Ok();
}

Status infer_sequence_at(InferContext& ctx) {
  KILN_RETURN_IF_ERROR(require_sequence(ctx, 0));
  ctx.set_output(0, ctx.input(0).dtype, ctx.input(0).shape);
  return Status::Ok();
}

Status infer_sequence_length(InferContext& ctx) {
  KILN_RETURN_IF_ERROR(require_sequence(ctx, 0));
  ctx.set_output(0, DType::kInt64, Shape::scalar());
  return Status::Ok();
}

Status infer_concat_from_sequence(InferContext& ctx) {
  KILN_RETURN_IF_ERROR(require_sequence(ctx, 0));
  if (!ctx.attrs().has("axis")) return ctx.error("attribute 'axis' is required");
  const int64_t new_axis = ctx.attrs().i("new_axis", 0);
  if (new_axis != 0 && new_axis != 1) return ctx.error("new_axis must be 0 or 1, got {}", new_axis);
  const TensorType& seq = ctx.input(0);
  Shape out;
  if (seq.shape.has_rank()) {
    const auto rank = static_cast<int64_t>(seq.shape.rank()) + new_axis;
    KILN_ASSIGN_OR_RETURN(int64_t axis, normalize_axis(ctx, ctx.attrs().i("axis"), rank));
    std::vector<Dim> dims = seq.shape.dims();
    // The sequence's length is data: the concatenated (or new) dim stays unknown.
    if (new_axis) dims.insert(dims.begin() + axis, Dim());
    else dims[static_cast<size_t>(axis)] = Dim();
    out = Shape(std::move(dims));
  }
  ctx.set_output(0, seq.dtype, std::move(out));
  return Status::Ok();
}

Status infer_split_to_sequence(InferContext& ctx) {
  KILN_RETURN_IF_ERROR(require_tensor(ctx, 0));
  const TensorType& in = ctx.input(0);
  const int64_t keepdims = ctx.attrs().i("keepdims", 1);
  if (keepdims != 0 && keepdims != 1) return ctx.error("keepdims must be 0 or 1, got {}", keepdims);
  if (ctx.has_input(1)) {
    const TensorType& split = ctx.input(1);
    if (split.dtype != DType::kInt32 && split.dtype != DType::kInt64)
      return ctx.error("split must be int32 or int64, got {}", dtype_name(split.dtype));
    if (split.shape.has_rank() && split.shape.rank() > 1)
      return ctx.error("split must be a scalar or 1-D, got rank {}", split.shape.rank());
  }
  Shape element;
  if (in.shape.has_rank()) {
    KILN_ASSIGN_OR_RETURN(int64_t axis, normalize_axis(ctx, ctx.attrs().i("axis", 0), static_cast<int64_t>(in.shape.rank())));
    std::vector<Dim> dims = in.shape.dims();
    // Without `split` the pieces have size 1 along the axis (dropped with keepdims=0).
    if (ctx.has_input(1)) dims[static_cast<size_t>(axis)] = Dim();
    else if (keepdims) dims[static_cast<size_t>(axis)] = Dim(1);
    else dims.erase(dims.begin() + axis);
    element = Shape(std::move(dims));
  }
  ctx.set_output_type(0, sequence_of(in.dtype, std::move(element)));
  return Status::Ok();
}

Status infer_sequence_map(InferContext& ctx) {
  KILN_RETURN_IF_ERROR(require_sequence(ctx, 0));
  const Graph* body = ctx.attrs().graph("body");
  if (!body) return ctx.error("attribute 'body' is required");
  if (body->inputs.size() != ctx.num_inputs())
    return ctx.error("body takes {} inputs, the node has {}", body->inputs.size(), ctx.num_inputs());
  if (body->outputs.size() != ctx.num_outputs())
    return ctx.error("body has {} outputs, the node {}", body->outputs.size(), ctx.num_outputs());
  for (size_t i = 0; i < ctx.num_outputs(); ++i) {
    const TensorType& t = body->outputs[i]->type;
    if (!t.is_tensor()) return ctx.error("body output {} must be a tensor, got {}", i, t.to_string());
    ctx.set_output_type(i, sequence_of(t.dtype, t.shape));
  }
  return Status::Ok();
}

}  // namespace
}  // namespace kiln

KILN_REGISTER_OP({.name = "SequenceEmpty", .min_inputs = 0, .max_inputs = 0,
                  .infer = kiln::infer_sequence_empty, .non_tensor_values = true});
KILN_REGISTER_OP({.name = "SequenceConstruct", .min_inputs = 1, .infer = kiln::infer_sequence_construct,
                  .non_tensor_values = true});
KILN_REGISTER_OP({.name = "SequenceInsert", .min_inputs = 2, .max_inputs = 3, .infer = kiln::infer_sequence_insert,
                  .non_tensor_values = true});
KILN_REGISTER_OP({.name = "SequenceErase", .min_inputs = 1, .max_inputs = 2, .infer = kiln::infer_sequence_erase,
                  .non_tensor_values = true});
KILN_REGISTER_OP({.name = "SequenceAt", .min_inputs = 2, .max_inputs = 2, .infer = kiln::infer_sequence_at,
                  .non_tensor_values = true});
KILN_REGISTER_OP({.name = "SequenceLength", .min_inputs = 1, .max_inputs = 1, .infer = kiln::infer_sequence_length,
                  .non_tensor_values = true});
KILN_REGISTER_OP({.name = "ConcatFromSequence", .min_inputs = 1, .max_inputs = 1,
                  .infer = kiln::infer_concat_from_sequence, .non_tensor_values = true});
KILN_REGISTER_OP({.name = "SplitToSequence", .min_inputs = 1, .max_inputs = 2,
                  .infer = kiln::infer_split_to_sequence, .non_tensor_values = true});
KILN_REGISTER_OP({.name = "SequenceMap", .min_inputs = 1, .min_outputs = 1, .max_outputs = INT_MAX,
                  .infer = kiln::infer_sequence_map, .non_tensor_values = true});
