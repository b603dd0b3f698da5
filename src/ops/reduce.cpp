// Reduce* (opset 18 form: axes as optional input 1, keepdims, noop_with_empty_axes), and
// ArgMax/ArgMin (axis attribute, keepdims, select_last_index).
#include "ops/reduce.hpp"

#include "ops/infer_util.hpp"

namespace kiln {

Expected<std::vector<bool>> reduce_axes_mask(const Node& node, int64_t rank,
                                             const std::vector<int64_t>& axes, bool noop_with_empty_axes) {
  std::vector<bool> mask(static_cast<size_t>(rank), axes.empty() && !noop_with_empty_axes);
  for (int64_t a : axes) {
    if (a < -rank || a >= rank)
      return invalid_model("{}: axis {} is out of range for rank {}", node.describe(), a, rank);
    size_t k = static_cast<size_t>(a < 0 ? a + rank : a);
    if (mask[k]) return invalid_model("{}: axis {} is repeated in axes", node.describe(), a);
    mask[k] = true;
  }
  return mask;
}

namespace {

// Output shape of a reduction: reduced dims become 1 (keepdims) or are dropped.
Shape reduced_shape(const Shape& in, const std::vector<bool>& mask, bool keepdims) {
  std::vector<Dim> out;
  for (size_t i = 0; i < in.rank(); ++i) {
    if (!mask[i]) out.push_back(in[i]);
    else if (keepdims) out.push_back(Dim(1));
  }
  return Shape(std::move(out));
}

Status infer_reduce(InferContext& ctx) {
  // The importer moves opset<18 attribute axes to input 1; an attribute here would be ignored.
  if (ctx.attrs().has("axes"))
    return ctx.error("has an 'axes' attribute; the opset-18 form takes axes as input 1");
  const TensorType& in = ctx.input(0);
  const bool keepdims = ctx.attrs().i("keepdims", 1) != 0;
  const bool noop = ctx.attrs().i("noop_with_empty_axes", 0) != 0;
  if (!in.shape.has_rank()) {
    ctx.set_output(0, in.dtype, Shape::unknown_rank());
    return Status::Ok();
  }
  const int64_t rank = static_cast<int64_t>(in.shape.rank());
  std::vector<int64_t> axes;
  if (ctx.has_input(1)) {
    if (ctx.input(1).dtype != DType::kInt64 && ctx.input(1).dtype != DType::kInt32)
      return ctx.error("axes must be int64, got {}", dtype_name(ctx.input(1).dtype));
    auto v = int_values(ctx, 1);
    if (!v) {
      // Axes computed at run time: dims of size 1 stay 1 whether reduced or not.
      const Shape& as = ctx.input(1).shape;
      if (keepdims) {
        std::vector<Dim> out;
        for (const Dim& d : in.shape.dims()) out.push_back(d.known() && d.value == 1 ? d : Dim());
        ctx.set_output(0, in.dtype, Shape(std::move(out)));
      } else if (as.rank() == 1 && as[0].known() && as[0].value > 0 && as[0].value <= rank) {
        ctx.set_output(0, in.dtype, Shape(std::vector<Dim>(static_cast<size_t>(rank - as[0].value))));
      } else {
        ctx.set_output(0, in.dtype, Shape::unknown_rank());
      }
      return Status::Ok();
    }
    axes = std::move(*v);
  }
  KILN_ASSIGN_OR_RETURN(std::vector<bool> mask, reduce_axes_mask(ctx.node(), rank, axes, noop));
  ctx.set_output(0, in.dtype, reduced_shape(in.shape, mask, keepdims));
  return Status::Ok();
}

Status infer_arg_reduce(InferContext& ctx) {
  const TensorType& in = ctx.input(0);
  const bool keepdims = ctx.attrs().i("keepdims", 1) != 0;
  if (!in.shape.has_rank()) {
    ctx.set_output(0, DType::kInt64, Shape::unknown_rank());
    return Status::Ok();
  }
  const int64_t rank = static_cast<int64_t>(in.shape.rank());
  const int64_t axis = ctx.attrs().i("axis", 0);
  if (axis < -rank || axis >= rank) return ctx.error("axis {} is out of range for rank {}", axis, rank);
  std::vector<bool> mask(static_cast<size_t>(rank), false);
  mask[static_cast<size_t>(axis < 0 ? axis + rank : axis)] = true;
  ctx.set_output(0, DType::kInt64, reduced_shape(in.shape, mask, keepdims));
  return Status::Ok();
}

}  // namespace
}  // namespace kiln

#define KILN_REDUCE_OP(NAME) \
  KILN_REGISTER_OP({.name = NAME, .min_inputs = 1, .max_inputs = 2, .infer = kiln::infer_reduce})
KILN_REDUCE_OP("ReduceSum");
KILN_REDUCE_OP("ReduceMean");
KILN_REDUCE_OP("ReduceMax");
KILN_REDUCE_OP("ReduceMin");
KILN_REDUCE_OP("ReduceProd");
KILN_REDUCE_OP("ReduceL1");
KILN_REDUCE_OP("ReduceL2");
KILN_REDUCE_OP("ReduceLogSum");
KILN_REDUCE_OP("ReduceLogSumExp");
KILN_REDUCE_OP("ReduceSumSquare");
#undef KILN_REDUCE_OP

KILN_REGISTER_OP({.name = "ArgMax", .min_inputs = 1, .max_inputs = 1, .infer = kiln::infer_arg_reduce});
KILN_REGISTER_OP({.name = "ArgMin", .min_inputs = 1, .max_inputs = 1, .infer = kiln::infer_arg_reduce});
