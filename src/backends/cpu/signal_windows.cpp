// CPU kernels of the window generators and MelWeightMatrix: values computed in double, then
// converted to output_datatype (integer types truncate, as a cast would).
#include <cmath>
#include <numbers>
#include <vector>

#include "backends/cpu/element_types.hpp"
#include "ops/op_registry.hpp"

namespace kiln::cpu {
namespace {

// Fills `out` (already allocated, any numeric dtype) with value(i) for each element.
template <typename Fn>
Status fill(KernelContext& ctx, Tensor& out, Fn&& value) {
  const bool ok = dispatch_types<kNumericTypes>(out.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    T* p = out.data<T>();
    for (int64_t i = 0; i < out.numel(); ++i) p[i] = convert<T>(value(i));
  });
  if (!ok) return ctx.error("output dtype {} is not numeric", dtype_name(out.dtype()));
  return Status::Ok();
}

// Cosine-sum windows a0 - a1 cos(2 pi n / N) + a2 cos(4 pi n / N), N = size (periodic) or size - 1.
struct CosineSum {
  double a0, a1, a2;
};
constexpr CosineSum kHann{0.5, 0.5, 0.0};
constexpr CosineSum kHamming{25.0 / 46.0, 21.0 / 46.0, 0.0};
constexpr CosineSum kBlackman{0.42, 0.5, 0.08};

template <const CosineSum& W>
Status window_kernel(KernelContext& ctx) {
  Tensor& out = ctx.output(0);
  const bool periodic = ctx.attrs().i("periodic", 1) == 1;
  const int64_t size = out.numel();
  // A one-point symmetric window would divide 0 by 0: it is [1], as in NumPy and PyTorch.
  if (!periodic && size == 1) return fill(ctx, out, [](int64_t) { return 1.0; });
  const double period = static_cast<double>(periodic ? size : size - 1);
  return fill(ctx, out, [&](int64_t n) {
    const double a = 2.0 * std::numbers::pi * static_cast<double>(n) / period;
    return W.a0 - W.a1 * std::cos(a) + W.a2 * std::cos(2.0 * a);
  });
}

// Triangular filters between mel-spaced edges, following the ONNX reference: num_mel_bins + 2
// edges spaced (high_mel - low_mel) / (num_mel_bins + 2) apart from low_mel, each mapped to the
// spectrogram bin floor((dft_length + 1) * hz / sample_rate).
Status mel_weight_matrix_kernel(KernelContext& ctx) {
  const int64_t mel_bins = static_cast<int64_t>(ctx.input(0).scalar_as_double());
  const int64_t dft_length = static_cast<int64_t>(ctx.input(1).scalar_as_double());
  const double rate = ctx.input(2).scalar_as_double();
  const double lower = ctx.input(3).scalar_as_double(), upper = ctx.input(4).scalar_as_double();
  const int64_t spec_bins = dft_length / 2 + 1;
  auto to_mel = [](double hz) { return 2595.0 * std::log10(1.0 + hz / 700.0); };
  const double low_mel = to_mel(lower), step = (to_mel(upper) - low_mel) / static_cast<double>(mel_bins + 2);
  std::vector<int64_t> edge(static_cast<size_t>(mel_bins + 2));
  for (int64_t i = 0; i < mel_bins + 2; ++i) {
    const double hz = 700.0 * (std::pow(10.0, (static_cast<double>(i) * step + low_mel) / 2595.0) - 1.0);
    edge[static_cast<size_t>(i)] = static_cast<int64_t>(std::floor(static_cast<double>(dft_length + 1) * hz / rate));
  }
  std::vector<double> w(static_cast<size_t>(spec_bins * mel_bins), 0.0);
  // Edges past the last bin (upper_edge_hertz above the Nyquist frequency) are cut off.
  auto set = [&](int64_t bin, int64_t mel, double v) {
    if (bin >= 0 && bin < spec_bins) w[static_cast<size_t>(bin * mel_bins + mel)] = v;
  };
  for (int64_t m = 0; m < mel_bins; ++m) {
    const int64_t left = edge[static_cast<size_t>(m)], center = edge[static_cast<size_t>(m + 1)],
                  right = edge[static_cast<size_t>(m + 2)];
    if (center == left) set(center, m, 1.0);
    else
      for (int64_t j = left; j <= center; ++j)
        set(j, m, static_cast<double>(j - left) / static_cast<double>(center - left));
    for (int64_t j = center; j < right; ++j) set(j, m, static_cast<double>(right - j) / static_cast<double>(right - center));
  }
  return fill(ctx, ctx.output(0), [&](int64_t i) { return w[static_cast<size_t>(i)]; });
}

}  // namespace
}  // namespace kiln::cpu

KILN_REGISTER_CPU_KERNEL("HannWindow", kiln::cpu::window_kernel<kiln::cpu::kHann>);
KILN_REGISTER_CPU_KERNEL("HammingWindow", kiln::cpu::window_kernel<kiln::cpu::kHamming>);
KILN_REGISTER_CPU_KERNEL("BlackmanWindow", kiln::cpu::window_kernel<kiln::cpu::kBlackman>);
KILN_REGISTER_CPU_KERNEL("MelWeightMatrix", kiln::cpu::mel_weight_matrix_kernel);
