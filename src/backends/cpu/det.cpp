// CPU kernel of Det: LU decomposition with partial pivoting, computed in double.
#include <cmath>
#include <utility>
#include <vector>

#include "backends/cpu/accumulate.hpp"
#include "ops/op_registry.hpp"

namespace kiln::cpu {
namespace {

// Determinant of the n x n row-major matrix `a` (destroyed).
double lu_det(std::vector<double>& a, int64_t n) {
  double det = 1;
  for (int64_t c = 0; c < n; ++c) {
    int64_t piv = c;
    for (int64_t r = c + 1; r < n; ++r)
      if (std::abs(a[static_cast<size_t>(r * n + c)]) > std::abs(a[static_cast<size_t>(piv * n + c)])) piv = r;
    const double p = a[static_cast<size_t>(piv * n + c)];
    if (p == 0) return 0.0;  // a whole column of zeros below the diagonal: singular
    if (piv != c) {
      for (int64_t k = 0; k < n; ++k) std::swap(a[static_cast<size_t>(c * n + k)], a[static_cast<size_t>(piv * n + k)]);
      det = -det;
    }
    det *= p;
    for (int64_t r = c + 1; r < n; ++r) {
      const double f = a[static_cast<size_t>(r * n + c)] / p;
      for (int64_t k = c + 1; k < n; ++k) a[static_cast<size_t>(r * n + k)] -= f * a[static_cast<size_t>(c * n + k)];
    }
  }
  return det;
}

Status det_kernel(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  const DType dt = x.dtype();
  if (!is_floating(dt)) return ctx.unsupported_dtype(dt, 0);
  const int64_t n = x.dim(x.rank() - 1);
  const int64_t nn = n * n;
  Tensor& y = ctx.output(0);
  std::vector<double> a(static_cast<size_t>(nn));
  dispatch_dtype(dt, [&](auto tag) {
    using T = typename decltype(tag)::type;
    if constexpr (is_float_like_v<T>) {
      const T* in = x.data<T>();
      T* out = y.data<T>();
      for (int64_t b = 0; b < y.numel(); ++b) {
        for (int64_t i = 0; i < nn; ++i) a[static_cast<size_t>(i)] = static_cast<double>(static_cast<compute_t<T>>(in[b * nn + i]));
        out[b] = store_as<T>(lu_det(a, n));
      }
    }
  });
  return Status::Ok();
}

}  // namespace
}  // namespace kiln::cpu

KILN_REGISTER_CPU_KERNEL("Det", kiln::cpu::det_kernel);
