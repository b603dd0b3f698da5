// kiln.MaskedSoftmax on the CPU (the reference the CUDA layer is tested against): per row of the
// last dim, z = x * scale + mask in float (double for float64), then a max-subtracted softmax.
#include <cmath>
#include <limits>
#include <vector>

#include "backends/cpu/element_types.hpp"
#include "backends/cpu/float_dispatch.hpp"
#include "ops/masked_softmax.hpp"

namespace kiln {
namespace {

Status masked_softmax_kernel(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  const Tensor* mask = ctx.has_input(1) ? &ctx.input(1) : nullptr;
  const Dims& xd = x.dims();
  std::optional<Dims> ms = mask ? masked_softmax_mask_strides(xd, mask->dims()) : Dims(xd.size(), 0);
  if (!ms) return ctx.error("mask {} does not broadcast to x {}", dims_to_string(mask->dims()), dims_to_string(xd));
  const float scale = ctx.attrs().f("scale", 1.f);
  const int64_t len = xd.back(), rows = len == 0 ? 0 : x.numel() / len;
  Tensor& y = ctx.output(0);
  return cpu::dispatch_floating(ctx, x.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    using C = compute_t<T>;
    const T* xp = x.data<T>();
    const T* mp = mask ? mask->data<T>() : nullptr;
    T* yp = y.data<T>();
    std::vector<C> z(static_cast<size_t>(len));
    for (int64_t r = 0; r < rows; ++r) {
      // The mask offset of this row: its coordinates over x's leading dims times the strides.
      int64_t moff = 0;
      for (int64_t rem = r, d = static_cast<int64_t>(xd.size()) - 2; d >= 0; --d) {
        moff += (rem % xd[static_cast<size_t>(d)]) * (*ms)[static_cast<size_t>(d)];
        rem /= xd[static_cast<size_t>(d)];
      }
      C mx = -std::numeric_limits<C>::infinity();
      for (int64_t k = 0; k < len; ++k) {
        C v = static_cast<C>(xp[r * len + k]) * static_cast<C>(scale);
        if (mp) v += static_cast<C>(mp[moff + k * ms->back()]);
        z[static_cast<size_t>(k)] = v;
        mx = std::max(mx, v);
      }
      C sum = 0;
      for (int64_t k = 0; k < len; ++k) sum += std::exp(z[static_cast<size_t>(k)] - mx);
      for (int64_t k = 0; k < len; ++k) yp[r * len + k] = static_cast<T>(std::exp(z[static_cast<size_t>(k)] - mx) / sum);
    }
  });
}

}  // namespace
}  // namespace kiln

KILN_REGISTER_CPU_KERNEL_DOMAIN("kiln", "MaskedSoftmax", kiln::masked_softmax_kernel);
