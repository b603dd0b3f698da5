// Layers of the ops whose output size depends on input values: NonZero, NonMaxSuppression and
// TopK (any K: a constant one is simply read from the weights). Their outputs are planned at the
// largest size (max_output_dims); the kernel writes the actual count to LaunchArgs::count_out and
// the context synchronizes to read it (docs/dynamic-shapes.md).
#include <algorithm>

#include "backends/cuda/layers/data_dependent_kernels.hpp"
#include "backends/cuda/layers/nn_util.hpp"

namespace kiln::cuda {
namespace {

bool inputs_static(const Node& n) {
  for (const Value* v : n.inputs)
    if (v && !static_dims(v)) return false;
  return true;
}

Expected<Dims> input_dims(const Node& n, size_t i) {
  auto d = n.has_input(i) ? static_dims(n.inputs[i]) : std::nullopt;
  if (!d) return invalid_model("{}: input {} has no static shape", n.describe(), i);
  return *d;
}

// ---------------------------------------------------------------- NonZero
class NonZeroLayer : public CudaLayer {
 public:
  explicit NonZeroLayer(kernels::NonZeroShape s) : s_(s) {}
  Status enqueue(const LaunchArgs& a) const override {
    KILN_CUDA_CHECK(kernels::non_zero(a.inputs[0].dtype, a.inputs[0].data, s_, a.outputs[0].as<int64_t>(),
                                      a.count_out, a.stream));
    return Status::Ok();
  }

 private:
  kernels::NonZeroShape s_;
};

bool non_zero_supported(const Node& n) {
  if (!n.has_input(0) || !n.has_output(0) || !inputs_static(n)) return false;
  const Dims x = *static_dims(n.inputs[0]);
  const size_t es = dtype_size(n.inputs[0]->type.dtype);
  return !x.empty() && x.size() <= kernels::kMaxNonZeroRank && (es == 1 || es == 2 || es == 4 || es == 8) &&
         n.inputs[0]->type.dtype != DType::kString && n.outputs[0]->type.dtype == DType::kInt64;
}

CudaLayerFactory non_zero_factory() {
  return CudaLayerFactory{
      .supports = non_zero_supported,
      .tactics = nullptr,
      .create = [](const Node& n, const LayerChoice&) -> Expected<std::unique_ptr<CudaLayer>> {
        if (!non_zero_supported(n)) return invalid_model("{}: not supported by the CUDA NonZero layer", n.describe());
        const Dims x = *static_dims(n.inputs[0]);
        kernels::NonZeroShape s;
        s.rank = static_cast<int>(x.size());
        for (size_t d = 0; d < x.size(); ++d) s.dims[d] = x[d];
        return std::unique_ptr<CudaLayer>(std::make_unique<NonZeroLayer>(s));
      },
      .max_output_dims = [](const Node& n) -> Expected<std::vector<Dims>> {
        KILN_ASSIGN_OR_RETURN(Dims x, input_dims(n, 0));
        return std::vector<Dims>{{static_cast<int64_t>(x.size()), dims_numel(x)}};
      },
      .output_dims = [](const Node& n, int64_t count) -> Expected<std::vector<Dims>> {
        KILN_ASSIGN_OR_RETURN(Dims x, input_dims(n, 0));
        if (count < 0 || count > dims_numel(x)) return internal_error("non-zero count {} is out of range", count);
        return std::vector<Dims>{{static_cast<int64_t>(x.size()), count}};
      }};
}

// ---------------------------------------------------------------- NonMaxSuppression
// Selected rows at most: every (batch, class) keeps at most min(boxes, max_output_boxes_per_class)
// (the latter when it is a constant).
Expected<int64_t> nms_max_rows(const Node& n) {
  KILN_ASSIGN_OR_RETURN(Dims boxes, input_dims(n, 0));
  KILN_ASSIGN_OR_RETURN(Dims scores, input_dims(n, 1));
  if (boxes.size() != 3 || scores.size() != 3) return invalid_model("{}: boxes and scores must be 3-D", n.describe());
  int64_t per_class = boxes[1];
  if (!n.has_input(2)) {
    per_class = 0;
  } else if (n.inputs[2]->is_constant()) {
    auto v = n.inputs[2]->constant->to_int64_vector();
    if (v.ok() && v->size() == 1) per_class = std::max<int64_t>(0, std::min(per_class, (*v)[0]));
  }
  return scores[0] * scores[1] * per_class;
}

bool nms_supported(const Node& n) {
  if (!n.has_input(0) || !n.has_input(1) || !n.has_output(0) || !inputs_static(n)) return false;
  if (!is_gpu_float(n.inputs[0]->type.dtype) || !is_gpu_float(n.inputs[1]->type.dtype)) return false;
  if (n.has_input(2) && (n.inputs[2]->type.dtype != DType::kInt64 || dims_numel(*static_dims(n.inputs[2])) != 1))
    return false;
  for (size_t i : {size_t{3}, size_t{4}})
    if (n.has_input(i) && (!is_gpu_float(n.inputs[i]->type.dtype) || dims_numel(*static_dims(n.inputs[i])) != 1))
      return false;
  const Dims b = *static_dims(n.inputs[0]), s = *static_dims(n.inputs[1]);
  const int64_t cpb = n.attrs.i("center_point_box", 0);
  return b.size() == 3 && s.size() == 3 && b[2] == 4 && b[0] == s[0] && b[1] == s[2] && (cpb == 0 || cpb == 1) &&
         b[1] < (int64_t{1} << 24) && s[0] * s[1] < (int64_t{1} << 31);
}

class NmsLayer : public CudaLayer {
 public:
  NmsLayer(kernels::NmsParams p, bool has_max, bool has_iou, bool has_score)
      : p_(p), has_max_(has_max), has_iou_(has_iou), has_score_(has_score) {}
  size_t workspace_bytes() const override { return kernels::nms_workspace_bytes(p_); }
  Status enqueue(const LaunchArgs& a) const override {
    kernels::NmsParams p = p_;
    p.max_out = has_max_ ? a.inputs[2].as<int64_t>() : nullptr;
    p.iou = has_iou_ ? a.inputs[3].data : nullptr;
    // An empty score_threshold counts as absent, as on the CPU.
    p.score_threshold = has_score_ && a.inputs[4].numel() > 0 ? a.inputs[4].data : nullptr;
    if (a.workspace_bytes < workspace_bytes()) return internal_error("NMS workspace too small");
    KILN_CUDA_CHECK(kernels::nms(p, a.inputs[0].data, a.inputs[1].data, a.outputs[0].as<int64_t>(), a.count_out,
                                 a.workspace, a.stream));
    return Status::Ok();
  }

 private:
  kernels::NmsParams p_;
  bool has_max_, has_iou_, has_score_;
};

CudaLayerFactory nms_factory() {
  return CudaLayerFactory{
      .supports = nms_supported,
      .tactics = nullptr,
      .create = [](const Node& n, const LayerChoice&) -> Expected<std::unique_ptr<CudaLayer>> {
        if (!nms_supported(n)) return invalid_model("{}: not supported by the CUDA NMS layer", n.describe());
        const Dims s = *static_dims(n.inputs[1]);
        kernels::NmsParams p;
        p.batches = s[0];
        p.classes = s[1];
        p.spatial = s[2];
        p.center_point_box = n.attrs.i("center_point_box", 0) != 0;
        p.box_t = n.inputs[0]->type.dtype;
        p.score_t = n.inputs[1]->type.dtype;
        if (n.has_input(3)) p.iou_t = n.inputs[3]->type.dtype;
        if (n.has_input(4)) p.score_threshold_t = n.inputs[4]->type.dtype;
        return std::unique_ptr<CudaLayer>(
            std::make_unique<NmsLayer>(p, n.has_input(2), n.has_input(3), n.has_input(4)));
      },
      .max_output_dims = [](const Node& n) -> Expected<std::vector<Dims>> {
        KILN_ASSIGN_OR_RETURN(int64_t rows, nms_max_rows(n));
        return std::vector<Dims>{{rows, 3}};
      },
      .output_dims = [](const Node& n, int64_t count) -> Expected<std::vector<Dims>> {
        KILN_ASSIGN_OR_RETURN(int64_t rows, nms_max_rows(n));
        if (count < 0 || count > rows) return internal_error("selected count {} is out of range", count);
        return std::vector<Dims>{{count, 3}};
      }};
}

// ---------------------------------------------------------------- TopK
struct TopKGeometry {
  int64_t outer = 1, n = 0, inner = 1;
  size_t axis = 0;
  Dims x;
};

std::optional<TopKGeometry> topk_geometry(const Node& n) {
  if (!n.has_input(0) || !n.has_input(1) || !n.has_output(0) || !n.has_output(1) || !inputs_static(n))
    return std::nullopt;
  const DType t = n.inputs[0]->type.dtype;
  if (!(is_gpu_float(t) || t == DType::kInt32 || t == DType::kInt64) || n.outputs[0]->type.dtype != t) return std::nullopt;
  if (n.inputs[1]->type.dtype != DType::kInt64 || dims_numel(*static_dims(n.inputs[1])) != 1) return std::nullopt;
  TopKGeometry g;
  g.x = *static_dims(n.inputs[0]);
  const int64_t rank = static_cast<int64_t>(g.x.size());
  int64_t axis = n.attrs.i("axis", -1);
  if (axis < 0) axis += rank;
  if (rank == 0 || axis < 0 || axis >= rank) return std::nullopt;
  g.axis = static_cast<size_t>(axis);
  g.n = g.x[g.axis];
  for (size_t d = 0; d < g.axis; ++d) g.outer *= g.x[d];
  for (size_t d = g.axis + 1; d < g.x.size(); ++d) g.inner *= g.x[d];
  return g;
}

class TopKLayer : public CudaLayer {
 public:
  TopKLayer(TopKGeometry g, bool largest) : g_(std::move(g)), largest_(largest) {}
  Status enqueue(const LaunchArgs& a) const override {
    KILN_CUDA_CHECK(kernels::top_k(a.inputs[0].dtype, a.inputs[0].data, g_.outer, g_.n, g_.inner,
                                   a.inputs[1].as<int64_t>(), largest_, a.outputs[0].data,
                                   a.outputs[1].as<int64_t>(), a.count_out, a.stream));
    return Status::Ok();
  }

 private:
  TopKGeometry g_;
  bool largest_;
};

Expected<std::vector<Dims>> topk_dims(const Node& n, int64_t k) {
  auto g = topk_geometry(n);
  if (!g) return invalid_model("{}: not supported by the CUDA TopK layer", n.describe());
  if (k < 0 || k > g->n) return invalid_argument("K = {} is out of range for dim {} of size {}", k, g->axis, g->n);
  Dims out = g->x;
  out[g->axis] = k;
  return std::vector<Dims>{out, out};
}

CudaLayerFactory topk_factory() {
  return CudaLayerFactory{
      .supports = [](const Node& n) { return topk_geometry(n).has_value(); },
      .tactics = nullptr,
      .create = [](const Node& n, const LayerChoice&) -> Expected<std::unique_ptr<CudaLayer>> {
        auto g = topk_geometry(n);
        if (!g) return invalid_model("{}: not supported by the CUDA TopK layer", n.describe());
        // K constant (the output shape static, K in range as inference checked) or read at run time.
        return std::unique_ptr<CudaLayer>(std::make_unique<TopKLayer>(*g, n.attrs.i("largest", 1) != 0));
      },
      .max_output_dims = [](const Node& n) -> Expected<std::vector<Dims>> {
        auto g = topk_geometry(n);
        if (!g) return invalid_model("{}: not supported by the CUDA TopK layer", n.describe());
        return topk_dims(n, g->n);
      },
      .output_dims = topk_dims};
}

}  // namespace
}  // namespace kiln::cuda

KILN_REGISTER_CUDA_LAYER("NonZero", kiln::cuda::non_zero_factory());
KILN_REGISTER_CUDA_LAYER("NonMaxSuppression", kiln::cuda::nms_factory());
KILN_REGISTER_CUDA_LAYER("TopK", kiln::cuda::topk_factory());
