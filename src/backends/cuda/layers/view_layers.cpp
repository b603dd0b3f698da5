// Reshape-like ops: the output is the input's bytes under another shape. The memory planner
// gives the output the input's place, so the layer does nothing; when the places differ (the
// input is a constant, or a graph input that is also read elsewhere), it copies.
#include "backends/cuda/cuda_layer.hpp"

namespace kiln::cuda {
namespace {

class ViewLayer : public CudaLayer {
 public:
  Status enqueue(const LaunchArgs& a) const override {
    const DeviceTensor& in = a.inputs[0];
    const DeviceTensor& out = a.outputs[0];
    if (in.data == out.data || out.nbytes() == 0) return Status::Ok();
    KILN_CUDA_CHECK(cudaMemcpyAsync(out.data, in.data, out.nbytes(), cudaMemcpyDeviceToDevice, a.stream));
    return Status::Ok();
  }
};

CudaLayerFactory view_factory() {
  return CudaLayerFactory{
      .supports = [](const Node& n) {
        return n.has_input(0) && n.has_output(0) && n.inputs[0]->type.dtype == n.outputs[0]->type.dtype &&
               !(n.op_type == "Dropout" && (n.has_output(1) || n.has_input(2)));
      },
      .tactics = nullptr,
      .create = [](const Node&, const LayerChoice&) -> Expected<std::unique_ptr<CudaLayer>> {
        return std::unique_ptr<CudaLayer>(std::make_unique<ViewLayer>());
      }};
}

}  // namespace
}  // namespace kiln::cuda

KILN_REGISTER_CUDA_LAYER("Reshape", kiln::cuda::view_factory());
KILN_REGISTER_CUDA_LAYER("Flatten", kiln::cuda::view_factory());
KILN_REGISTER_CUDA_LAYER("Squeeze", kiln::cuda::view_factory());
KILN_REGISTER_CUDA_LAYER("Unsqueeze", kiln::cuda::view_factory());
KILN_REGISTER_CUDA_LAYER("Identity", kiln::cuda::view_factory());
KILN_REGISTER_CUDA_LAYER("Dropout", kiln::cuda::view_factory());
