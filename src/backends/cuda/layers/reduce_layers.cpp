// CUDA layers of ReduceSum/Mean/Max/Min (axes: absent or a constant input). The input's dims
// are merged into runs of kept and reduced axes; each reduced run is one kernel pass over
// (outer, len, inner), innermost run first, with intermediates in the workspace. Mean of equal
// groups' means is the mean, so Mean works pass by pass too.
#include "backends/cuda/layers/ew_layer_util.hpp"
#include "backends/cuda/layers/norm_kernels.hpp"
#include "ops/reduce.hpp"

namespace kiln::cuda {
namespace {

struct Pass {
  int64_t outer, len, inner;
};

// The passes for reducing `dims` over `mask`; empty when nothing is reduced (a copy).
std::vector<Pass> plan_passes(const Dims& dims, const std::vector<bool>& mask) {
  std::vector<int64_t> sizes;
  std::vector<bool> reduced;
  for (size_t i = 0; i < dims.size(); ++i) {
    if (dims[i] == 1) continue;
    if (!sizes.empty() && reduced.back() == mask[i]) {
      sizes.back() *= dims[i];
    } else {
      sizes.push_back(dims[i]);
      reduced.push_back(mask[i]);
    }
  }
  std::vector<Pass> passes;
  while (true) {
    size_t r = sizes.size();
    for (size_t i = sizes.size(); i-- > 0;)
      if (reduced[i]) { r = i; break; }
    if (r == sizes.size()) return passes;
    Pass p{1, sizes[r], 1};
    for (size_t i = 0; i < r; ++i) p.outer *= sizes[i];
    for (size_t i = r + 1; i < sizes.size(); ++i) p.inner *= sizes[i];
    passes.push_back(p);
    // Drop the run; its kept neighbours become adjacent and merge.
    if (r > 0 && r + 1 < sizes.size() && !reduced[r - 1] && !reduced[r + 1]) {
      sizes[r - 1] *= sizes[r + 1];
      sizes.erase(sizes.begin() + static_cast<std::ptrdiff_t>(r), sizes.begin() + static_cast<std::ptrdiff_t>(r) + 2);
      reduced.erase(reduced.begin() + static_cast<std::ptrdiff_t>(r), reduced.begin() + static_cast<std::ptrdiff_t>(r) + 2);
    } else {
      sizes.erase(sizes.begin() + static_cast<std::ptrdiff_t>(r));
      reduced.erase(reduced.begin() + static_cast<std::ptrdiff_t>(r));
    }
  }
}

constexpr size_t kAlign = 256;
size_t align_up(size_t x) { return (x + kAlign - 1) / kAlign * kAlign; }

class ReduceLayer : public CudaLayer {
 public:
  ReduceLayer(ReduceKind kind, DType t, std::vector<Pass> passes) : kind_(kind), t_(t), passes_(std::move(passes)) {
    // Two ping-pong buffers, each as large as the first (largest) intermediate.
    if (passes_.size() > 1) buffer_bytes_ = align_up(static_cast<size_t>(passes_[0].outer * passes_[0].inner) * dtype_size(t));
  }
  size_t workspace_bytes() const override { return passes_.size() > 2 ? 2 * buffer_bytes_ : buffer_bytes_; }

  Status enqueue(const LaunchArgs& a) const override {
    const DeviceTensor& x = a.inputs[0];
    const DeviceTensor& y = a.outputs[0];
    if (passes_.empty()) {  // nothing reduced: every output element is one input element
      if (y.nbytes() > 0 && y.data != x.data)
        KILN_CUDA_CHECK(cudaMemcpyAsync(y.data, x.data, y.nbytes(), cudaMemcpyDeviceToDevice, a.stream));
      return Status::Ok();
    }
    if (a.workspace_bytes < workspace_bytes()) return internal_error("reduce: workspace too small");
    const void* in = x.data;
    for (size_t i = 0; i < passes_.size(); ++i) {
      void* out = i + 1 == passes_.size() ? y.data : static_cast<char*>(a.workspace) + (i % 2) * buffer_bytes_;
      const Pass& p = passes_[i];
      KILN_CUDA_CHECK(launch_reduce(kind_, t_, in, out, p.outer, p.len, p.inner, a.stream));
      in = out;
    }
    return Status::Ok();
  }

 private:
  ReduceKind kind_;
  DType t_;
  std::vector<Pass> passes_;
  size_t buffer_bytes_ = 0;
};

bool reduce_passes(const Node& n, ReduceKind kind, std::vector<Pass>& passes) {
  if (!n.has_input(0) || !n.has_output(0) || n.attrs.has("axes")) return false;
  if (!reduce_supported(kind, value_dtype(n.inputs[0]))) return false;
  auto dims = static_dims(n.inputs[0]);
  if (!dims) return false;
  std::vector<int64_t> axes;
  if (n.has_input(1)) {
    const Value* a = n.inputs[1];
    if (!a->constant) return false;  // axes known only at run time
    auto v = a->constant->to_int64_vector();
    if (!v.ok()) return false;
    axes = std::move(*v);
  }
  auto mask = reduce_axes_mask(n, static_cast<int64_t>(dims->size()), axes, n.attrs.i("noop_with_empty_axes", 0) != 0);
  if (!mask.ok()) return false;
  passes = plan_passes(*dims, *mask);
  return true;
}

CudaLayerFactory reduce_factory(ReduceKind kind) {
  return simple_factory(
      [kind](const Node& n) {
        std::vector<Pass> passes;
        return reduce_passes(n, kind, passes);
      },
      [kind](const Node& n, const LayerChoice&) -> Expected<std::unique_ptr<CudaLayer>> {
        std::vector<Pass> passes;
        if (!reduce_passes(n, kind, passes)) return unsupported("{}: not supported on CUDA", n.describe());
        return std::unique_ptr<CudaLayer>(std::make_unique<ReduceLayer>(kind, value_dtype(n.inputs[0]), std::move(passes)));
      });
}

[[maybe_unused]] const bool kRegistered = [] {
  register_cuda_layer("ReduceSum", reduce_factory(ReduceKind::kSum));
  register_cuda_layer("ReduceMean", reduce_factory(ReduceKind::kMean));
  register_cuda_layer("ReduceMax", reduce_factory(ReduceKind::kMax));
  register_cuda_layer("ReduceMin", reduce_factory(ReduceKind::kMin));
  return true;
}();

}  // namespace
}  // namespace kiln::cuda
