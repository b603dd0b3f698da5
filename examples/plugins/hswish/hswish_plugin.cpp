// HSwish as a kiln plugin: y = x * relu6(x + 3) / 6, elementwise, any shape.
//
// A complete plugin library: the op (type inference, supported types, a CPU compute, a CUDA
// enqueue when built with CUDA, serialization) and its creator, exported with
// KILN_PLUGIN_LIBRARY. It needs only include/kiln/{plugin,status}.hpp: no kiln library to link.
// docs/plugins.md explains each part.
#include <algorithm>
#include <string>

#include "hswish_kernel.hpp"
#include "kiln/plugin.hpp"

namespace {

using kiln::PluginDataType;

class HSwish : public kiln::Plugin {
 public:
  // `info`: the tensorRT_Pro convention's free text (JSON); kept in the plan for inspection.
  explicit HSwish(std::string info) : info_(std::move(info)) {}

  kiln::Status infer(const std::vector<kiln::PluginTensorDesc>& inputs,
                     std::vector<kiln::PluginTensorDesc>& outputs) const override {
    if (inputs.size() != 1 || outputs.size() != 1)
      return kiln::Status(kiln::StatusCode::kInvalidModel,
                          "HSwish takes 1 input and gives 1 output, got " + std::to_string(inputs.size()) +
                              " and " + std::to_string(outputs.size()));
    outputs[0] = inputs[0];  // same type and shape (symbolic dims stay symbolic)
    return kiln::Status::Ok();
  }

  bool supports(const std::vector<kiln::PluginTensorDesc>& inputs, kiln::PluginDevice device) const override {
    if (inputs.size() != 1) return false;
    PluginDataType t = inputs[0].dtype;
    if (device == kiln::PluginDevice::kCpu) return t == PluginDataType::kFloat32;
#if KILN_HSWISH_CUDA
    return t == PluginDataType::kFloat32 || t == PluginDataType::kFloat16 || t == PluginDataType::kBFloat16;
#else
    return false;
#endif
  }

  kiln::Status compute(const std::vector<kiln::PluginTensor>& inputs,
                       const std::vector<kiln::PluginTensor>& outputs) const override {
    const float* x = static_cast<const float*>(inputs[0].data);
    float* y = static_cast<float*>(outputs[0].data);
    int64_t n = inputs[0].numel();
    for (int64_t i = 0; i < n; ++i) y[i] = x[i] * std::min(std::max(x[i] + 3.f, 0.f), 6.f) / 6.f;
    return kiln::Status::Ok();
  }

  kiln::Status enqueue(const std::vector<kiln::PluginTensor>& inputs, const std::vector<kiln::PluginTensor>& outputs,
                       void* workspace, kiln::PluginCudaStream stream) const override {
#if KILN_HSWISH_CUDA
    std::string err = hswish_cuda(static_cast<int>(inputs[0].desc.dtype), inputs[0].data, outputs[0].data,
                                  inputs[0].numel(), stream);
    if (!err.empty()) return kiln::Status(kiln::StatusCode::kRuntimeError, err);
    return kiln::Status::Ok();
#else
    return kiln::Status(kiln::StatusCode::kUnsupported, "this HSwish plugin was built without CUDA");
#endif
  }

  std::string serialize() const override { return info_; }
  std::unique_ptr<kiln::Plugin> clone() const override { return std::make_unique<HSwish>(info_); }

 private:
  std::string info_;
};

class HSwishCreator : public kiln::PluginCreator {
 public:
  std::string name() const override { return "HSwish"; }
  std::string version() const override { return "1"; }
  // Rule (a) matches HSwish in any custom domain ("" = any); rule (b) matches name_s="HSwish".
  std::string plugin_namespace() const override { return ""; }

  kiln::Expected<std::unique_ptr<kiln::Plugin>> create(const kiln::PluginAttributes& attrs) const override {
    return std::unique_ptr<kiln::Plugin>(std::make_unique<HSwish>(attrs.s("info")));
  }
  kiln::Expected<std::unique_ptr<kiln::Plugin>> deserialize(const std::string& bytes) const override {
    return std::unique_ptr<kiln::Plugin>(std::make_unique<HSwish>(bytes));
  }
};

}  // namespace

KILN_PLUGIN_LIBRARY(HSwishCreator)
