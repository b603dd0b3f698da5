// CPU kernels of DFT and STFT: each transformed line is gathered into a complex buffer (zero
// padded or truncated to the DFT length), transformed by an FftPlan in double, and written back.
// Inference has validated the attributes and inputs and sized the output.
#include <algorithm>
#include <vector>

#include "backends/cpu/accumulate.hpp"
#include "backends/cpu/element_types.hpp"
#include "backends/cpu/fft.hpp"
#include "backends/cpu/float_dispatch.hpp"

namespace kiln::cpu {
namespace {

int64_t scalar_value(const Tensor& t) { return (*t.to_int64_vector())[0]; }

struct DftGeometry {
  int64_t outer, len_in, inner, comp_in;  // input as [outer, len_in, inner, comp_in]
  int64_t len_out, comp_out;              // output as [outer, len_out, inner, comp_out]
};

template <typename T>
void dft_typed(const Tensor& x, Tensor& y, const DftGeometry& g, int64_t n, bool inverse, bool onesided) {
  const T* in = x.data<T>();
  T* out = y.data<T>();
  const FftPlan plan(n);
  const bool irfft = inverse && onesided;
  const double scale = inverse ? 1.0 / static_cast<double>(n) : 1.0;
  std::vector<cdouble> buf(static_cast<size_t>(n));
  for (int64_t o = 0; o < g.outer; ++o) {
    for (int64_t i = 0; i < g.inner; ++i) {
      auto at = [&](int64_t k) {
        const T* p = in + ((o * g.len_in + k) * g.inner + i) * g.comp_in;
        const double re = static_cast<double>(load(p[0]));
        return cdouble(re, g.comp_in == 2 ? static_cast<double>(load(p[1])) : 0.0);
      };
      if (irfft) {
        // The input holds bins 0..n/2; the rest follow by conjugate symmetry. The imaginary
        // parts of bins 0 (and n/2) only add an imaginary term, which the real output drops.
        const int64_t half = n / 2 + 1;
        for (int64_t k = 0; k < half; ++k) buf[static_cast<size_t>(k)] = k < g.len_in ? at(k) : cdouble(0);
        for (int64_t k = half; k < n; ++k) buf[static_cast<size_t>(k)] = std::conj(buf[static_cast<size_t>(n - k)]);
      } else {
        for (int64_t k = 0; k < n; ++k) buf[static_cast<size_t>(k)] = k < g.len_in ? at(k) : cdouble(0);
      }
      plan.run(buf.data(), inverse);
      for (int64_t k = 0; k < g.len_out; ++k) {
        T* p = out + ((o * g.len_out + k) * g.inner + i) * g.comp_out;
        const cdouble v = buf[static_cast<size_t>(k)] * scale;
        p[0] = store_as<T>(v.real());
        if (g.comp_out == 2) p[1] = store_as<T>(v.imag());
      }
    }
  }
}

Status dft_kernel(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  const int64_t rank = x.rank();
  int64_t axis = ctx.has_input(2) ? scalar_value(ctx.input(2)) : -2;
  if (axis < 0) axis += rank;
  const bool inverse = ctx.attrs().i("inverse", 0) == 1, onesided = ctx.attrs().i("onesided", 0) == 1;
  Tensor& y = ctx.output(0);
  DftGeometry g{1, x.dim(static_cast<int>(axis)), 1, x.dim(static_cast<int>(rank - 1)),
                y.dim(static_cast<int>(axis)), y.dim(static_cast<int>(rank - 1))};
  for (int64_t d = 0; d < axis; ++d) g.outer *= x.dim(static_cast<int>(d));
  for (int64_t d = axis + 1; d < rank - 1; ++d) g.inner *= x.dim(static_cast<int>(d));
  int64_t n = g.len_in;
  if (ctx.has_input(1)) n = scalar_value(ctx.input(1));
  else if (inverse && onesided) n = 2 * (g.len_in - 1);
  return dispatch_floating(ctx, x.dtype(), [&](auto tag) {
    dft_typed<typename decltype(tag)::type>(x, y, g, n, inverse, onesided);
  });
}

template <typename T>
void stft_typed(const Tensor& signal, const Tensor* window, Tensor& y, int64_t step, int64_t frame) {
  const int64_t batch = signal.dim(0), len = signal.dim(1), comp = signal.dim(2);
  const int64_t frames = y.dim(1), bins = y.dim(2);
  const T* in = signal.data<T>();
  std::vector<double> w(static_cast<size_t>(frame), 1.0);
  if (window)
    for (int64_t k = 0; k < frame; ++k) w[static_cast<size_t>(k)] = static_cast<double>(load(window->data<T>()[k]));
  T* out = y.data<T>();
  const FftPlan plan(frame);
  std::vector<cdouble> buf(static_cast<size_t>(frame));
  for (int64_t b = 0; b < batch; ++b) {
    for (int64_t f = 0; f < frames; ++f) {
      for (int64_t k = 0; k < frame; ++k) {
        const T* p = in + (b * len + f * step + k) * comp;
        const double re = static_cast<double>(load(p[0])), im = comp == 2 ? static_cast<double>(load(p[1])) : 0.0;
        buf[static_cast<size_t>(k)] = cdouble(re, im) * w[static_cast<size_t>(k)];
      }
      plan.run(buf.data(), /*inverse=*/false);
      T* o = out + (b * frames + f) * bins * 2;
      for (int64_t k = 0; k < bins; ++k) {
        o[2 * k] = store_as<T>(buf[static_cast<size_t>(k)].real());
        o[2 * k + 1] = store_as<T>(buf[static_cast<size_t>(k)].imag());
      }
    }
  }
}

Status stft_kernel(KernelContext& ctx) {
  const Tensor& signal = ctx.input(0);
  const Tensor* window = ctx.has_input(2) ? &ctx.input(2) : nullptr;
  const int64_t step = scalar_value(ctx.input(1));
  const int64_t frame = ctx.has_input(3) ? scalar_value(ctx.input(3)) : window ? window->dim(0) : signal.dim(1);
  Tensor& y = ctx.output(0);
  return dispatch_floating(ctx, signal.dtype(), [&](auto tag) {
    stft_typed<typename decltype(tag)::type>(signal, window, y, step, frame);
  });
}

}  // namespace
}  // namespace kiln::cpu

KILN_REGISTER_CPU_KERNEL("DFT", kiln::cpu::dft_kernel);
KILN_REGISTER_CPU_KERNEL("STFT", kiln::cpu::stft_kernel);
