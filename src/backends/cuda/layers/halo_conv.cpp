// The Hopper halo-tile 3x3 convolution as a kiln.FusedConv tactic (halo_conv.hpp), with or
// without a head (conv_head.hpp).
#include "backends/cuda/layers/halo_conv.hpp"

#include "backends/cuda/layers/conv_head.hpp"
#include "backends/cuda/layers/halo_conv_kernels.hpp"
#include "backends/cuda/layers/nn_util.hpp"
#include "backends/cuda/layers/sm90a.hpp"
#include "ops/window_geometry.hpp"

namespace kiln::cuda {
namespace {

std::optional<kernels::HaloConvParams> params(const Node& n) {
  // A node with a head: the body's checks, then the head's (K <= 8 outputs).
  int head = 0;
  std::optional<NhwcConvDims> dims;
  if (has_conv_head(n)) {
    auto body = conv_body(n);
    if (!body.ok() || !conv_head_supported(n)) return std::nullopt;
    const int64_t k = (*static_dims(n.inputs[4]))[0];
    if (k > kernels::kHaloConvMaxHead) return std::nullopt;
    head = static_cast<int>(k);
    dims = direct_nhwc_conv_dims(*body->node);
  } else {
    dims = direct_nhwc_conv_dims(n);
  }
  if (!dims || n.outputs[0]->type.dtype != DType::kFloat16) return std::nullopt;
  const Dims &x = dims->x, &w = dims->w, &y = dims->y;
  const int64_t c = x[3];
  if (c != kernels::kHaloConvInChannels || w != Dims{kernels::kHaloConvOutChannels, 3, 3, c} ||
      y != Dims{x[0], x[1], x[2], kernels::kHaloConvOutChannels})
    return std::nullopt;
  const Dims kernel{3, 3};
  auto win = resolve_window(n, Dims{x[1], x[2]}, &kernel, false);
  if (!win.ok() || win->strides != Dims{1, 1} || win->dilations != Dims{1, 1} || win->pads_begin != Dims{1, 1} ||
      win->out != Dims{x[1], x[2]})
    return std::nullopt;
  if (x[0] > INT32_MAX || x[1] > INT32_MAX || x[2] > INT32_MAX) return std::nullopt;
  kernels::HaloConvParams p;
  p.n = static_cast<int>(x[0]);
  p.h = static_cast<int>(x[1]);
  p.w = static_cast<int>(x[2]);
  p.c = static_cast<int>(c);
  p.relu = n.attrs.s("activation", "") == "Relu";
  p.head = head;
  return p;
}

class HaloConvLayer : public CudaLayer {
 public:
  HaloConvLayer(kernels::HaloConvParams p, kernels::HaloConvLaunch launch) : p_(p), launch_(launch) {}
  Status enqueue(const LaunchArgs& a) const override {
    if (a.outputs[0].numel() == 0) return Status::Ok();
    const void* b = a.inputs.size() > 2 ? a.inputs[2].data : nullptr;
    const void* z = a.inputs.size() > 3 ? a.inputs[3].data : nullptr;
    const void* hw = p_.head > 0 ? a.inputs[4].data : nullptr;
    const void* hb = p_.head > 0 && a.inputs.size() > 5 ? a.inputs[5].data : nullptr;
    KILN_CUDA_CHECK(kernels::halo_conv(a.inputs[0].data, a.inputs[1].data, b, z, a.outputs[0].data, p_, launch_,
                                      a.stream, hw, hb));
    return Status::Ok();
  }

 private:
  kernels::HaloConvParams p_;
  kernels::HaloConvLaunch launch_;
};

}  // namespace

bool halo_conv_fits(const Node& n) { return params(n).has_value() && kernels::sm90a_kernels_available(); }

Expected<std::unique_ptr<CudaLayer>> halo_conv_create(const Node& n) {
  auto p = params(n);
  if (!p)
    return invalid_model("{}: tactic '{}' needs float16 NHWC 3x3, stride 1, pads 1, {} inputs and {} outputs",
                         n.describe(), kHaloConvTactic, kernels::kHaloConvInChannels,
                         kernels::kHaloConvOutChannels);
  if (!kernels::sm90a_kernels_available())
    return unsupported("{}: tactic '{}' needs an sm_90 GPU and a build with sm_90a code", n.describe(),
                       kHaloConvTactic);
  kernels::HaloConvLaunch launch;
  KILN_CUDA_CHECK(kernels::halo_conv_setup(*p, &launch));
  return std::unique_ptr<CudaLayer>(std::make_unique<HaloConvLayer>(*p, launch));
}

}  // namespace kiln::cuda
