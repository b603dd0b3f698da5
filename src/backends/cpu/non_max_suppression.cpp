// CPU kernel of NonMaxSuppression, per batch and class: keep the boxes scoring above
// score_threshold, visit them by descending score (lower index first on ties) and select each
// one whose IoU with every already selected box is at most iou_threshold, up to
// max_output_boxes_per_class. Boxes of zero area never suppress (as in ONNX Runtime); NaN
// scores are never selected.
#include <algorithm>
#include <cmath>
#include <vector>

#include "ops/op_registry.hpp"

namespace kiln::cpu {
namespace {

struct Box {
  double y1, x1, y2, x2;  // y1 <= y2, x1 <= x2
  double area() const { return (y2 - y1) * (x2 - x1); }
};

Box make_box(const double* b, bool center_point) {
  if (center_point) {  // [x_center, y_center, width, height]
    return {b[1] - b[3] / 2, b[0] - b[2] / 2, b[1] + b[3] / 2, b[0] + b[2] / 2};
  }
  return {std::min(b[0], b[2]), std::min(b[1], b[3]), std::max(b[0], b[2]), std::max(b[1], b[3])};
}

bool suppresses(const Box& a, const Box& b, double iou_threshold) {
  const double ih = std::min(a.y2, b.y2) - std::max(a.y1, b.y1);
  const double iw = std::min(a.x2, b.x2) - std::max(a.x1, b.x1);
  if (ih <= 0 || iw <= 0) return false;
  const double inter = ih * iw, uni = a.area() + b.area() - inter;
  if (a.area() <= 0 || b.area() <= 0 || uni <= 0) return false;
  return inter / uni > iou_threshold;
}

Status nms_kernel(KernelContext& ctx) {
  const Tensor& boxes_t = ctx.input(0);
  const Tensor& scores_t = ctx.input(1);
  if (!is_floating(boxes_t.dtype())) return ctx.unsupported_dtype(boxes_t.dtype(), 0);
  if (!is_floating(scores_t.dtype())) return ctx.unsupported_dtype(scores_t.dtype(), 1);
  const int64_t batches = boxes_t.dim(0), spatial = boxes_t.dim(1), classes = scores_t.dim(1);
  int64_t max_out = 0;
  if (ctx.has_input(2)) {
    auto v = ctx.input(2).to_int64_vector();
    if (!v || v->size() != 1) return ctx.error("max_output_boxes_per_class must be one integer");
    max_out = (*v)[0];
  }
  const double iou = ctx.has_input(3) ? ctx.input(3).scalar_as_double() : 0.0;
  const bool has_score_threshold = ctx.has_input(4) && ctx.input(4).numel() > 0;
  const double score_threshold = has_score_threshold ? ctx.input(4).scalar_as_double() : 0.0;
  const bool center = ctx.attrs().i("center_point_box", 0) != 0;

  const std::vector<double> bv = boxes_t.to_double_vector(), sv = scores_t.to_double_vector();
  std::vector<int64_t> selected;  // (batch, class, box) triples
  std::vector<int64_t> order;
  std::vector<Box> kept;
  for (int64_t b = 0; b < batches; ++b) {
    std::vector<Box> boxes;
    for (int64_t s = 0; s < spatial; ++s) boxes.push_back(make_box(&bv[static_cast<size_t>((b * spatial + s) * 4)], center));
    for (int64_t c = 0; c < classes && max_out > 0; ++c) {
      const double* score = &sv[static_cast<size_t>((b * classes + c) * spatial)];
      order.clear();
      for (int64_t s = 0; s < spatial; ++s)
        if (!std::isnan(score[s]) && (!has_score_threshold || score[s] > score_threshold)) order.push_back(s);
      std::stable_sort(order.begin(), order.end(), [&](int64_t x, int64_t y) { return score[x] > score[y]; });
      kept.clear();
      for (int64_t s : order) {
        if (static_cast<int64_t>(kept.size()) >= max_out) break;
        const Box& box = boxes[static_cast<size_t>(s)];
        bool drop = false;
        for (const Box& k : kept) drop = drop || suppresses(k, box, iou);
        if (drop) continue;
        kept.push_back(box);
        selected.insert(selected.end(), {b, c, s});
      }
    }
  }
  Tensor& out = ctx.allocate_output(0, DType::kInt64, {static_cast<int64_t>(selected.size() / 3), 3});
  std::copy(selected.begin(), selected.end(), out.data<int64_t>());
  return Status::Ok();
}

}  // namespace
}  // namespace kiln::cpu

KILN_REGISTER_CPU_KERNEL("NonMaxSuppression", kiln::cpu::nms_kernel);
