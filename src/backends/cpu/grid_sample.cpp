// CPU kernels of GridSample (N-d, following the ONNX reference implementation) and AffineGrid.
//
// GridSample: each output position turns its grid vector into per-dim input coordinates, then
// into taps (input index, weight) per dim: 1 for nearest, 2 for linear, 4 for cubic (Keys,
// a = -0.75). Their product over dims is shared by every channel. A coordinate outside the
// border is first clamped (border) or reflected (reflection); taps outside the input read 0
// (zeros), the nearest edge (border) or their reflection (reflection). Computed in double.
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "backends/cpu/accumulate.hpp"
#include "backends/cpu/element_types.hpp"
#include "backends/cpu/float_dispatch.hpp"

namespace kiln::cpu {
namespace {

enum class Interp { kNearest, kLinear, kCubic };
enum class Padding { kZeros, kBorder, kReflection };

struct SampleParams {
  Interp interp;
  Padding padding;
  bool align_corners;
};

// Reflects x into [lo, hi] as many times as needed (a mirror at each border).
double reflect(double x, double lo, double hi) {
  const double range = hi - lo;
  if (range <= 0) return lo;  // a one-pixel dim with align_corners
  if (x >= lo && x <= hi) return x;
  const bool below = x < lo;
  const double t = std::fmod(below ? lo - x : x - hi, 2 * range);
  const bool even = t <= range;  // an even number of whole ranges past the border
  const double r = even ? t : t - range;
  if (below) return even ? lo + r : hi - r;
  return even ? hi - r : lo + r;
}

void cubic_coeffs(double t, double c[4]) {
  constexpr double a = -0.75;
  auto outer = [](double d) { return ((a * d - 5 * a) * d + 8 * a) * d - 4 * a; };  // 1 <= |d| < 2
  auto inner = [](double d) { return ((a + 2) * d - (a + 3)) * d * d + 1; };      // |d| < 1
  c[0] = outer(t + 1);
  c[1] = inner(t);
  c[2] = inner(1 - t);
  c[3] = outer(2 - t);
}

struct DimTaps {
  int64_t index[4];  // -1: reads 0
  double weight[4];
  int count = 0;
};

// The taps along one dim of size `size` for normalized coordinate g.
DimTaps dim_taps(double g, int64_t size, const SampleParams& p) {
  DimTaps taps;
  const double d = static_cast<double>(size);
  const double lo = p.align_corners ? 0.0 : -0.5, hi = p.align_corners ? d - 1 : d - 0.5;
  double x = p.align_corners ? (g + 1) / 2 * (d - 1) : ((g + 1) * d - 1) / 2;
  if (p.interp == Interp::kNearest) x = std::nearbyint(x);  // halfway rounds to even
  if (x < lo || x > hi) {
    if (p.padding == Padding::kBorder) x = std::clamp(x, 0.0, d - 1);
    else if (p.padding == Padding::kReflection) x = reflect(x, lo, hi);
  }
  // NaN, and zeros-padded coordinates so far out that no tap can reach the input, read 0 (this
  // also keeps the integer conversions below in range).
  if (!(x > -3.0 && x < d + 2.0)) {
    taps.count = 1;
    taps.index[0] = -1;
    taps.weight[0] = 0;
    return taps;
  }
  auto map = [&](int64_t i) -> int64_t {
    if (i >= 0 && i < size) return i;
    if (p.padding == Padding::kZeros) return -1;
    if (p.padding == Padding::kBorder) return std::clamp<int64_t>(i, 0, size - 1);
    return std::clamp<int64_t>(static_cast<int64_t>(reflect(static_cast<double>(i), lo, hi)), 0, size - 1);
  };
  if (p.interp == Interp::kNearest) {
    taps.count = 1;
    taps.index[0] = map(static_cast<int64_t>(x));
    taps.weight[0] = 1;
    return taps;
  }
  const double x0 = std::floor(x), t = x - x0;
  const int64_t i0 = static_cast<int64_t>(x0);
  if (p.interp == Interp::kLinear) {
    taps.count = 2;
    taps.index[0] = map(i0);
    taps.index[1] = map(i0 + 1);
    taps.weight[0] = 1 - t;
    taps.weight[1] = t;
    return taps;
  }
  taps.count = 4;
  cubic_coeffs(t, taps.weight);
  for (int k = 0; k < 4; ++k) taps.index[k] = map(i0 - 1 + k);
  return taps;
}

template <typename T, typename G>
void grid_sample_typed(const Tensor& x, const Tensor& grid, Tensor& y, const SampleParams& p) {
  const int64_t n = x.dim(0), channels = x.dim(1);
  const int nd = x.rank() - 2;
  Dims in_dims(static_cast<size_t>(nd)), strides(static_cast<size_t>(nd));
  int64_t in_size = 1, out_size = 1;
  for (int i = nd - 1; i >= 0; --i) {
    in_dims[static_cast<size_t>(i)] = x.dim(i + 2);
    strides[static_cast<size_t>(i)] = in_size;
    in_size *= x.dim(i + 2);
    out_size *= y.dim(i + 2);
  }
  const T* in = x.data<T>();
  const G* g = grid.data<G>();
  T* out = y.data<T>();
  std::vector<DimTaps> taps(static_cast<size_t>(nd));
  std::vector<int64_t> offsets;
  std::vector<double> weights;
  std::vector<int> k(static_cast<size_t>(nd));
  for (int64_t b = 0; b < n; ++b) {
    for (int64_t o = 0; o < out_size; ++o) {
      // The grid lists coordinates innermost dim first (x, y, ...).
      const G* v = g + (b * out_size + o) * nd;
      for (int i = 0; i < nd; ++i)
        taps[static_cast<size_t>(i)] = dim_taps(static_cast<double>(load(v[nd - 1 - i])), in_dims[static_cast<size_t>(i)], p);
      offsets.clear();
      weights.clear();
      std::fill(k.begin(), k.end(), 0);
      for (;;) {  // every combination of one tap per dim
        int64_t offset = 0;
        double weight = 1;
        for (int i = 0; i < nd && offset >= 0; ++i) {
          const DimTaps& t = taps[static_cast<size_t>(i)];
          const int64_t idx = t.index[k[static_cast<size_t>(i)]];
          offset = idx < 0 ? -1 : offset + idx * strides[static_cast<size_t>(i)];
          weight *= t.weight[k[static_cast<size_t>(i)]];
        }
        if (offset >= 0 && weight != 0) {
          offsets.push_back(offset);
          weights.push_back(weight);
        }
        int i = nd - 1;
        for (; i >= 0 && ++k[static_cast<size_t>(i)] == taps[static_cast<size_t>(i)].count; --i) k[static_cast<size_t>(i)] = 0;
        if (i < 0) break;
      }
      for (int64_t c = 0; c < channels; ++c) {
        const T* plane = in + (b * channels + c) * in_size;
        double acc = 0;
        for (size_t t = 0; t < offsets.size(); ++t) acc += weights[t] * static_cast<double>(load(plane[offsets[t]]));
        out[(b * channels + c) * out_size + o] = convert<T>(acc);
      }
    }
  }
}

Status grid_sample_kernel(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  const Tensor& grid = ctx.input(1);
  const std::string mode = ctx.attrs().s("mode", "linear"), padding = ctx.attrs().s("padding_mode", "zeros");
  const SampleParams p{mode == "nearest" ? Interp::kNearest : mode == "cubic" ? Interp::kCubic : Interp::kLinear,
                       padding == "border"       ? Padding::kBorder
                       : padding == "reflection" ? Padding::kReflection
                                                 : Padding::kZeros,
                       ctx.attrs().i("align_corners", 0) == 1};
  Tensor& y = ctx.output(0);
  bool x_ok = false;
  Status st = dispatch_floating(
      ctx, grid.dtype(),
      [&](auto gtag) {
        x_ok = dispatch_types<kNumericTypes>(x.dtype(), [&](auto xtag) {
          grid_sample_typed<typename decltype(xtag)::type, typename decltype(gtag)::type>(x, grid, y, p);
        });
      },
      1);
  if (!st.ok()) return st;
  return x_ok ? Status::Ok() : ctx.unsupported_dtype(x.dtype(), 0);
}

// AffineGrid: the base grid spans [-1, 1] per dim (pixel centres: corner pixels' centres at +-1
// with align_corners, else their outer edges), as (x, y[, z], 1) multiplied by theta.
template <typename T>
void affine_grid_typed(const Tensor& theta, Tensor& grid, const Dims& spatial, bool align_corners) {
  const int64_t n = theta.dim(0), nd = static_cast<int64_t>(spatial.size());
  auto base = [&](int64_t i, int64_t size) {
    if (align_corners) return size > 1 ? -1.0 + 2.0 * static_cast<double>(i) / static_cast<double>(size - 1) : -1.0;
    return -1.0 + (2.0 * static_cast<double>(i) + 1.0) / static_cast<double>(size);
  };
  int64_t points = 1;
  for (int64_t s : spatial) points *= s;
  const T* th = theta.data<T>();
  T* out = grid.data<T>();
  std::vector<double> pos(static_cast<size_t>(nd + 1));
  for (int64_t b = 0; b < n; ++b) {
    const T* m = th + b * nd * (nd + 1);
    for (int64_t p = 0; p < points; ++p) {
      // pos = (x, y[, z], 1): the innermost dim first.
      for (int64_t r = p, i = nd - 1; i >= 0; --i) {
        const int64_t size = spatial[static_cast<size_t>(i)];
        pos[static_cast<size_t>(nd - 1 - i)] = base(r % size, size);
        r /= size;
      }
      pos[static_cast<size_t>(nd)] = 1.0;
      for (int64_t row = 0; row < nd; ++row) {
        double acc = 0;
        for (int64_t col = 0; col <= nd; ++col)
          acc += static_cast<double>(load(m[row * (nd + 1) + col])) * pos[static_cast<size_t>(col)];
        out[(b * points + p) * nd + row] = store_as<T>(acc);
      }
    }
  }
}

Status affine_grid_kernel(KernelContext& ctx) {
  const Tensor& theta = ctx.input(0);
  auto size = ctx.input(1).to_int64_vector();
  if (!size) return ctx.error("size: {}", size.status().message());
  const Dims spatial(size->begin() + 2, size->end());
  Tensor& grid = ctx.output(0);
  const bool align = ctx.attrs().i("align_corners", 0) == 1;
  return dispatch_floating(ctx, theta.dtype(), [&](auto tag) {
    affine_grid_typed<typename decltype(tag)::type>(theta, grid, spatial, align);
  });
}

}  // namespace
}  // namespace kiln::cpu

KILN_REGISTER_CPU_KERNEL("GridSample", kiln::cpu::grid_sample_kernel);
KILN_REGISTER_CPU_KERNEL("AffineGrid", kiln::cpu::affine_grid_kernel);
