// LRN (across channels) and MeanVarianceNormalization (over any axes) on the CPU.
#include <cmath>
#include <vector>

#include "backends/cpu/float_dispatch.hpp"
#include "ops/op_registry.hpp"

namespace kiln {
namespace {

using cpu::dispatch_floating;

// y = x / (bias + alpha / size * sum of x^2 over channels [c - floor((size-1)/2), c + ceil((size-1)/2)])^beta
Status lrn_kernel(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  const int64_t size = ctx.attrs().i("size", 1);
  const double alpha = ctx.attrs().f("alpha", 1e-4f), beta = ctx.attrs().f("beta", 0.75f), bias = ctx.attrs().f("bias", 1.f);
  const int64_t n = x.dim(0), channels = x.dim(1);
  const int64_t inner = n * channels > 0 ? x.numel() / (n * channels) : 0;
  const int64_t before = (size - 1) / 2, after = size - 1 - before;
  return dispatch_floating(ctx, x.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* xd = x.data<T>();
    T* yd = ctx.output(0).data<T>();
    std::vector<double> sq(static_cast<size_t>(channels * inner));
    for (int64_t i = 0; i < n; ++i) {
      const int64_t base = i * channels * inner;
      for (int64_t k = 0; k < channels * inner; ++k) {
        double v = static_cast<double>(static_cast<compute_t<T>>(xd[base + k]));
        sq[static_cast<size_t>(k)] = v * v;
      }
      for (int64_t c = 0; c < channels; ++c) {
        const int64_t lo = std::max<int64_t>(0, c - before), hi = std::min(channels - 1, c + after);
        for (int64_t j = 0; j < inner; ++j) {
          double sum = 0;
          for (int64_t cc = lo; cc <= hi; ++cc) sum += sq[static_cast<size_t>(cc * inner + j)];
          double v = static_cast<double>(static_cast<compute_t<T>>(xd[base + c * inner + j]));
          yd[base + c * inner + j] =
              static_cast<T>(static_cast<compute_t<T>>(v / std::pow(bias + alpha / static_cast<double>(size) * sum, beta)));
        }
      }
    }
  });
}

// y = (x - mean) / (sqrt(variance) + 1e-9), statistics over `axes` (ONNX's function definition).
Status mvn_kernel(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  const int64_t rank = x.rank();
  std::vector<bool> reduced(static_cast<size_t>(rank), false);
  for (int64_t a : ctx.attrs().ints("axes", {0, 2, 3})) reduced[static_cast<size_t>(a < 0 ? a + rank : a)] = true;
  // Each element's statistics slot: its offset among the kept dims.
  std::vector<int64_t> slot_stride(static_cast<size_t>(rank), 0);
  int64_t slots = 1;
  for (int64_t i = rank - 1; i >= 0; --i) {
    if (reduced[static_cast<size_t>(i)]) continue;
    slot_stride[static_cast<size_t>(i)] = slots;
    slots *= x.dim(static_cast<int>(i));
  }
  const int64_t total = x.numel();
  const int64_t count = slots > 0 ? total / slots : 0;
  std::vector<int64_t> slot_of(static_cast<size_t>(total));
  Dims idx(static_cast<size_t>(rank), 0);
  for (int64_t f = 0; f < total; ++f) {
    int64_t s = 0;
    for (size_t i = 0; i < idx.size(); ++i) s += idx[i] * slot_stride[i];
    slot_of[static_cast<size_t>(f)] = s;
    for (size_t i = idx.size(); i-- > 0;) {
      if (++idx[i] < x.dims()[i]) break;
      idx[i] = 0;
    }
  }
  return dispatch_floating(ctx, x.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* xd = x.data<T>();
    T* yd = ctx.output(0).data<T>();
    auto val = [&](int64_t f) { return static_cast<double>(static_cast<compute_t<T>>(xd[f])); };
    std::vector<double> mean(static_cast<size_t>(slots), 0.0), var(static_cast<size_t>(slots), 0.0);
    for (int64_t f = 0; f < total; ++f) mean[static_cast<size_t>(slot_of[static_cast<size_t>(f)])] += val(f);
    for (double& m : mean) m /= static_cast<double>(count);
    for (int64_t f = 0; f < total; ++f) {
      double d = val(f) - mean[static_cast<size_t>(slot_of[static_cast<size_t>(f)])];
      var[static_cast<size_t>(slot_of[static_cast<size_t>(f)])] += d * d;
    }
    for (double& v : var) v = std::sqrt(v / static_cast<double>(count)) + 1e-9;
    for (int64_t f = 0; f < total; ++f) {
      const size_t s = static_cast<size_t>(slot_of[static_cast<size_t>(f)]);
      yd[f] = static_cast<T>(static_cast<compute_t<T>>((val(f) - mean[s]) / var[s]));
    }
  });
}

}  // namespace
}  // namespace kiln

KILN_REGISTER_CPU_KERNEL("LRN", kiln::lrn_kernel);
KILN_REGISTER_CPU_KERNEL("MeanVarianceNormalization", kiln::mvn_kernel);
