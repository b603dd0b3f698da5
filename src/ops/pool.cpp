// Pooling ops: MaxPool, AveragePool, LpPool, their Global forms, MaxUnpool and MaxRoiPool.
#include "ops/infer_util.hpp"
#include "ops/window_geometry.hpp"

namespace kiln {
namespace {

Dims spatial_sizes(const Shape& s) {
  Dims d;
  for (size_t i = 2; i < s.rank(); ++i) d.push_back(s[i].known() ? s[i].value : -1);
  return d;
}

Status check_pool_input(const InferContext& ctx) {
  const Shape& x = ctx.input(0).shape;
  if (x.has_rank() && x.rank() < 3)
    return ctx.error("X must have rank 3 or more (N, C, spatial...), got {}", x.to_string());
  return Status::Ok();
}

// MaxPool, AveragePool, LpPool: output (N, C, windows...); MaxPool's optional Indices is int64.
Status infer_pool(InferContext& ctx) {
  KILN_RETURN_IF_ERROR(check_pool_input(ctx));
  const TensorType& x = ctx.input(0);
  if (ctx.node().op_type == "LpPool" && ctx.attrs().i("p", 2) < 1)
    return ctx.error("p {} must be positive", ctx.attrs().i("p", 2));
  if (ctx.node().op_type == "MaxPool") {
    int64_t order = ctx.attrs().i("storage_order", 0);
    if (order != 0 && order != 1) return ctx.error("storage_order {} must be 0 or 1", order);
  }
  Shape out = Shape::unknown_rank();
  if (x.shape.has_rank()) {
    const bool ceil_mode = ctx.attrs().i("ceil_mode", 0) != 0;
    KILN_ASSIGN_OR_RETURN(Window w, resolve_window(ctx.node(), spatial_sizes(x.shape), nullptr, ceil_mode));
    std::vector<Dim> dims{x.shape[0], x.shape[1]};
    for (int64_t v : w.out) dims.push_back(v >= 0 ? Dim(v) : Dim());
    out = Shape(std::move(dims));
  }
  ctx.set_output(0, x.dtype, out);
  if (ctx.num_outputs() > 1) ctx.set_output(1, DType::kInt64, out);
  return Status::Ok();
}

Status infer_global_pool(InferContext& ctx) {
  KILN_RETURN_IF_ERROR(check_pool_input(ctx));
  const TensorType& x = ctx.input(0);
  if (ctx.node().op_type == "GlobalLpPool" && ctx.attrs().i("p", 2) < 1)
    return ctx.error("p {} must be positive", ctx.attrs().i("p", 2));
  Shape out = Shape::unknown_rank();
  if (x.shape.has_rank()) {
    std::vector<Dim> dims{x.shape[0], x.shape[1]};
    dims.resize(x.shape.rank(), Dim(1));
    out = Shape(std::move(dims));
  }
  ctx.set_output(0, x.dtype, out);
  return Status::Ok();
}

// MaxUnpool: the output is output_shape when given, else (in - 1) * stride + kernel - pads.
Status infer_max_unpool(InferContext& ctx) {
  KILN_RETURN_IF_ERROR(check_pool_input(ctx));
  const TensorType& x = ctx.input(0);
  if (ctx.input(1).dtype != DType::kInt64)
    return ctx.error("I must be int64, got {}", dtype_name(ctx.input(1).dtype));
  if (!x.shape.has_rank()) {
    ctx.set_output(0, x.dtype, Shape::unknown_rank());
    return Status::Ok();
  }
  const Shape& i = ctx.input(1).shape;
  if (i.has_rank() && i.rank() != x.shape.rank())
    return ctx.error("I {} must have the shape of X {}", i.to_string(), x.shape.to_string());
  const size_t nd = x.shape.rank() - 2;
  // Only the attributes are wanted (X is the pooled side): unknown sizes skip the window checks.
  KILN_ASSIGN_OR_RETURN(Window w, resolve_window(ctx.node(), Dims(nd, -1), nullptr, false));
  const Dims in_sizes = spatial_sizes(x.shape);
  std::vector<Dim> dims{x.shape[0], x.shape[1]};
  for (size_t d = 0; d < nd; ++d) {
    int64_t in = in_sizes[d];
    int64_t size = (in - 1) * w.strides[d] + w.kernel[d] - w.pads_begin[d] - w.pads_end[d];
    if (in >= 0 && size < 0)
      return ctx.error("pads [{}] remove more than the unpooled size along spatial dim {}",
                       fmt::join(ctx.attrs().ints("pads"), ","), d);
    dims.push_back(in >= 0 ? Dim(size) : Dim());
  }
  if (ctx.has_input(2)) {
    auto shape = int_values(ctx, 2);
    if (!shape) {
      dims.assign(x.shape.rank(), Dim());
    } else {
      if (shape->size() != x.shape.rank())
        return ctx.error("output_shape [{}] must have {} values (the rank of X)", fmt::join(*shape, ","), x.shape.rank());
      for (size_t d = 0; d < shape->size(); ++d) {
        const int64_t v = (*shape)[d];
        if (v < 0) return ctx.error("output_shape [{}] has a negative value", fmt::join(*shape, ","));
        dims[d] = Dim(v);
      }
    }
  }
  ctx.set_output(0, x.dtype, Shape(std::move(dims)));
  return Status::Ok();
}

// MaxRoiPool: (num_rois, C, pooled_h, pooled_w).
Status infer_max_roi_pool(InferContext& ctx) {
  const TensorType& x = ctx.input(0);
  const TensorType& rois = ctx.input(1);
  if (x.shape.has_rank() && x.shape.rank() != 4) return ctx.error("X must be 4-D (N, C, H, W), got {}", x.shape.to_string());
  if (rois.shape.has_rank() && (rois.shape.rank() != 2 || (rois.shape[1].known() && rois.shape[1].value != 5)))
    return ctx.error("rois must be (num_rois, 5), got {}", rois.shape.to_string());
  if (rois.dtype != x.dtype) return ctx.error("rois is {} but X is {}", dtype_name(rois.dtype), dtype_name(x.dtype));
  Dims pooled = ctx.attrs().ints("pooled_shape");
  if (pooled.size() != 2 || pooled[0] < 1 || pooled[1] < 1)
    return ctx.error("pooled_shape [{}] must be two positive values", fmt::join(pooled, ","));
  Dim n_rois = rois.shape.has_rank() ? rois.shape[0] : Dim();
  Dim c = x.shape.has_rank() ? x.shape[1] : Dim();
  ctx.set_output(0, x.dtype, Shape({n_rois, c, Dim(pooled[0]), Dim(pooled[1])}));
  return Status::Ok();
}

}  // namespace
}  // namespace kiln

KILN_REGISTER_OP({.name = "MaxPool", .min_inputs = 1, .max_inputs = 1, .min_outputs = 1, .max_outputs = 2, .infer = kiln::infer_pool});
KILN_REGISTER_OP({.name = "AveragePool", .min_inputs = 1, .max_inputs = 1, .infer = kiln::infer_pool});
KILN_REGISTER_OP({.name = "LpPool", .min_inputs = 1, .max_inputs = 1, .infer = kiln::infer_pool});
KILN_REGISTER_OP({.name = "GlobalMaxPool", .min_inputs = 1, .max_inputs = 1, .infer = kiln::infer_global_pool});
KILN_REGISTER_OP({.name = "GlobalAveragePool", .min_inputs = 1, .max_inputs = 1, .infer = kiln::infer_global_pool});
KILN_REGISTER_OP({.name = "GlobalLpPool", .min_inputs = 1, .max_inputs = 1, .infer = kiln::infer_global_pool});
KILN_REGISTER_OP({.name = "MaxUnpool", .min_inputs = 2, .max_inputs = 3, .infer = kiln::infer_max_unpool});
KILN_REGISTER_OP({.name = "MaxRoiPool", .min_inputs = 2, .max_inputs = 2, .infer = kiln::infer_max_roi_pool});
