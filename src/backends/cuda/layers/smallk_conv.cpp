// The tensor-core small-reduction NHWC convolution as a kiln.FusedConv tactic (smallk_conv.hpp).
#include "backends/cuda/layers/smallk_conv.hpp"

#include <algorithm>
#include <iterator>

#include "backends/cuda/layers/nn_util.hpp"
#include "backends/cuda/layers/smallk_conv_kernels.hpp"
#include "ops/window_geometry.hpp"

namespace kiln::cuda {
namespace {

std::optional<kernels::SmallkConvParams> params(const Node& n) {
  auto dims = direct_nhwc_conv_dims(n);
  if (!dims || n.has_input(3)) return std::nullopt;
  const DType t = n.outputs[0]->type.dtype;
  if (t != DType::kFloat16 && t != DType::kBFloat16) return std::nullopt;
  const Dims &x = dims->x, &w = dims->w, &y = dims->y;
  const int64_t c = x[3], m = w[0], kh = w[1], kw = w[2];
  if (w[3] != c || y[3] != m || c * kh * kw > kernels::kSmallkMaxReduction) return std::nullopt;
  if (std::find(std::begin(kernels::kSmallkOutputs), std::end(kernels::kSmallkOutputs), m) ==
      std::end(kernels::kSmallkOutputs))
    return std::nullopt;
  const Dims kernel{kh, kw};
  auto win = resolve_window(n, Dims{x[1], x[2]}, &kernel, false);
  if (!win.ok() || win->out != Dims{y[1], y[2]} || y[0] != x[0]) return std::nullopt;
  if (y[0] * y[1] * y[2] > INT32_MAX / 2 || x[1] > INT32_MAX || x[2] > INT32_MAX) return std::nullopt;
  for (int64_t v : {win->strides[0], win->strides[1], win->pads_begin[0], win->pads_begin[1], win->dilations[0],
                    win->dilations[1]})
    if (v < 0 || v > INT32_MAX) return std::nullopt;
  kernels::SmallkConvParams p;
  p.n = static_cast<int>(y[0]);
  p.oh = static_cast<int>(y[1]);
  p.ow = static_cast<int>(y[2]);
  p.h = static_cast<int>(x[1]);
  p.w = static_cast<int>(x[2]);
  p.c = static_cast<int>(c);
  p.m = static_cast<int>(m);
  p.kh = static_cast<int>(kh);
  p.kw = static_cast<int>(kw);
  p.sh = static_cast<int>(win->strides[0]);
  p.sw = static_cast<int>(win->strides[1]);
  p.ph = static_cast<int>(win->pads_begin[0]);
  p.pw = static_cast<int>(win->pads_begin[1]);
  p.dh = static_cast<int>(win->dilations[0]);
  p.dw = static_cast<int>(win->dilations[1]);
  p.relu = n.attrs.s("activation", "") == "Relu";
  return p;
}

class SmallkConvLayer : public CudaLayer {
 public:
  SmallkConvLayer(kernels::SmallkConvParams p, kernels::SmallkConvLaunch launch, DType t)
      : p_(p), launch_(launch), dtype_(t) {}
  Status enqueue(const LaunchArgs& a) const override {
    if (a.outputs[0].numel() == 0) return Status::Ok();
    const void* b = a.inputs.size() > 2 ? a.inputs[2].data : nullptr;
    KILN_CUDA_CHECK(kernels::smallk_conv(dtype_, a.inputs[0].data, a.inputs[1].data, b, a.outputs[0].data, p_,
                                         launch_, a.stream));
    return Status::Ok();
  }

 private:
  kernels::SmallkConvParams p_;
  kernels::SmallkConvLaunch launch_;
  DType dtype_;
};

}  // namespace

bool smallk_conv_fits(const Node& n) { return params(n).has_value(); }

Expected<std::unique_ptr<CudaLayer>> smallk_conv_create(const Node& n) {
  auto p = params(n);
  if (!p)
    return invalid_model("{}: tactic '{}' needs float16/bfloat16 NHWC, group 1, no Z, kh*kw*C <= {}, 16/32/64 outputs",
                         n.describe(), kSmallkConvTactic, kernels::kSmallkMaxReduction);
  kernels::SmallkConvLaunch launch;
  const DType t = n.outputs[0]->type.dtype;
  KILN_CUDA_CHECK(kernels::smallk_conv_setup(t, *p, &launch));
  return std::unique_ptr<CudaLayer>(std::make_unique<SmallkConvLayer>(*p, launch, t));
}

}  // namespace kiln::cuda
