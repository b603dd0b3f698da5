// CPU kernel of TopK. Equal values keep the lower index first (the spec's tie-break); NaN counts
// as larger than every number, as in numpy's sort. The result is always sorted (sorted=0 leaves
// the order to the implementation).
#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "ops/op_registry.hpp"

namespace kiln::cpu {
namespace {

// Strict "a comes before b" for the largest (kLargest) or smallest elements first.
template <bool kLargest, typename C>
bool before(C a, int64_t ia, C b, int64_t ib) {
  if constexpr (std::is_floating_point_v<C>) {
    const bool an = std::isnan(a), bn = std::isnan(b);
    if (an || bn) {
      if (an && bn) return ia < ib;
      return kLargest ? an : bn;
    }
  }
  if (a != b) return kLargest ? a > b : a < b;
  return ia < ib;
}

template <typename T, bool kLargest>
void topk_typed(const Tensor& x, int64_t outer, int64_t n, int64_t inner, int64_t k, Tensor& values,
                Tensor& indices) {
  using C = compute_t<T>;
  const T* in = x.data<T>();
  T* vout = values.data<T>();
  int64_t* iout = indices.data<int64_t>();
  std::vector<int64_t> order(static_cast<size_t>(n));
  std::vector<C> slice(static_cast<size_t>(n));
  for (int64_t o = 0; o < outer; ++o) {
    for (int64_t i = 0; i < inner; ++i) {
      for (int64_t j = 0; j < n; ++j) slice[static_cast<size_t>(j)] = static_cast<C>(in[(o * n + j) * inner + i]);
      std::iota(order.begin(), order.end(), int64_t{0});
      std::partial_sort(order.begin(), order.begin() + k, order.end(), [&](int64_t a, int64_t b) {
        return before<kLargest>(slice[static_cast<size_t>(a)], a, slice[static_cast<size_t>(b)], b);
      });
      for (int64_t j = 0; j < k; ++j) {
        const int64_t src = order[static_cast<size_t>(j)];
        vout[(o * k + j) * inner + i] = in[(o * n + src) * inner + i];
        iout[(o * k + j) * inner + i] = src;
      }
    }
  }
}

Status topk_kernel(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  const int64_t rank = x.rank();
  int64_t axis = ctx.attrs().i("axis", -1);
  if (axis < -rank || axis >= rank) return ctx.error("axis {} is out of range for rank {}", axis, rank);
  if (axis < 0) axis += rank;
  auto kv = ctx.input(1).to_int64_vector();
  if (!kv || kv->size() != 1) return ctx.error("K must be one int64 value");
  const int64_t k = (*kv)[0];
  const int64_t n = x.dim(static_cast<int>(axis));
  if (k < 0 || k > n) return ctx.error("K = {} is out of range for dim {} of size {}", k, axis, n);
  const auto [outer, inner] = dims_outer_inner(x.dims(), static_cast<size_t>(axis));
  const bool largest = ctx.attrs().i("largest", 1) != 0;
  if (x.dtype() == DType::kBool) return ctx.unsupported_dtype(x.dtype(), 0);
  Tensor& values = ctx.output(0);
  Tensor& indices = ctx.output(1);
  bool ok = dispatch_dtype(x.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    if (largest) topk_typed<T, true>(x, outer, n, inner, k, values, indices);
    else topk_typed<T, false>(x, outer, n, inner, k, values, indices);
  });
  return ok ? Status::Ok() : ctx.unsupported_dtype(x.dtype(), 0);
}

}  // namespace
}  // namespace kiln::cpu

KILN_REGISTER_CPU_KERNEL("TopK", kiln::cpu::topk_kernel);
