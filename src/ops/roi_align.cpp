// RoiAlign: X [N, C, H, W], rois [R, 4] (x1, y1, x2, y2), batch_indices [R] -> [R, C, oh, ow].
#include "ops/infer_util.hpp"

namespace kiln {
namespace {

Status infer_roi_align(InferContext& ctx) {
  const Attributes& a = ctx.attrs();
  const std::string mode = a.s("mode", "avg");
  if (mode != "avg" && mode != "max") return ctx.error("mode must be 'avg' or 'max', got '{}'", mode);
  const std::string ctm = a.s("coordinate_transformation_mode", "half_pixel");
  if (ctm != "half_pixel" && ctm != "output_half_pixel")
    return ctx.error("coordinate_transformation_mode must be 'half_pixel' or 'output_half_pixel', got '{}'", ctm);
  const int64_t oh = a.i("output_height", 1), ow = a.i("output_width", 1);
  if (oh <= 0 || ow <= 0) return ctx.error("output_height and output_width must be positive, got {}x{}", oh, ow);
  if (a.i("sampling_ratio", 0) < 0) return ctx.error("sampling_ratio must be >= 0, got {}", a.i("sampling_ratio", 0));
  const Shape& x = ctx.input(0).shape;
  const Shape& rois = ctx.input(1).shape;
  const Shape& bi = ctx.input(2).shape;
  if (x.has_rank() && x.rank() != 4) return ctx.error("X must be 4-D [N, C, H, W], got {}", x.to_string());
  if (rois.has_rank() && (rois.rank() != 2 || (rois[1].known() && rois[1].value != 4)))
    return ctx.error("rois must be [num_rois, 4], got {}", rois.to_string());
  if (bi.has_rank() && bi.rank() != 1) return ctx.error("batch_indices must be 1-D, got {}", bi.to_string());
  if (ctx.input(2).dtype != DType::kInt64 && ctx.input(2).dtype != DType::kInt32)
    return ctx.error("batch_indices must be int64, got {}", dtype_name(ctx.input(2).dtype));
  Dim r = rois.has_rank() ? rois[0] : Dim();
  if (bi.has_rank()) {
    if (r.known() && bi[0].known() && r.value != bi[0].value)
      return ctx.error("rois {} and batch_indices {} differ in num_rois", rois.to_string(), bi.to_string());
    if (!r.known()) r = bi[0];
  }
  ctx.set_output(0, ctx.input(0).dtype, Shape({r, x.has_rank() ? x[1] : Dim(), Dim(oh), Dim(ow)}));
  return Status::Ok();
}

}  // namespace
}  // namespace kiln

KILN_REGISTER_OP({.name = "RoiAlign", .min_inputs = 3, .max_inputs = 3, .infer = kiln::infer_roi_align});
