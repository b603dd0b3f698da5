// Building blocks of the CPU recurrent kernels (RNN, GRU, LSTM): GEMM, activation functions, and a
// node's inputs in the compute type with the index arithmetic of both layouts.
#pragma once

#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <optional>
#include <type_traits>
#include <vector>

#include "backends/cpu/element_types.hpp"
#include "ir/tensor.hpp"
#include "ops/rnn_attrs.hpp"

namespace kiln::cpu::rnn {

// c[m x n] (leading dim ldc) += a[m x k] * b[n x k]^T, row-major. Callers keep every size below
// INT_MAX (checked by the kernel) since cblas takes int.
template <typename C>
void gemm_nt(int64_t m, int64_t n, int64_t k, const C* a, int64_t lda, const C* b, int64_t ldb, C* c,
             int64_t ldc) {
  if (m == 0 || n == 0 || k == 0) return;
  const auto M = static_cast<int>(m), N = static_cast<int>(n), K = static_cast<int>(k);
  if constexpr (std::is_same_v<C, float>)
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, N, K, 1.f, a, static_cast<int>(lda), b,
                static_cast<int>(ldb), 1.f, c, static_cast<int>(ldc));
  else
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, N, K, 1.0, a, static_cast<int>(lda), b,
                static_cast<int>(ldb), 1.0, c, static_cast<int>(ldc));
}

// Bounds x to [-clip, clip] (the `clip` attribute acts on the inputs of the gate activations).
template <typename C>
void clip_values(const std::optional<float>& clip, C* x, int64_t n) {
  if (!clip) return;
  const C hi = static_cast<C>(*clip);
  for (int64_t i = 0; i < n; ++i) x[i] = std::clamp(x[i], -hi, hi);
}

// Applies the activation in place to n values (the switch is outside the loops).
template <typename C>
void activate(const RnnActivation& f, C* x, int64_t n) {
  const C alpha = static_cast<C>(f.alpha), beta = static_cast<C>(f.beta);
  const C zero = 0, one = 1;
  auto each = [&](auto fn) {
    for (int64_t i = 0; i < n; ++i) x[i] = fn(x[i]);
  };
  switch (f.kind) {
    case RnnActKind::kRelu: each([&](C v) { return v > zero ? v : zero; }); break;
    case RnnActKind::kTanh: each([](C v) { return std::tanh(v); }); break;
    case RnnActKind::kSigmoid: each([&](C v) { return one / (one + std::exp(-v)); }); break;
    case RnnActKind::kAffine: each([&](C v) { return alpha * v + beta; }); break;
    case RnnActKind::kLeakyRelu: each([&](C v) { return v >= zero ? v : alpha * v; }); break;
    case RnnActKind::kThresholdedRelu: each([&](C v) { return v >= alpha ? v : zero; }); break;
    case RnnActKind::kScaledTanh: each([&](C v) { return alpha * std::tanh(beta * v); }); break;
    case RnnActKind::kHardSigmoid: each([&](C v) { return std::clamp(alpha * v + beta, zero, one); }); break;
    case RnnActKind::kElu: each([&](C v) { return v >= zero ? v : alpha * (std::exp(v) - one); }); break;
    case RnnActKind::kSoftsign: each([&](C v) { return v / (one + std::abs(v)); }); break;
    // log(1 + e^v) without overflow for large v.
    case RnnActKind::kSoftplus:
      each([&](C v) { return std::max(v, zero) + std::log1p(std::exp(-std::abs(v))); });
      break;
  }
}

// A tensor's elements as compute type C: the tensor's own memory when it already is C, else a
// converted copy kept in `buf`.
template <typename C, typename T>
const C* compute_view(const Tensor& t, std::vector<C>& buf) {
  if constexpr (std::is_same_v<T, C>) {
    return t.data<C>();
  } else {
    buf.resize(static_cast<size_t>(t.numel()));
    const T* p = t.data<T>();
    for (size_t i = 0; i < buf.size(); ++i) buf[i] = load(p[i]);
    return buf.data();
  }
}

// The sizes of one node and where elements live in either layout.
struct RnnDims {
  int64_t seq = 0, batch = 0, input = 0, hidden = 0, dirs = 1, gates = 1, layout = 0;

  // Row of X (and of the input projection) for time t of batch entry b.
  int64_t x_row(int64_t t, int64_t b) const { return layout == 0 ? t * batch + b : b * seq + t; }
  // Offset of the hidden vector of (direction d, batch b) in initial_h/initial_c/Y_h/Y_c.
  int64_t state_offset(int64_t d, int64_t b) const {
    return (layout == 0 ? d * batch + b : b * dirs + d) * hidden;
  }
  // Offset of the hidden vector of (time t, direction d, batch b) in Y.
  int64_t y_offset(int64_t t, int64_t d, int64_t b) const {
    return (layout == 0 ? (t * dirs + d) * batch + b : (b * seq + t) * dirs + d) * hidden;
  }
};

}  // namespace kiln::cpu::rnn
