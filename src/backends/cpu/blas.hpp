// Row-major GEMM for the CPU kernels: C = alpha * op(A) * op(B) + beta * C, with op = transpose when
// asked. float and double go to OpenBLAS; other types use a plain loop (integer MatMul/Gemm).
#pragma once

#include <algorithm>
#include <cstdint>

namespace kiln::cpu {

void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
          int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc);
void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, double alpha, const double* a,
          int64_t lda, const double* b, int64_t ldb, double beta, double* c, int64_t ldc);

// True when every size fits the 32-bit ints BLAS takes.
bool blas_sizes_ok(int64_t m, int64_t n, int64_t k);

template <typename T>
void gemm_naive(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, T alpha, const T* a, int64_t lda,
                const T* b, int64_t ldb, T beta, T* c, int64_t ldc) {
  for (int64_t i = 0; i < m; ++i) {
    T* crow = c + i * ldc;
    for (int64_t j = 0; j < n; ++j) crow[j] = beta == T(0) ? T(0) : static_cast<T>(beta * crow[j]);
    // i-p-j order keeps the inner loop contiguous in B and C when B is not transposed.
    for (int64_t p = 0; p < k; ++p) {
      T av = static_cast<T>(alpha * (trans_a ? a[p * lda + i] : a[i * lda + p]));
      if (av == T(0)) continue;
      if (!trans_b) {
        const T* brow = b + p * ldb;
        for (int64_t j = 0; j < n; ++j) crow[j] = static_cast<T>(crow[j] + av * brow[j]);
      } else {
        for (int64_t j = 0; j < n; ++j) crow[j] = static_cast<T>(crow[j] + av * b[j * ldb + p]);
      }
    }
  }
}

}  // namespace kiln::cpu
