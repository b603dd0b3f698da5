// kiln.Attention on the CPU (the reference the CUDA layer is tested against): per query row, the
// scores, a max-subtracted softmax and the weighted sum of V, in float (double for float64).
#include <cmath>
#include <limits>
#include <vector>

#include "backends/cpu/element_types.hpp"
#include "backends/cpu/float_dispatch.hpp"
#include "ops/attention.hpp"

namespace kiln {
namespace {

Status attention_kernel(KernelContext& ctx) {
  KILN_ASSIGN_OR_RETURN(AttentionGeometry g, attention_geometry(ctx.node()));
  const Tensor &q = ctx.input(0), &k = ctx.input(1), &v = ctx.input(2);
  const Tensor* mask = ctx.has_input(3) ? &ctx.input(3) : nullptr;
  if (!attention_view_fits(g.q, {g.batch, g.heads, g.sq, g.d}, q.numel()) ||
      !attention_view_fits(g.k, {g.batch, g.heads, g.sk, g.d}, k.numel()) ||
      !attention_view_fits(g.v, {g.batch, g.heads, g.sk, g.dv}, v.numel()))
    return ctx.error("a view of Q, K or V reaches past its tensor");
  std::array<int64_t, 4> ms{};
  if (mask) {
    auto s = attention_mask_strides(g, mask->dims());
    if (!s) return ctx.error("mask {} does not broadcast to [B,H,Sq,Sk]", dims_to_string(mask->dims()));
    ms = *s;
  }
  if (mask && mask->dtype() != (g.mask_fill ? DType::kBool : q.dtype()))
    return ctx.error("mask dtype {} does not fit mask_fill", dtype_name(mask->dtype()));
  Tensor& y = ctx.output(0);
  return cpu::dispatch_floating(ctx, q.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    using C = compute_t<T>;
    const T *qp = q.data<T>(), *kp = k.data<T>(), *vp = v.data<T>();
    const T* mp = mask && !g.mask_fill ? mask->data<T>() : nullptr;
    const bool* mb = mask && g.mask_fill ? mask->data<bool>() : nullptr;
    T* yp = y.data<T>();
    std::vector<C> s(static_cast<size_t>(g.sk)), acc(static_cast<size_t>(g.dv));
    for (int64_t b = 0; b < g.batch; ++b)
      for (int64_t h = 0; h < g.heads; ++h)
        for (int64_t i = 0; i < g.sq; ++i) {
          const T* qrow = qp + g.q.offset + b * g.q.stride[0] + h * g.q.stride[1] + i * g.q.stride[2];
          C mx = -std::numeric_limits<C>::infinity();
          for (int64_t j = 0; j < g.sk; ++j) {
            const T* krow = kp + g.k.offset + b * g.k.stride[0] + h * g.k.stride[1] + j * g.k.stride[2];
            C dot = 0;
            for (int64_t c = 0; c < g.d; ++c)
              dot += static_cast<C>(qrow[c * g.q.stride[3]]) * static_cast<C>(krow[c * g.k.stride[3]]);
            C z = dot * static_cast<C>(g.scale);
            const int64_t mi = b * ms[0] + h * ms[1] + i * ms[2] + j * ms[3];
            if (mp) z += static_cast<C>(mp[mi]);
            if (mb && mb[mi]) z = static_cast<C>(*g.mask_fill);
            s[static_cast<size_t>(j)] = z;
            mx = std::max(mx, z);
          }
          std::fill(acc.begin(), acc.end(), C(0));
          C sum = 0;
          if (mx != -std::numeric_limits<C>::infinity()) {
            for (int64_t j = 0; j < g.sk; ++j) {
              C p = std::exp(s[static_cast<size_t>(j)] - mx);
              sum += p;
              const T* vrow = vp + g.v.offset + b * g.v.stride[0] + h * g.v.stride[1] + j * g.v.stride[2];
              for (int64_t c = 0; c < g.dv; ++c) acc[static_cast<size_t>(c)] += p * static_cast<C>(vrow[c * g.v.stride[3]]);
            }
          }
          // A row of -inf scores is NaN in softmax (0/0); HF's guard (nan_to_zero) makes it 0.
          const C inv = sum > 0 ? C(1) / sum : (g.nan_to_zero ? C(0) : std::numeric_limits<C>::quiet_NaN());
          T* yrow = yp + b * g.out.stride[0] + h * g.out.stride[1] + i * g.out.stride[2];
          for (int64_t c = 0; c < g.dv; ++c) yrow[c * g.out.stride[3]] = static_cast<T>(acc[static_cast<size_t>(c)] * inv);
        }
  });
}

}  // namespace
}  // namespace kiln

KILN_REGISTER_CPU_KERNEL_DOMAIN("kiln", "Attention", kiln::attention_kernel);
