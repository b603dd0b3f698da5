// RandomNormal, RandomUniform (+Like), Bernoulli and Multinomial on the CPU. Element i takes draw
// i of the node's RandomStream, keyed by the `seed` attribute when present (runs repeat), else by
// a fresh key each run.
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "backends/cpu/element_types.hpp"
#include "backends/cpu/random_stream.hpp"
#include "ops/op_registry.hpp"

namespace kiln {
namespace {

using cpu::RandomStream;

RandomStream stream_of(const KernelContext& ctx) { return RandomStream::from_seed(ctx.attrs().get_ptr<float>("seed")); }

// The largest value of T below v.
template <typename T>
T next_below(T v) {
  if constexpr (std::is_floating_point_v<T>) {
    return std::nextafter(v, -std::numeric_limits<T>::infinity());
  } else {  // Half / BFloat16: sign-magnitude bits
    const uint16_t b = v.bits;
    if ((b & 0x7fffu) == 0) return T::from_bits(0x8001u);  // +-0 -> the smallest negative subnormal
    return T::from_bits(static_cast<uint16_t>(b & 0x8000u ? b + 1 : b - 1));
  }
}

// Normal: mean + scale * N(0, 1); uniform: low + (high - low) * U[0, 1); in the output dtype.
template <bool kUniform>
Status random_kernel(KernelContext& ctx) {
  Tensor& y = ctx.output(0);
  const RandomStream rs = stream_of(ctx);
  const double a = ctx.attrs().f(kUniform ? "low" : "mean", 0.f);
  const double b = ctx.attrs().f(kUniform ? "high" : "scale", 1.f);
  const bool ok = cpu::dispatch_types<cpu::kFloatTypes>(y.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    T* yd = y.data<T>();
    const int64_t n = y.numel();
    if constexpr (kUniform) {
      // Rounding to a narrow T can reach `high`: such draws take the largest T below it.
      T below = cpu::store<T>(b);
      while (b > a && static_cast<double>(cpu::load(below)) >= b) below = next_below(below);
      for (int64_t i = 0; i < n; ++i) {
        T v = cpu::store<T>(a + (b - a) * rs.uniform(static_cast<uint64_t>(i)));
        yd[i] = b > a && static_cast<double>(cpu::load(v)) >= b ? below : v;
      }
    } else {
      for (int64_t i = 0; i < n; ++i) yd[i] = cpu::store<T>(a + b * rs.normal(static_cast<uint64_t>(i)));
    }
  });
  if (!ok) return ctx.unsupported_dtype(y.dtype(), 0);
  return Status::Ok();
}

// y[i] = 1 with probability p[i] (uniform draw < p), else 0, in the output dtype.
Status bernoulli_kernel(KernelContext& ctx) {
  const Tensor& p = ctx.input(0);
  const Tensor pd = p.cast(DType::kFloat64);
  const double* pv = pd.data<double>();
  const int64_t n = p.numel();
  for (int64_t i = 0; i < n; ++i)
    if (!(pv[i] >= 0.0 && pv[i] <= 1.0)) return ctx.error("probability {} at element {} is not in [0, 1]", pv[i], i);
  const RandomStream rs = stream_of(ctx);
  Tensor& y = ctx.output(0);
  const bool ok = cpu::dispatch_types<cpu::kAllTypes>(y.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    T* yd = y.data<T>();
    for (int64_t i = 0; i < n; ++i) yd[i] = cpu::convert<T>(rs.uniform(static_cast<uint64_t>(i)) < pv[i] ? 1 : 0);
  });
  if (!ok) return ctx.unsupported_dtype(y.dtype(), 0);
  return Status::Ok();
}

// Per row of [batch, classes] log-probabilities: class c has weight exp(x[c] - max); sample s of
// row r inverts the cumulative weights at draw r * sample_size + s.
Status multinomial_kernel(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  const Tensor xd = x.cast(DType::kFloat64);
  const int64_t batch = x.dim(0), classes = x.dim(1);
  Tensor& y = ctx.output(0);
  const int64_t samples = y.dim(1);
  const RandomStream rs = stream_of(ctx);
  std::vector<double> cum(static_cast<size_t>(classes));
  std::vector<int64_t> picks(static_cast<size_t>(batch * samples));
  for (int64_t r = 0; r < batch; ++r) {
    const double* row = xd.data<double>() + r * classes;
    double hi = -std::numeric_limits<double>::infinity();
    for (int64_t c = 0; c < classes; ++c) {
      if (std::isnan(row[c])) return ctx.error("row {} holds NaN", r);
      hi = std::max(hi, row[c]);
    }
    if (!(hi > -std::numeric_limits<double>::infinity()))
      return ctx.error("row {} has no class with a finite log-probability", r);
    double total = 0;
    int64_t last = 0;  // the last class of positive weight: draws that round up to the total land there
    for (int64_t c = 0; c < classes; ++c) {
      // +inf log-probabilities share the whole probability.
      const double w = std::isinf(hi) ? (row[c] == hi ? 1.0 : 0.0) : std::exp(row[c] - hi);
      if (w > 0) last = c;
      total += w;
      cum[static_cast<size_t>(c)] = total;
    }
    for (int64_t s = 0; s < samples; ++s) {
      const double target = rs.uniform(static_cast<uint64_t>(r * samples + s)) * total;
      const auto it = std::upper_bound(cum.begin(), cum.end(), target);
      picks[static_cast<size_t>(r * samples + s)] = std::min<int64_t>(it - cum.begin(), last);
    }
  }
  switch (y.dtype()) {
    case DType::kInt32:
      std::transform(picks.begin(), picks.end(), y.data<int32_t>(), [](int64_t v) { return static_cast<int32_t>(v); });
      break;
    case DType::kInt64: std::copy(picks.begin(), picks.end(), y.data<int64_t>()); break;
    default: return ctx.unsupported_dtype(y.dtype(), 0);
  }
  return Status::Ok();
}

}  // namespace
}  // namespace kiln

KILN_REGISTER_CPU_KERNEL("RandomNormal", kiln::random_kernel<false>);
KILN_REGISTER_CPU_KERNEL("RandomUniform", kiln::random_kernel<true>);
KILN_REGISTER_CPU_KERNEL("RandomNormalLike", kiln::random_kernel<false>);
KILN_REGISTER_CPU_KERNEL("RandomUniformLike", kiln::random_kernel<true>);
KILN_REGISTER_CPU_KERNEL("Bernoulli", kiln::bernoulli_kernel);
KILN_REGISTER_CPU_KERNEL("Multinomial", kiln::multinomial_kernel);
