// The direct small-input-channel NHWC convolution as a kiln.FusedConv tactic (small_channel_conv.hpp).
#include "backends/cuda/layers/small_channel_conv.hpp"

#include "backends/cuda/layers/nn_util.hpp"
#include "backends/cuda/layers/small_channel_conv_kernels.hpp"
#include "ops/window_geometry.hpp"

namespace kiln::cuda {
namespace {

constexpr int64_t kMaxChannels = 4;
constexpr int64_t kMaxReduction = 160;  // C * kh * kw: an RGB 7x7 stem (147) fits
constexpr size_t kMaxSharedBytes = 48u << 10;  // the default dynamic shared memory limit

bool fits_int(std::initializer_list<int64_t> values) {
  for (int64_t v : values)
    if (v < 0 || v > INT32_MAX) return false;
  return true;
}

std::optional<kernels::SmallConvParams> params(const Node& n) {
  auto dims = direct_nhwc_conv_dims(n);
  if (!dims) return std::nullopt;
  const Dims &x = dims->x, &w = dims->w, &y = dims->y;
  const DType t = n.outputs[0]->type.dtype;
  const std::string act = n.attrs.s("activation", "");
  const int64_t c = x[3], m = w[0], kh = w[1], kw = w[2];
  const int64_t vec = 16 / static_cast<int64_t>(dtype_size(t));
  if (c < 1 || c > kMaxChannels || w[3] != c || y[3] != m || m % vec != 0 || c * kh * kw > kMaxReduction) return std::nullopt;
  if (static_cast<size_t>((kh * kw * c + 1) * m) * sizeof(float) > kMaxSharedBytes) return std::nullopt;
  const Dims kernel{kh, kw};
  auto win = resolve_window(n, Dims{x[1], x[2]}, &kernel, false);
  if (!win.ok() || win->out != Dims{y[1], y[2]} || y[0] != x[0]) return std::nullopt;
  if (!fits_int({x[1], x[2], c, m, kh, kw, win->strides[0], win->strides[1], win->pads_begin[0],
                 win->pads_begin[1], win->dilations[0], win->dilations[1]}))
    return std::nullopt;
  kernels::SmallConvParams p;
  p.n = x[0];
  p.oh = y[1];
  p.ow = y[2];
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
  p.relu = act == "Relu";
  return p;
}

class SmallChannelConvLayer : public CudaLayer {
 public:
  SmallChannelConvLayer(kernels::SmallConvParams p, DType t) : p_(p), dtype_(t) {}
  Status enqueue(const LaunchArgs& a) const override {
    if (a.outputs[0].numel() == 0) return Status::Ok();
    const void* b = a.inputs.size() > 2 ? a.inputs[2].data : nullptr;
    const void* z = a.inputs.size() > 3 ? a.inputs[3].data : nullptr;
    KILN_CUDA_CHECK(kernels::small_channel_conv(dtype_, a.inputs[0].data, a.inputs[1].data, b, z, a.outputs[0].data, p_,
                                                a.stream));
    return Status::Ok();
  }

 private:
  kernels::SmallConvParams p_;
  DType dtype_;
};

}  // namespace

bool small_channel_conv_fits(const Node& n) { return params(n).has_value(); }

Expected<std::unique_ptr<CudaLayer>> small_channel_conv_create(const Node& n) {
  auto p = params(n);
  if (!p) return invalid_model("{}: tactic '{}' needs NHWC, group 1, C <= {}, C*kh*kw <= {}", n.describe(),
                               kSmallChannelTactic, kMaxChannels, kMaxReduction);
  return std::unique_ptr<CudaLayer>(std::make_unique<SmallChannelConvLayer>(*p, n.outputs[0]->type.dtype));
}

}  // namespace kiln::cuda
