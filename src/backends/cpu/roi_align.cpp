// CPU kernel of RoiAlign: each output bin samples a grid of points (sampling_ratio per side, or
// ceil(bin size) when 0) by bilinear interpolation; 'avg' averages them, 'max' takes the largest
// of the weighted corner terms over all points (the ONNX reference / ONNX Runtime definition).
// Points more than one pixel outside the map contribute 0.
#include <algorithm>
#include <cmath>
#include <vector>

#include "backends/cpu/accumulate.hpp"
#include "ops/op_registry.hpp"

namespace kiln::cpu {
namespace {

// The four corners and weights of one bilinear sample (all weights 0 when outside the map).
struct Sample {
  int64_t pos[4] = {0, 0, 0, 0};
  double w[4] = {0, 0, 0, 0};
};

Sample bilinear_sample(double y, double x, int64_t h, int64_t w) {
  Sample s;
  if (y < -1.0 || y > static_cast<double>(h) || x < -1.0 || x > static_cast<double>(w)) return s;
  y = std::max(y, 0.0);
  x = std::max(x, 0.0);
  int64_t y0 = static_cast<int64_t>(y), x0 = static_cast<int64_t>(x), y1 = y0 + 1, x1 = x0 + 1;
  if (y0 >= h - 1) {
    y0 = y1 = h - 1;
    y = static_cast<double>(y0);
  }
  if (x0 >= w - 1) {
    x0 = x1 = w - 1;
    x = static_cast<double>(x0);
  }
  const double ly = y - static_cast<double>(y0), lx = x - static_cast<double>(x0);
  s.pos[0] = y0 * w + x0;
  s.pos[1] = y0 * w + x1;
  s.pos[2] = y1 * w + x0;
  s.pos[3] = y1 * w + x1;
  s.w[0] = (1 - ly) * (1 - lx);
  s.w[1] = (1 - ly) * lx;
  s.w[2] = ly * (1 - lx);
  s.w[3] = ly * lx;
  return s;
}

struct RoiParams {
  int64_t oh, ow, sampling_ratio;
  double spatial_scale;
  bool half_pixel, max_mode;
};

template <typename T>
void roi_align_typed(const Tensor& x, const std::vector<double>& rois, const std::vector<int64_t>& batch,
                     const RoiParams& p, Tensor& y) {
  const int64_t channels = x.dim(1), h = x.dim(2), w = x.dim(3);
  const T* in = x.data<T>();
  T* out = y.data<T>();
  std::vector<Sample> samples;
  for (size_t r = 0; r < batch.size(); ++r) {
    const double offset = p.half_pixel ? 0.5 : 0.0;
    const double x1 = rois[r * 4] * p.spatial_scale - offset, y1 = rois[r * 4 + 1] * p.spatial_scale - offset;
    const double x2 = rois[r * 4 + 2] * p.spatial_scale - offset, y2 = rois[r * 4 + 3] * p.spatial_scale - offset;
    double roi_w = x2 - x1, roi_h = y2 - y1;
    if (!p.half_pixel) {  // the legacy mode makes malformed rois at least 1x1
      roi_w = std::max(roi_w, 1.0);
      roi_h = std::max(roi_h, 1.0);
    }
    const double bin_h = roi_h / static_cast<double>(p.oh), bin_w = roi_w / static_cast<double>(p.ow);
    const int64_t grid_h = p.sampling_ratio > 0 ? p.sampling_ratio : static_cast<int64_t>(std::ceil(bin_h));
    const int64_t grid_w = p.sampling_ratio > 0 ? p.sampling_ratio : static_cast<int64_t>(std::ceil(bin_w));
    const double count = static_cast<double>(std::max<int64_t>(grid_h * grid_w, 1));
    // The sample points are shared by every channel.
    samples.clear();
    for (int64_t ph = 0; ph < p.oh; ++ph)
      for (int64_t pw = 0; pw < p.ow; ++pw)
        for (int64_t iy = 0; iy < grid_h; ++iy)
          for (int64_t ix = 0; ix < grid_w; ++ix)
            samples.push_back(bilinear_sample(
                y1 + static_cast<double>(ph) * bin_h + (static_cast<double>(iy) + 0.5) * bin_h / static_cast<double>(grid_h),
                x1 + static_cast<double>(pw) * bin_w + (static_cast<double>(ix) + 0.5) * bin_w / static_cast<double>(grid_w),
                h, w));
    for (int64_t c = 0; c < channels; ++c) {
      const T* plane = in + (batch[r] * channels + c) * h * w;
      T* o = out + (static_cast<int64_t>(r) * channels + c) * p.oh * p.ow;
      size_t si = 0;
      for (int64_t bin = 0; bin < p.oh * p.ow; ++bin) {
        double acc = 0;
        bool first = true;
        for (int64_t k = 0; k < grid_h * grid_w; ++k, ++si) {
          const Sample& s = samples[si];
          double terms[4];
          for (int j = 0; j < 4; ++j) terms[j] = s.w[j] * static_cast<double>(static_cast<compute_t<T>>(plane[s.pos[j]]));
          if (!p.max_mode) {
            acc += terms[0] + terms[1] + terms[2] + terms[3];
          } else {
            const double m = std::max({terms[0], terms[1], terms[2], terms[3]});
            acc = first ? m : std::max(acc, m);
            first = false;
          }
        }
        o[bin] = store_as<T>(p.max_mode ? acc : acc / count);
      }
    }
  }
}

Status roi_align_kernel(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  if (!is_floating(x.dtype())) return ctx.unsupported_dtype(x.dtype(), 0);
  if (!is_floating(ctx.input(1).dtype())) return ctx.unsupported_dtype(ctx.input(1).dtype(), 1);
  auto batch = ctx.input(2).to_int64_vector();
  if (!batch) return ctx.error("batch_indices: {}", batch.status().message());
  for (int64_t b : *batch)
    if (b < 0 || b >= x.dim(0)) return ctx.error("batch index {} is out of range for {} batches", b, x.dim(0));
  const Attributes& a = ctx.attrs();
  RoiParams p{a.i("output_height", 1), a.i("output_width", 1), a.i("sampling_ratio", 0), a.f("spatial_scale", 1.f),
              a.s("coordinate_transformation_mode", "half_pixel") == "half_pixel", a.s("mode", "avg") == "max"};
  const std::vector<double> rois = ctx.input(1).to_double_vector();
  Tensor& y = ctx.output(0);
  dispatch_dtype(x.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    if constexpr (is_float_like_v<T>) roi_align_typed<T>(x, rois, *batch, p, y);
  });
  return Status::Ok();
}

}  // namespace
}  // namespace kiln::cpu

KILN_REGISTER_CPU_KERNEL("RoiAlign", kiln::cpu::roi_align_kernel);
