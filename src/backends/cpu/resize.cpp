// Resize on the CPU. Each resized axis gets a list of taps (source index, weight) per output index;
// nearest moves elements by size in one pass, linear/cubic apply the taps axis by axis in double.
#include <cmath>
#include <cstring>
#include <limits>

#include "backends/cpu/copy_util.hpp"
#include "ops/resize.hpp"

namespace kiln {
namespace {

using A = ResizeAttrs;

struct Tap {
  int64_t index;
  double weight;
};
// The taps of one output index; empty means "extrapolation_value" (tf_crop_and_resize outside the input).
using Taps = std::vector<Tap>;

// x_resized -> x_original. `out_w` is scale * in_len as the reference computes it (a real number).
double original_coord(const A& a, int64_t x, double scale, int64_t in_len, int64_t out_len, double roi_s, double roi_e) {
  const double xr = static_cast<double>(x), in = static_cast<double>(in_len), out_w = scale * in;
  switch (a.coord) {
    case A::Coord::kHalfPixel: return (xr + 0.5) / scale - 0.5;
    case A::Coord::kHalfPixelSymmetric: {
      // Keeps the input's center at the output's center when out_len was rounded from out_w.
      const double adjustment = static_cast<double>(out_len) / out_w;
      return in / 2 * (1 - adjustment) + (xr + 0.5) / scale - 0.5;
    }
    case A::Coord::kPytorchHalfPixel: return out_len > 1 ? (xr + 0.5) / scale - 0.5 : 0.0;
    case A::Coord::kAlignCorners: return out_w == 1 ? 0.0 : xr * (in - 1) / (out_w - 1);
    case A::Coord::kAsymmetric: return xr / scale;
    case A::Coord::kTfCropAndResize: {
      const double start = roi_s * (in - 1);
      return out_w == 1 ? start + (roi_e - roi_s) * (in - 1) / 2 : start + xr * (roi_e - roi_s) * (in - 1) / (out_w - 1);
    }
  }
  return 0;
}

double cubic_weight(double t, double a) {
  t = std::abs(t);
  if (t <= 1) return ((a + 2) * t - (a + 3)) * t * t + 1;
  if (t < 2) return ((a * t - 5 * a) * t + 8 * a) * t - 4 * a;
  return 0;
}

Taps taps_for(const A& a, double x, double scale, int64_t in_len) {
  if (a.coord == A::Coord::kTfCropAndResize && (x < 0 || x > static_cast<double>(in_len - 1))) return {};
  // The left neighbour i and ratio r in (0, 1]: an integer x is the right end of [x-1, x].
  int64_t i = static_cast<int64_t>(std::floor(x));
  double r = x - static_cast<double>(i);
  if (r == 0) {
    --i;
    r = 1;
  }
  Taps taps;
  if (a.mode == A::Mode::kNearest) {
    bool right = true;
    switch (a.nearest) {
      case A::Nearest::kRoundPreferFloor: right = r > 0.5 || r == 1; break;
      case A::Nearest::kRoundPreferCeil: right = r >= 0.5; break;
      case A::Nearest::kFloor: right = r == 1; break;
      case A::Nearest::kCeil: right = true; break;
    }
    taps.push_back({i + (right ? 1 : 0), 1.0});
  } else if (!a.antialias) {
    if (a.mode == A::Mode::kLinear) {
      taps = {{i, 1 - r}, {i + 1, r}};
    } else {
      for (int64_t j = -1; j <= 2; ++j) taps.push_back({i + j, cubic_weight(static_cast<double>(j) - r, a.cubic_a)});
    }
  } else {
    // Antialias: the filter is stretched by 1/scale when downsampling, and normalized.
    const double s = std::min(scale, 1.0);
    const double support = a.mode == A::Mode::kLinear ? 1.0 : 2.0;
    const int64_t start = static_cast<int64_t>(std::floor(-support / s)) + 1, end = 2 - start;
    double sum = 0;
    for (int64_t j = start; j < end; ++j) {
      const double t = (static_cast<double>(j) - r) * s;
      const double w = a.mode == A::Mode::kLinear ? std::clamp(1 - std::abs(t), 0.0, 1.0) : cubic_weight(t, a.cubic_a);
      taps.push_back({i + j, w});
      sum += w;
    }
    for (Tap& t : taps) t.weight /= sum;
  }
  if (a.exclude_outside && a.mode != A::Mode::kNearest) {
    double sum = 0;
    for (Tap& t : taps) {
      if (t.index < 0 || t.index >= in_len) t.weight = 0;
      sum += t.weight;
    }
    for (Tap& t : taps) t.weight = sum != 0 ? t.weight / sum : 0;
  }
  Taps kept;
  for (Tap t : taps) {
    if (t.weight == 0 && a.mode != A::Mode::kNearest) continue;
    t.index = std::clamp<int64_t>(t.index, 0, in_len - 1);  // edge padding
    kept.push_back(t);
  }
  return kept;
}

// Integer outputs are rounded to nearest and saturated; floating ones converted.
template <typename T>
T from_double(double v) {
  if constexpr (std::is_integral_v<T>) {
    if (std::isnan(v)) return T(0);
    v = std::clamp(std::round(v), static_cast<double>(std::numeric_limits<T>::lowest()),
                   static_cast<double>(std::numeric_limits<T>::max()));
    return static_cast<T>(v);
  } else if constexpr (std::is_same_v<T, Half> || std::is_same_v<T, BFloat16>) {
    return T(static_cast<float>(v));
  } else {
    return static_cast<T>(v);
  }
}

// Nearest: out[o] = x[src(o)], one source index per output index of each axis (-1: the fill value).
Status resize_nearest(KernelContext& ctx, const std::vector<std::vector<int64_t>>& src, double fill) {
  const Tensor& x = ctx.input(0);
  Tensor& out = ctx.output(0);
  const std::vector<int64_t> strides = contiguous_strides(x.dims());
  std::vector<uint64_t> fill_bits(1, 0);
  bool ok = dispatch_dtype(x.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    if constexpr (!std::is_same_v<T, bool>) {
      T v = from_double<T>(fill);
      std::memcpy(fill_bits.data(), &v, sizeof(T));
    }
  });
  if (!ok) return ctx.unsupported_dtype(x.dtype());
  dispatch_elem_size(dtype_size(x.dtype()), [&](auto tag) {
    using U = typename decltype(tag)::type;
    U v;
    std::memcpy(&v, fill_bits.data(), sizeof(U));
    const U* in = x.data<U>();
    U* dst = out.data<U>();
    const Dims outer(out.dims().begin(), out.dims().end() - 1);
    const std::vector<int64_t>& last = src.back();
    std::vector<int64_t> idx(outer.size(), 0);
    do {
      int64_t row = 0;
      bool filled = false;
      for (size_t k = 0; k < outer.size(); ++k) {
        const int64_t s = src[k][static_cast<size_t>(idx[k])];
        if (s < 0) filled = true;
        else row += s * strides[k];
      }
      for (int64_t s : last) *dst++ = filled || s < 0 ? v : in[row + s];
    } while (next_index(idx, outer));
  });
  return Status::Ok();
}

// Linear/cubic: apply the taps of each resized axis in turn to a double buffer.
Status resize_weighted(KernelContext& ctx, const std::vector<std::vector<Taps>>& taps, const std::vector<bool>& resized,
                       double fill) {
  const Tensor& x = ctx.input(0);
  Tensor& out = ctx.output(0);
  if (x.dtype() == DType::kBool || !dispatch_dtype(x.dtype(), [](auto) {})) return ctx.unsupported_dtype(x.dtype());
  std::vector<double> buf = x.to_double_vector();
  Dims dims = x.dims();
  for (size_t k = 0; k < dims.size(); ++k) {
    if (!resized[k]) continue;
    int64_t outer = 1, inner = 1;
    for (size_t i = 0; i < dims.size(); ++i) {
      if (i < k) outer *= dims[i];
      if (i > k) inner *= dims[i];
    }
    const int64_t in_len = dims[k], out_len = out.dims()[k];
    std::vector<double> next(static_cast<size_t>(outer * out_len * inner), 0.0);
    for (int64_t o = 0; o < outer; ++o) {
      const double* s = buf.data() + o * in_len * inner;
      for (int64_t j = 0; j < out_len; ++j) {
        double* d = next.data() + (o * out_len + j) * inner;
        const Taps& t = taps[k][static_cast<size_t>(j)];
        if (t.empty()) {
          std::fill(d, d + inner, fill);
          continue;
        }
        for (const Tap& tap : t)
          for (int64_t i = 0; i < inner; ++i) d[i] += tap.weight * s[tap.index * inner + i];
      }
    }
    buf.swap(next);
    dims[k] = out_len;
  }
  dispatch_dtype(x.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    if constexpr (!std::is_same_v<T, bool>) {
      T* dst = out.data<T>();
      for (size_t i = 0; i < buf.size(); ++i) dst[i] = from_double<T>(buf[i]);
    }
  });
  return Status::Ok();
}

std::optional<std::vector<double>> optional_doubles(const KernelContext& ctx, size_t i) {
  if (!ctx.has_input(i) || ctx.input(i).numel() == 0) return std::nullopt;
  return ctx.input(i).to_double_vector();
}

Status resize_kernel(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  const int64_t rank = x.rank();
  KILN_ASSIGN_OR_RETURN(ResizeAttrs attrs, resize_attrs(ctx.node(), rank));
  std::optional<std::vector<int64_t>> sizes;
  if (ctx.has_input(3) && ctx.input(3).numel() > 0) {
    KILN_ASSIGN_OR_RETURN(sizes, ctx.input(3).to_int64_vector());
  }
  KILN_ASSIGN_OR_RETURN(ResizePlan plan, resize_plan(ctx.node(), attrs, Shape::from_dims(x.dims()).dims(),
                                                     optional_doubles(ctx, 2), sizes, optional_doubles(ctx, 1)));
  Tensor& out = ctx.output(0);
  if (out.numel() == 0) return Status::Ok();
  if (rank == 0) {  // nothing to resize
    std::memcpy(out.raw_data(), x.raw_data(), x.nbytes());
    return Status::Ok();
  }
  if (x.numel() == 0) return ctx.error("cannot resize the empty input {} to {}", x.describe(), out.describe());
  std::vector<std::vector<Taps>> taps(static_cast<size_t>(rank));
  std::vector<bool> resized(static_cast<size_t>(rank), false);
  for (size_t k = 0; k < static_cast<size_t>(rank); ++k) {
    const int64_t in_len = x.dims()[k], out_len = out.dims()[k];
    for (int64_t o = 0; o < out_len; ++o) {
      double xo = original_coord(attrs, o, plan.scales[k], in_len, out_len, plan.roi_start[k], plan.roi_end[k]);
      taps[k].push_back(taps_for(attrs, xo, plan.scales[k], in_len));
      const Taps& t = taps[k].back();
      if (t.size() != 1 || t[0].index != o || t[0].weight != 1.0) resized[k] = true;
    }
    if (in_len != out_len) resized[k] = true;
  }
  if (attrs.mode != A::Mode::kNearest) return resize_weighted(ctx, taps, resized, attrs.extrapolation_value);
  std::vector<std::vector<int64_t>> src(static_cast<size_t>(rank));
  for (size_t k = 0; k < taps.size(); ++k)
    for (const Taps& t : taps[k]) src[k].push_back(t.empty() ? -1 : t[0].index);
  return resize_nearest(ctx, src, attrs.extrapolation_value);
}

}  // namespace
}  // namespace kiln

KILN_REGISTER_CPU_KERNEL("Resize", kiln::resize_kernel);
