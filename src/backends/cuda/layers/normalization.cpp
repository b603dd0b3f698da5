// BatchNormalization (inference) as one fused per-channel scale/shift kernel, and
// InstanceNormalization. Constant BatchNormalization statistics are folded into the two
// coefficient arrays once at create; otherwise a small kernel derives them on every run.
#include <cmath>

#include "backends/cuda/device_buffer.hpp"
#include "backends/cuda/layers/nn_kernels.hpp"
#include "backends/cuda/layers/nn_util.hpp"

namespace kiln::cuda {
namespace {

// Input 0's (outer = N, channels = C, inner = spatial size).
struct ChannelLayout {
  int64_t outer = 0, channels = 0, inner = 0;
};
ChannelLayout layout_of(const Dims& x) {
  ChannelLayout l;
  l.outer = x[0];
  l.channels = x.size() > 1 ? x[1] : 1;
  l.inner = l.outer * l.channels > 0 ? dims_numel(x) / (l.outer * l.channels) : 0;
  return l;
}

size_t aligned_floats(int64_t n) { return (static_cast<size_t>(n) * sizeof(float) + 255) / 256 * 256; }

class BatchNormLayer : public CudaLayer {
 public:
  static Expected<std::unique_ptr<CudaLayer>> create(const Node& n, const LayerChoice&) {
    auto layer = std::unique_ptr<BatchNormLayer>(new BatchNormLayer());
    layer->layout_ = layout_of(*static_dims(n.inputs[0]));
    layer->eps_ = n.attrs.f("epsilon", 1e-5f);
    bool constant = true;
    for (size_t i = 1; i < 5; ++i) constant = constant && n.inputs[i]->constant.has_value();
    if (constant) {
      const int64_t c = layer->layout_.channels;
      auto scale = n.inputs[1]->constant->to_double_vector(), bias = n.inputs[2]->constant->to_double_vector();
      auto mean = n.inputs[3]->constant->to_double_vector(), var = n.inputs[4]->constant->to_double_vector();
      if (static_cast<int64_t>(scale.size()) != c || bias.size() != scale.size() || mean.size() != scale.size() ||
          var.size() != scale.size())
        return invalid_model("{}: parameters must have {} values (one per channel)", n.describe(), c);
      std::vector<float> ab(2 * static_cast<size_t>(c));
      for (size_t i = 0; i < scale.size(); ++i) {
        const double a = scale[i] / std::sqrt(var[i] + static_cast<double>(layer->eps_));
        ab[i] = static_cast<float>(a);
        ab[scale.size() + i] = static_cast<float>(bias[i] - mean[i] * a);
      }
      KILN_ASSIGN_OR_RETURN(layer->coeffs_, DeviceBuffer::allocate(ab.size() * sizeof(float)));
      if (!ab.empty())
        KILN_CUDA_CHECK(cudaMemcpy(layer->coeffs_.get(), ab.data(), ab.size() * sizeof(float), cudaMemcpyHostToDevice));
    }
    return std::unique_ptr<CudaLayer>(std::move(layer));
  }

  size_t workspace_bytes() const override { return coeffs_.get() ? 0 : 2 * aligned_floats(layout_.channels); }

  Status enqueue(const LaunchArgs& a) const override {
    const DeviceTensor& x = a.inputs[0];
    const float* coeffs = coeffs_.as<float>();
    if (!coeffs_.get()) {
      if (a.workspace_bytes < workspace_bytes()) return internal_error("batch norm workspace too small");
      auto* ws = static_cast<float*>(a.workspace);
      float* b = reinterpret_cast<float*>(static_cast<char*>(a.workspace) + aligned_floats(layout_.channels));
      const DeviceTensor &s = a.inputs[1], &bias = a.inputs[2], &m = a.inputs[3], &v = a.inputs[4];
      KILN_CUDA_CHECK(kernels::batch_norm_coefficients(s.data, s.dtype, bias.data, bias.dtype, m.data, m.dtype, v.data,
                                                       v.dtype, eps_, ws, b, layout_.channels, a.stream));
      KILN_CUDA_CHECK(kernels::channel_affine(x.dtype, x.data, a.outputs[0].data, ws, b, layout_.outer,
                                              layout_.channels, layout_.inner, a.stream));
      return Status::Ok();
    }
    KILN_CUDA_CHECK(kernels::channel_affine(x.dtype, x.data, a.outputs[0].data, coeffs, coeffs + layout_.channels,
                                            layout_.outer, layout_.channels, layout_.inner, a.stream));
    return Status::Ok();
  }

 private:
  ChannelLayout layout_;
  float eps_ = 1e-5f;
  DeviceBuffer coeffs_;  // a[C] then b[C], when the statistics are constant
};

bool params_fit(const Node& n, size_t first, size_t last, int64_t channels) {
  for (size_t i = first; i <= last; ++i) {
    if (!n.has_input(i) || !is_gpu_float(n.inputs[i]->type.dtype)) return false;
    auto d = static_dims(n.inputs[i]);
    if (!d || d->size() != 1 || (*d)[0] != channels) return false;
  }
  return true;
}

bool batch_norm_supports(const Node& n) {
  if (n.attrs.i("training_mode", 0) != 0 || !n.has_input(0) || !n.has_output(0) || !all_static(n)) return false;
  for (size_t i = 1; i < n.outputs.size(); ++i)
    if (n.has_output(i)) return false;
  const DType t = n.inputs[0]->type.dtype;
  auto x = static_dims(n.inputs[0]);
  if (!is_gpu_float(t) || n.outputs[0]->type.dtype != t || x->size() < 2) return false;
  return params_fit(n, 1, 4, (*x)[1]);
}

class InstanceNormLayer : public CudaLayer {
 public:
  InstanceNormLayer(ChannelLayout l, float eps) : layout_(l), eps_(eps) {}
  Status enqueue(const LaunchArgs& a) const override {
    const DeviceTensor &x = a.inputs[0], &s = a.inputs[1], &b = a.inputs[2];
    KILN_CUDA_CHECK(kernels::instance_norm(x.dtype, x.data, a.outputs[0].data, s.data, b.data, s.dtype, eps_,
                                           layout_.outer, layout_.channels, layout_.inner, a.stream));
    return Status::Ok();
  }

 private:
  ChannelLayout layout_;
  float eps_;
};

bool instance_norm_supports(const Node& n) {
  if (!n.has_input(0) || !n.has_output(0) || !all_static(n)) return false;
  const DType t = n.inputs[0]->type.dtype;
  auto x = static_dims(n.inputs[0]);
  if (!is_gpu_float(t) || n.outputs[0]->type.dtype != t || x->size() < 3) return false;
  // The kernel reads scale and B with one dtype.
  if (!params_fit(n, 1, 2, (*x)[1]) || n.inputs[1]->type.dtype != n.inputs[2]->type.dtype) return false;
  return true;
}

}  // namespace
}  // namespace kiln::cuda

KILN_REGISTER_CUDA_LAYER("BatchNormalization",
                         kiln::cuda::CudaLayerFactory{.supports = kiln::cuda::batch_norm_supports,
                                                      .tactics = nullptr,
                                                      .create = kiln::cuda::BatchNormLayer::create});
KILN_REGISTER_CUDA_LAYER(
    "InstanceNormalization",
    kiln::cuda::CudaLayerFactory{
        .supports = kiln::cuda::instance_norm_supports,
        .tactics = nullptr,
        .create = [](const kiln::Node& n, const kiln::LayerChoice&) -> kiln::Expected<std::unique_ptr<kiln::cuda::CudaLayer>> {
          return std::unique_ptr<kiln::cuda::CudaLayer>(std::make_unique<kiln::cuda::InstanceNormLayer>(
              kiln::cuda::layout_of(*kiln::cuda::static_dims(n.inputs[0])), n.attrs.f("epsilon", 1e-5f)));
        }});
