// Custom-op plugins on the CUDA backend: one generic layer that hands the plugin device pointers
// and the context's stream. Supported when the plugin says it runs these input types on CUDA.
#include "backends/cuda/layers/plugin_layer.hpp"

#include "plugin/plugin_node.hpp"

namespace kiln::cuda {
namespace {

class PluginLayer : public CudaLayer {
 public:
  PluginLayer(const Node& n, std::unique_ptr<Plugin> plugin)
      : node_desc_(n.describe()), plugin_desc_(n.plugin->describe()), plugin_(std::move(plugin)),
        workspace_(plugin_->workspace_bytes(plugin_input_descs(n))) {}

  size_t workspace_bytes() const override { return workspace_; }

  Status enqueue(const LaunchArgs& a) const override {
    std::vector<PluginTensor> in = wrap(a.inputs), out = wrap(a.outputs);
    Status st;
    try {
      st = plugin_->enqueue(in, out, a.workspace, static_cast<PluginCudaStream>(a.stream));
    } catch (const std::exception& e) {
      st = Status(StatusCode::kRuntimeError, std::string("exception: ") + e.what());
    }
    if (!st.ok()) return Status(st.code(), fmt::format("{}: {} enqueue failed: {}", node_desc_, plugin_desc_, st.message()));
    // A kernel launch error inside the plugin that it did not check.
    if (cudaError_t e = cudaGetLastError(); e != cudaSuccess)
      return make_error(StatusCode::kRuntimeError, "{}: {} enqueue: CUDA error {} ({})", node_desc_, plugin_desc_,
                        cudaGetErrorName(e), cudaGetErrorString(e));
    return Status::Ok();
  }

 private:
  static std::vector<PluginTensor> wrap(const std::vector<DeviceTensor>& ts) {
    std::vector<PluginTensor> out(ts.size());
    for (size_t i = 0; i < ts.size(); ++i) {
      out[i].data = ts[i].data;
      out[i].desc.dtype = to_plugin_dtype(ts[i].dtype);
      out[i].desc.dims = ts[i].dims;
    }
    return out;
  }

  std::string node_desc_, plugin_desc_;
  std::unique_ptr<Plugin> plugin_;
  size_t workspace_;
};

}  // namespace

const CudaLayerFactory& plugin_layer_factory() {
  static const CudaLayerFactory factory{
      .supports = [](const Node& n) { return plugin_supports(n, PluginDevice::kCuda); },
      .tactics = nullptr,
      .create = [](const Node& n, const LayerChoice&) -> Expected<std::unique_ptr<CudaLayer>> {
        if (!n.plugin) return internal_error("{}: no plugin bound", n.describe());
        // The engine's own instance: plugins keep no per-call state, but cloning lets one that
        // caches device data (weights) keep it per engine.
        std::unique_ptr<Plugin> p = n.plugin->plugin->clone();
        if (!p) return internal_error("{}: {} clone() returned null", n.describe(), n.plugin->describe());
        return std::unique_ptr<CudaLayer>(std::make_unique<PluginLayer>(n, std::move(p)));
      }};
  return factory;
}

}  // namespace kiln::cuda
