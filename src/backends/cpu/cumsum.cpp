// CPU kernel of CumSum. float16/bfloat16 accumulate in float; integers wrap.
#include "backends/cpu/accumulate.hpp"
#include "ops/op_registry.hpp"

namespace kiln::cpu {
namespace {

template <typename T>
void cumsum_typed(const Tensor& x, Tensor& y, int64_t outer, int64_t n, int64_t inner, bool exclusive,
                  bool reverse) {
  using A = acc_t<T>;
  const T* in = x.data<T>();
  T* out = y.data<T>();
  for (int64_t o = 0; o < outer; ++o) {
    for (int64_t i = 0; i < inner; ++i) {
      const int64_t base = o * n * inner + i;
      A acc(0);
      for (int64_t s = 0; s < n; ++s) {
        const int64_t at = base + (reverse ? n - 1 - s : s) * inner;
        const A v = load_acc<A>(in[at]);
        if (!exclusive) acc = acc_add(acc, v);
        out[at] = store_as<T>(acc);
        if (exclusive) acc = acc_add(acc, v);
      }
    }
  }
}

Status cumsum_kernel(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  const int64_t rank = x.rank();
  auto axis_v = ctx.input(1).to_int64_vector();
  if (!axis_v || axis_v->size() != 1) return ctx.error("axis must be one integer");
  int64_t axis = (*axis_v)[0];
  if (axis < -rank || axis >= rank) return ctx.error("axis {} is out of range for rank {}", axis, rank);
  if (axis < 0) axis += rank;
  const auto [outer, inner] = dims_outer_inner(x.dims(), static_cast<size_t>(axis));
  const int64_t n = x.dim(static_cast<int>(axis));
  const bool exclusive = ctx.attrs().i("exclusive", 0) != 0;
  const bool reverse = ctx.attrs().i("reverse", 0) != 0;
  Tensor& y = ctx.output(0);
  bool supported = true;
  bool ok = dispatch_dtype(x.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    if constexpr (std::is_same_v<T, bool>) supported = false;
    else cumsum_typed<T>(x, y, outer, n, inner, exclusive, reverse);
  });
  return ok && supported ? Status::Ok() : ctx.unsupported_dtype(x.dtype(), 0);
}

}  // namespace
}  // namespace kiln::cpu

KILN_REGISTER_CPU_KERNEL("CumSum", kiln::cpu::cumsum_kernel);
