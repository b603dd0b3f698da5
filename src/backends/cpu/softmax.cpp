// Softmax, LogSoftmax, Hardmax and Dropout on the CPU.
#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "backends/cpu/float_dispatch.hpp"

namespace kiln {
namespace {

enum class SoftmaxKind { kSoftmax, kLogSoftmax, kHardmax };

// The tensor seen as (outer, axis, inner); each (outer, inner) line is reduced independently.
template <SoftmaxKind kKind>
Status softmax_kernel(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  int64_t axis = ctx.attrs().i("axis", -1);
  if (axis < 0) axis += x.rank();
  int64_t outer = 1, len = 1, inner = 1;
  for (int64_t i = 0; i < x.rank(); ++i) {
    int64_t d = x.dim(static_cast<int>(i));
    (i < axis ? outer : i == axis ? len : inner) *= d;
  }
  if (x.rank() == 0) len = 1;
  return cpu::dispatch_floating(ctx, x.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    using C = compute_t<T>;
    const T* xd = x.data<T>();
    T* yd = ctx.output(0).data<T>();
    std::vector<C> line(static_cast<size_t>(len));
    for (int64_t o = 0; o < outer; ++o) {
      for (int64_t in = 0; in < inner; ++in) {
        const int64_t base = o * len * inner + in;
        C mx = -std::numeric_limits<C>::infinity();
        int64_t arg = 0;
        for (int64_t k = 0; k < len; ++k) {
          C v = static_cast<C>(xd[base + k * inner]);
          line[static_cast<size_t>(k)] = v;
          if (v > mx) {
            mx = v;
            arg = k;
          }
        }
        if constexpr (kKind == SoftmaxKind::kHardmax) {
          for (int64_t k = 0; k < len; ++k) yd[base + k * inner] = static_cast<T>(C(k == arg ? 1 : 0));
        } else {
          // Subtracting the max keeps exp() finite for large inputs.
          C sum = 0;
          for (int64_t k = 0; k < len; ++k) sum += std::exp(line[static_cast<size_t>(k)] - mx);
          if constexpr (kKind == SoftmaxKind::kSoftmax) {
            const C inv = C(1) / sum;
            for (int64_t k = 0; k < len; ++k) yd[base + k * inner] = static_cast<T>(std::exp(line[static_cast<size_t>(k)] - mx) * inv);
          } else {
            const C log_sum = std::log(sum);
            for (int64_t k = 0; k < len; ++k) yd[base + k * inner] = static_cast<T>(line[static_cast<size_t>(k)] - mx - log_sum);
          }
        }
      }
    }
  });
}

// Inference mode (training_mode absent or false, or ratio 0): the output is the input and the mask
// all true. Training mode drops each element with probability `ratio` and scales the rest by
// 1 / (1 - ratio); the `seed` attribute makes the mask reproducible.
Status dropout_kernel(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  const bool training = ctx.has_input(2) && ctx.input(2).numel() > 0 && ctx.input(2).data<bool>()[0];
  double ratio = ctx.has_input(1) && ctx.input(1).numel() > 0 ? ctx.input(1).scalar_as_double() : 0.5;
  if (training && !(ratio >= 0.0 && ratio < 1.0)) return ctx.error("ratio {} must be in [0, 1)", ratio);
  const bool want_mask = ctx.node().has_output(1);
  if (!training || ratio == 0.0) {
    ctx.set_output(0, x);
    if (want_mask) {
      Tensor& mask = ctx.output(1);
      std::fill(mask.data<bool>(), mask.data<bool>() + mask.numel(), true);
    }
    return Status::Ok();
  }
  // The draws follow numpy's RandomState(seed).random_sample() (MT19937, 53-bit doubles), the
  // generator of the ONNX reference, so a seeded mask matches the reference outputs.
  std::mt19937 rng(ctx.attrs().has("seed") ? static_cast<uint32_t>(ctx.attrs().i("seed")) : std::random_device{}());
  std::vector<bool> kept(static_cast<size_t>(x.numel()));
  for (size_t i = 0; i < kept.size(); ++i) {
    const uint32_t a = rng() >> 5, b = rng() >> 6;
    const double u = (a * 67108864.0 + b) / 9007199254740992.0;
    kept[i] = u >= ratio;
  }
  if (want_mask) {
    bool* m = ctx.output(1).data<bool>();
    for (size_t i = 0; i < kept.size(); ++i) m[i] = kept[i];
  }
  const double scale = 1.0 / (1.0 - ratio);
  return cpu::dispatch_floating(ctx, x.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    using C = compute_t<T>;
    const T* xd = x.data<T>();
    T* yd = ctx.output(0).data<T>();
    for (size_t i = 0; i < kept.size(); ++i)
      yd[i] = kept[i] ? static_cast<T>(static_cast<C>(static_cast<double>(static_cast<C>(xd[i])) * scale)) : static_cast<T>(C(0));
  });
}

}  // namespace
}  // namespace kiln

KILN_REGISTER_CPU_KERNEL("Softmax", kiln::softmax_kernel<kiln::SoftmaxKind::kSoftmax>);
KILN_REGISTER_CPU_KERNEL("LogSoftmax", kiln::softmax_kernel<kiln::SoftmaxKind::kLogSoftmax>);
KILN_REGISTER_CPU_KERNEL("Hardmax", kiln::softmax_kernel<kiln::SoftmaxKind::kHardmax>);
KILN_REGISTER_CPU_KERNEL("Dropout", kiln::dropout_kernel);
