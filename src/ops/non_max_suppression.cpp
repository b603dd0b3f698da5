// NonMaxSuppression: boxes [B, S, 4], scores [B, C, S], optional scalar inputs
// max_output_boxes_per_class, iou_threshold, score_threshold; outputs the selected
// (batch, class, box) triples, int64 [num_selected, 3] (a data-dependent count).
#include "ops/infer_util.hpp"

namespace kiln {
namespace {

Status infer_nms(InferContext& ctx) {
  const int64_t cpb = ctx.attrs().i("center_point_box", 0);
  if (cpb != 0 && cpb != 1) return ctx.error("center_point_box must be 0 or 1, got {}", cpb);
  const Shape& boxes = ctx.input(0).shape;
  const Shape& scores = ctx.input(1).shape;
  if (boxes.has_rank() && (boxes.rank() != 3 || (boxes[2].known() && boxes[2].value != 4)))
    return ctx.error("boxes must be [num_batches, spatial_dimension, 4], got {}", boxes.to_string());
  if (scores.has_rank() && scores.rank() != 3)
    return ctx.error("scores must be [num_batches, num_classes, spatial_dimension], got {}", scores.to_string());
  if (boxes.has_rank() && scores.has_rank()) {
    if (boxes[0].known() && scores[0].known() && boxes[0].value != scores[0].value)
      return ctx.error("boxes {} and scores {} differ in num_batches", boxes.to_string(), scores.to_string());
    if (boxes[1].known() && scores[2].known() && boxes[1].value != scores[2].value)
      return ctx.error("boxes {} and scores {} differ in spatial_dimension", boxes.to_string(), scores.to_string());
  }
  if (const Tensor* iou = ctx.value(3)) {
    const double t = iou->scalar_as_double();
    if (iou->numel() != 1 || !(t >= 0 && t <= 1))
      return ctx.error("iou_threshold must be one value in [0, 1], got {}", iou->describe());
  }
  ctx.set_output(0, DType::kInt64, Shape({Dim(), Dim(3)}));
  return Status::Ok();
}

}  // namespace
}  // namespace kiln

KILN_REGISTER_OP({.name = "NonMaxSuppression", .min_inputs = 2, .max_inputs = 5, .infer = kiln::infer_nms});
