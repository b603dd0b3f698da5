// CPU kernels of ArgMax/ArgMin: the index of the first (or, with select_last_index, the last)
// extreme element along one axis. NaN counts as the extreme value, as in numpy.
#include <cmath>

#include "backends/cpu/accumulate.hpp"
#include "ops/op_registry.hpp"

namespace kiln::cpu {
namespace {

// > 0 when a is more extreme than b (larger for ArgMax, smaller for ArgMin), 0 when equal.
template <bool kMax, typename C>
int compare(C a, C b) {
  if constexpr (std::is_floating_point_v<C>) {
    const bool an = std::isnan(a), bn = std::isnan(b);
    if (an || bn) return static_cast<int>(an) - static_cast<int>(bn);
  }
  return kMax ? (a > b) - (a < b) : (a < b) - (a > b);
}

template <bool kMax>
Status arg_reduce_kernel(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  const int64_t rank = x.rank();
  int64_t axis = ctx.attrs().i("axis", 0);
  if (axis < -rank || axis >= rank) return ctx.error("axis {} is out of range for rank {}", axis, rank);
  if (axis < 0) axis += rank;
  const bool last = ctx.attrs().i("select_last_index", 0) != 0;
  const auto [outer, inner] = dims_outer_inner(x.dims(), static_cast<size_t>(axis));
  const int64_t n = x.dim(static_cast<int>(axis));
  Tensor& y = ctx.output(0);
  if (n == 0 && y.numel() > 0) return ctx.error("cannot take the arg-extreme over axis {} of size 0", axis);
  if (x.dtype() == DType::kBool) return ctx.unsupported_dtype(x.dtype(), 0);
  int64_t* out = y.data<int64_t>();
  bool ok = dispatch_dtype(x.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    using C = compute_t<T>;
    const T* in = x.data<T>();
    for (int64_t o = 0; o < outer; ++o) {
      for (int64_t i = 0; i < inner; ++i) {
        const T* p = in + o * n * inner + i;
        int64_t best = 0;
        C best_v = static_cast<C>(p[0]);
        for (int64_t k = 1; k < n; ++k) {
          const int c = compare<kMax>(static_cast<C>(p[k * inner]), best_v);
          if (c > 0 || (last && c == 0)) {
            best = k;
            best_v = static_cast<C>(p[k * inner]);
          }
        }
        out[o * inner + i] = best;
      }
    }
  });
  return ok ? Status::Ok() : ctx.unsupported_dtype(x.dtype(), 0);
}

}  // namespace
}  // namespace kiln::cpu

KILN_REGISTER_CPU_KERNEL("ArgMax", kiln::cpu::arg_reduce_kernel<true>);
KILN_REGISTER_CPU_KERNEL("ArgMin", kiln::cpu::arg_reduce_kernel<false>);
