#include "backends/cpu/fft.hpp"

#include <cmath>
#include <numbers>
#include <utility>

namespace kiln::cpu {
namespace {

constexpr int64_t kDirectMax = 32;  // below this a direct sum is as fast as Bluestein

bool is_pow2(int64_t n) { return n > 0 && (n & (n - 1)) == 0; }

// e^{-2 pi i num / den}; the angle is reduced first so large products stay accurate.
cdouble unit_root(int64_t num, int64_t den) {
  const double a = -2.0 * std::numbers::pi * static_cast<double>(num % den) / static_cast<double>(den);
  return {std::cos(a), std::sin(a)};
}

}  // namespace

FftPlan::FftPlan(int64_t n) : n_(n) {
  if (n <= 1) return;
  if (is_pow2(n)) {
    twiddles_.resize(static_cast<size_t>(n / 2));
    for (int64_t k = 0; k < n / 2; ++k) twiddles_[static_cast<size_t>(k)] = unit_root(k, n);
  } else if (n <= kDirectMax) {
    twiddles_.resize(static_cast<size_t>(n));
    for (int64_t k = 0; k < n; ++k) twiddles_[static_cast<size_t>(k)] = unit_root(k, n);
  } else {
    // x_k conv: X_k = c_k sum_j (x_j c_j) conj(c_{k-j}), with c_k = e^{-pi i k^2/n}; k^2 mod 2n
    // keeps the angle exact for long signals.
    int64_t m = 1;
    while (m < 2 * n - 1) m *= 2;
    chirp_.resize(static_cast<size_t>(n));
    for (int64_t k = 0; k < n; ++k) chirp_[static_cast<size_t>(k)] = unit_root((k * k) % (2 * n), 2 * n);
    filter_.assign(static_cast<size_t>(m), cdouble(0));
    filter_[0] = std::conj(chirp_[0]);
    for (int64_t k = 1; k < n; ++k)
      filter_[static_cast<size_t>(k)] = filter_[static_cast<size_t>(m - k)] = std::conj(chirp_[static_cast<size_t>(k)]);
    inner_ = std::make_unique<FftPlan>(m);
    inner_->forward(filter_.data());
  }
}

FftPlan::~FftPlan() = default;
FftPlan::FftPlan(FftPlan&&) noexcept = default;
FftPlan& FftPlan::operator=(FftPlan&&) noexcept = default;

void FftPlan::run(cdouble* data, bool inverse) const {
  if (n_ <= 1) return;
  // The inverse transform is the conjugate of the forward transform of the conjugate.
  if (inverse)
    for (int64_t i = 0; i < n_; ++i) data[i] = std::conj(data[i]);
  forward(data);
  if (inverse)
    for (int64_t i = 0; i < n_; ++i) data[i] = std::conj(data[i]);
}

void FftPlan::forward(cdouble* data) const {
  const int64_t n = n_;
  if (n <= 1) return;
  if (is_pow2(n)) {
    for (int64_t i = 1, j = 0; i < n; ++i) {  // bit-reversal permutation
      int64_t bit = n >> 1;
      for (; j & bit; bit >>= 1) j ^= bit;
      j ^= bit;
      if (i < j) std::swap(data[i], data[j]);
    }
    for (int64_t len = 2; len <= n; len <<= 1) {
      const int64_t half = len / 2, step = n / len;
      for (int64_t start = 0; start < n; start += len)
        for (int64_t k = 0; k < half; ++k) {
          const cdouble t = twiddles_[static_cast<size_t>(k * step)] * data[start + k + half];
          data[start + k + half] = data[start + k] - t;
          data[start + k] += t;
        }
    }
  } else if (n <= kDirectMax) {
    std::vector<cdouble> out(static_cast<size_t>(n));
    for (int64_t k = 0; k < n; ++k) {
      cdouble acc = 0;
      for (int64_t j = 0; j < n; ++j) acc += data[j] * twiddles_[static_cast<size_t>((j * k) % n)];
      out[static_cast<size_t>(k)] = acc;
    }
    for (int64_t k = 0; k < n; ++k) data[k] = out[static_cast<size_t>(k)];
  } else {
    const int64_t m = inner_->size();
    std::vector<cdouble> a(static_cast<size_t>(m), cdouble(0));
    for (int64_t k = 0; k < n; ++k) a[static_cast<size_t>(k)] = data[k] * chirp_[static_cast<size_t>(k)];
    inner_->forward(a.data());
    for (int64_t k = 0; k < m; ++k) a[static_cast<size_t>(k)] *= filter_[static_cast<size_t>(k)];
    inner_->run(a.data(), /*inverse=*/true);
    const double scale = 1.0 / static_cast<double>(m);
    for (int64_t k = 0; k < n; ++k) data[k] = a[static_cast<size_t>(k)] * chirp_[static_cast<size_t>(k)] * scale;
  }
}

}  // namespace kiln::cpu
