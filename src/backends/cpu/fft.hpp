// A complex discrete Fourier transform of one length, for DFT and STFT: radix-2 for powers of
// two, a direct sum with a twiddle table for short lengths, Bluestein's chirp-z (through a
// power-of-two FFT) for other lengths, so every length costs O(n log n). Computed in double.
#pragma once

#include <complex>
#include <cstdint>
#include <memory>
#include <vector>

namespace kiln::cpu {

using cdouble = std::complex<double>;

class FftPlan {
 public:
  explicit FftPlan(int64_t n);
  ~FftPlan();
  FftPlan(FftPlan&&) noexcept;
  FftPlan& operator=(FftPlan&&) noexcept;

  int64_t size() const { return n_; }
  // In place over n values: forward y[k] = sum_j x[j] e^{-2 pi i jk/n}; inverse uses e^{+...}
  // and is not scaled (the caller divides by n). Const and thread-safe.
  void run(cdouble* data, bool inverse) const;

 private:
  void forward(cdouble* data) const;

  int64_t n_ = 0;
  std::vector<cdouble> twiddles_;  // e^{-2 pi i k / n}: k < n/2 (radix-2) or k < n (direct)
  // Bluestein: chirp e^{-pi i k^2 / n} and the transformed filter, over a power-of-two plan.
  std::vector<cdouble> chirp_, filter_;
  std::unique_ptr<FftPlan> inner_;
};

}  // namespace kiln::cpu
