// CPU kernel of LpNormalization. A zero vector stays zero (its norm is treated as 1) rather than
// becoming NaN, as ONNX Runtime does. Norms accumulate in acc_t (float for float16).
#include <cmath>

#include "backends/cpu/accumulate.hpp"
#include "ops/op_registry.hpp"

namespace kiln::cpu {
namespace {

template <typename T>
void lp_normalize(const Tensor& x, Tensor& y, int64_t outer, int64_t n, int64_t inner, bool l1) {
  using A = acc_t<T>;
  const T* in = x.data<T>();
  T* out = y.data<T>();
  for (int64_t o = 0; o < outer; ++o) {
    for (int64_t i = 0; i < inner; ++i) {
      const int64_t base = o * n * inner + i;
      A norm(0);
      for (int64_t k = 0; k < n; ++k) {
        const A v = static_cast<A>(in[base + k * inner]);
        norm += l1 ? std::abs(v) : v * v;
      }
      if (!l1) norm = std::sqrt(norm);
      if (norm == A(0)) norm = A(1);
      for (int64_t k = 0; k < n; ++k) out[base + k * inner] = store_as<T>(static_cast<A>(in[base + k * inner]) / norm);
    }
  }
}

Status lp_normalization_kernel(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  const int64_t rank = x.rank();
  int64_t axis = ctx.attrs().i("axis", -1);
  if (axis < -rank || axis >= rank) return ctx.error("axis {} is out of range for rank {}", axis, rank);
  if (axis < 0) axis += rank;
  const int64_t p = ctx.attrs().i("p", 2);
  if (p != 1 && p != 2) return ctx.error("p must be 1 or 2, got {}", p);
  if (!is_floating(x.dtype())) return ctx.unsupported_dtype(x.dtype(), 0);
  const auto [outer, inner] = dims_outer_inner(x.dims(), static_cast<size_t>(axis));
  const int64_t n = x.dim(static_cast<int>(axis));
  Tensor& y = ctx.output(0);
  dispatch_dtype(x.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    if constexpr (is_float_like_v<T>) lp_normalize<T>(x, y, outer, n, inner, p == 1);
  });
  return Status::Ok();
}

}  // namespace
}  // namespace kiln::cpu

KILN_REGISTER_CPU_KERNEL("LpNormalization", kiln::cpu::lp_normalization_kernel);
