// Gather along one axis, any data dtype, int32/int64 indices (negative ones count from the end).
// Indices are data here (they may change every run), so an out-of-range index cannot be
// reported: it yields zeros instead of reading outside the input.
#include "backends/cuda/layers/nn_kernels.hpp"
#include "backends/cuda/layers/nn_util.hpp"

namespace kiln::cuda {
namespace {

struct GatherGeometry {
  int64_t outer = 1, axis_dim = 0, inner = 1, count = 1;
  // A constant single index (e.g. splitting q/k/v): the output is `outer` rows of one block each,
  // copied with wide loads instead of gathered; -1 when the indices are not such a constant.
  int64_t fixed_index = -1;
};

std::optional<GatherGeometry> gather_geometry(const Node& n) {
  if (!n.has_input(0) || !n.has_input(1) || !n.has_output(0) || !all_static(n)) return std::nullopt;
  const DType t = n.inputs[0]->type.dtype, it = n.inputs[1]->type.dtype;
  const size_t es = dtype_size(t);
  if (n.outputs[0]->type.dtype != t || !(es == 1 || es == 2 || es == 4 || es == 8)) return std::nullopt;
  if (it != DType::kInt64 && it != DType::kInt32) return std::nullopt;
  const Dims x = *static_dims(n.inputs[0]), idx = *static_dims(n.inputs[1]), y = *static_dims(n.outputs[0]);
  const int64_t rank = static_cast<int64_t>(x.size());
  int64_t axis = n.attrs.i("axis", 0);
  if (axis < 0) axis += rank;
  if (axis < 0 || axis >= rank) return std::nullopt;
  GatherGeometry g;
  for (int64_t i = 0; i < axis; ++i) g.outer *= x[static_cast<size_t>(i)];
  for (int64_t i = axis + 1; i < rank; ++i) g.inner *= x[static_cast<size_t>(i)];
  g.axis_dim = x[static_cast<size_t>(axis)];
  g.count = dims_numel(idx);
  // The output must be x's dims with the axis replaced by the indices' dims.
  Dims expect(x.begin(), x.begin() + axis);
  expect.insert(expect.end(), idx.begin(), idx.end());
  expect.insert(expect.end(), x.begin() + axis + 1, x.end());
  if (expect != y) return std::nullopt;
  if (g.count == 1 && n.inputs[1]->is_constant()) {
    auto v = n.inputs[1]->constant->to_int64_vector();
    if (v.ok() && v->size() == 1) {
      int64_t i = (*v)[0];
      if (i < 0) i += g.axis_dim;
      // An out-of-range constant is left to the general kernel (which writes zeros).
      if (i >= 0 && i < g.axis_dim) g.fixed_index = i;
    }
  }
  return g;
}

class GatherLayer : public CudaLayer {
 public:
  explicit GatherLayer(GatherGeometry g) : g_(g) {}
  Status enqueue(const LaunchArgs& a) const override {
    const DeviceTensor &x = a.inputs[0], &idx = a.inputs[1];
    if (g_.fixed_index >= 0) {
      const int64_t es = static_cast<int64_t>(dtype_size(x.dtype)), block = g_.inner * es;
      const char* src = static_cast<const char*>(x.data) + g_.fixed_index * block;
      // The memory planner may have placed the output on the block itself (gather_block_offset).
      if (g_.outer == 1 && src == a.outputs[0].data) return Status::Ok();
      KILN_CUDA_CHECK(kernels::copy_2d(a.outputs[0].data, block, src, g_.axis_dim * block, block, g_.outer, a.stream));
      return Status::Ok();
    }
    KILN_CUDA_CHECK(kernels::gather(dtype_size(x.dtype), x.data, a.outputs[0].data, idx.data,
                                    idx.dtype == DType::kInt64, g_.count, g_.outer, g_.axis_dim, g_.inner, a.stream));
    return Status::Ok();
  }

 private:
  GatherGeometry g_;
};

}  // namespace
}  // namespace kiln::cuda

KILN_REGISTER_CUDA_LAYER(
    "Gather",
    kiln::cuda::CudaLayerFactory{
        .supports = [](const kiln::Node& n) { return kiln::cuda::gather_geometry(n).has_value(); },
        .tactics = nullptr,
        .create = [](const kiln::Node& n, const kiln::LayerChoice&) -> kiln::Expected<std::unique_ptr<kiln::cuda::CudaLayer>> {
          auto g = kiln::cuda::gather_geometry(n);
          if (!g) return kiln::invalid_model("{}: cannot gather this node", n.describe());
          return std::unique_ptr<kiln::cuda::CudaLayer>(std::make_unique<kiln::cuda::GatherLayer>(*g));
        }});
