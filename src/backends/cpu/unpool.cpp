// MaxUnpool and MaxRoiPool on the CPU.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "ops/op_registry.hpp"
#include "ops/window_geometry.hpp"

namespace kiln {
namespace {

// Y is zero except at the positions the indices name. An index addresses the default unpooled
// shape ((in - 1) * stride + kernel - pads); with a larger output_shape each index keeps its
// coordinates (as in the ONNX reference).
Status max_unpool_kernel(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  const Tensor& ind = ctx.input(1);
  if (ind.dims() != x.dims())
    return ctx.error("I {} must have the shape of X {}", dims_to_string(ind.dims()), dims_to_string(x.dims()));
  const Dims in_spatial(x.dims().begin() + 2, x.dims().end());
  KILN_ASSIGN_OR_RETURN(Window w, resolve_window(ctx.node(), Dims(in_spatial.size(), -1), nullptr, false));
  Dims def{x.dim(0), x.dim(1)};
  for (size_t d = 0; d < w.rank(); ++d)
    def.push_back((in_spatial[d] - 1) * w.strides[d] + w.kernel[d] - w.pads_begin[d] - w.pads_end[d]);
  Tensor& y = ctx.output(0);
  const Dims& od = y.dims();
  const size_t esize = dtype_size(x.dtype());
  if (esize == 0 || x.dtype() == DType::kBool) return ctx.unsupported_dtype(x.dtype(), 0);
  std::memset(y.raw_data(), 0, y.nbytes());
  const int64_t def_numel = dims_numel(def);
  const bool same = od == def;
  const int64_t* idx = ind.data<int64_t>();
  const auto* src = static_cast<const unsigned char*>(x.raw_data());
  auto* dst = static_cast<unsigned char*>(y.raw_data());
  for (int64_t j = 0; j < x.numel(); ++j) {
    int64_t flat = idx[j];
    if (flat < 0 || flat >= def_numel)
      return ctx.error("index {} at position {} is outside the unpooled tensor {}", flat, j, dims_to_string(def));
    int64_t target = flat;
    if (!same) {
      target = 0;
      int64_t rest = flat, scale = 1;
      for (size_t d = def.size(); d-- > 0;) {
        int64_t c = rest % def[d];
        rest /= def[d];
        if (c >= od[d])
          return ctx.error("index {} falls outside output_shape {}", flat, dims_to_string(od));
        target += c * scale;
        scale *= od[d];
      }
    }
    std::memcpy(dst + target * static_cast<int64_t>(esize), src + j * static_cast<int64_t>(esize), esize);
  }
  return Status::Ok();
}

// Caffe-style RoI max pooling: each RoI (batch, x1, y1, x2, y2), scaled and rounded, is cut into
// pooled_h x pooled_w bins; an empty bin gives 0.
Status max_roi_pool_kernel(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  const Tensor& rois = ctx.input(1);
  if (!is_floating(x.dtype())) return ctx.unsupported_dtype(x.dtype(), 0);
  const Dims pooled = ctx.attrs().ints("pooled_shape");
  const double scale = ctx.attrs().f("spatial_scale", 1.f);
  const int64_t n = x.dim(0), channels = x.dim(1), height = x.dim(2), width = x.dim(3);
  const int64_t ph_n = pooled[0], pw_n = pooled[1];
  Tensor xf = x.dtype() == DType::kFloat64 ? x : x.cast(DType::kFloat32);
  auto rv = rois.to_double_vector();
  Tensor out(DType::kFloat64, *ctx.output_type(0).shape.to_dims());
  double* yd = out.data<double>();
  auto xv = xf.to_double_vector();
  for (int64_t r = 0; r < rois.dim(0); ++r) {
    const double* roi = rv.data() + r * 5;
    const int64_t b = static_cast<int64_t>(roi[0]);
    if (b < 0 || b >= n) return ctx.error("RoI {} has batch index {}, X has {} images", r, roi[0], n);
    const int64_t x1 = std::llround(roi[1] * scale), y1 = std::llround(roi[2] * scale);
    const int64_t x2 = std::llround(roi[3] * scale), y2 = std::llround(roi[4] * scale);
    const double bin_h = static_cast<double>(std::max<int64_t>(y2 - y1 + 1, 1)) / static_cast<double>(ph_n);
    const double bin_w = static_cast<double>(std::max<int64_t>(x2 - x1 + 1, 1)) / static_cast<double>(pw_n);
    for (int64_t c = 0; c < channels; ++c) {
      const double* plane = xv.data() + (b * channels + c) * height * width;
      for (int64_t ph = 0; ph < ph_n; ++ph) {
        int64_t h0 = std::clamp<int64_t>(static_cast<int64_t>(std::floor(ph * bin_h)) + y1, 0, height);
        int64_t h1 = std::clamp<int64_t>(static_cast<int64_t>(std::ceil((ph + 1) * bin_h)) + y1, 0, height);
        for (int64_t pw = 0; pw < pw_n; ++pw) {
          int64_t w0 = std::clamp<int64_t>(static_cast<int64_t>(std::floor(pw * bin_w)) + x1, 0, width);
          int64_t w1 = std::clamp<int64_t>(static_cast<int64_t>(std::ceil((pw + 1) * bin_w)) + x1, 0, width);
          double best = (h1 <= h0 || w1 <= w0) ? 0.0 : -std::numeric_limits<double>::infinity();
          for (int64_t h = h0; h < h1; ++h)
            for (int64_t ww = w0; ww < w1; ++ww) best = std::max(best, plane[h * width + ww]);
          yd[((r * channels + c) * ph_n + ph) * pw_n + pw] = best;
        }
      }
    }
  }
  ctx.set_output(0, out.cast(x.dtype()));
  return Status::Ok();
}

}  // namespace
}  // namespace kiln

KILN_REGISTER_CPU_KERNEL("MaxUnpool", kiln::max_unpool_kernel);
KILN_REGISTER_CPU_KERNEL("MaxRoiPool", kiln::max_roi_pool_kernel);
