// Division of a non-negative 32-bit int by a divisor known before a kernel runs, as a multiply-high,
// an add and a shift (Granlund & Montgomery's round-up method): the kernels that map a flat index to
// (image, row, column) once per thread would otherwise spend ~25 instructions on each `/`.
// Usable in host and device code; `FastDiv::of(d)` is computed on the host and passed by value.
#pragma once

#include <cstdint>

#if defined(__CUDACC__)
#define KILN_HD __host__ __device__ __forceinline__
#else
#define KILN_HD inline
#endif

namespace kiln {

struct FastDiv {
  uint32_t d = 1, mul = 0, shift = 0;

  // d >= 1. mul = floor(2^32 * (2^shift - d) / d) + 1 with 2^shift the least power of two >= d,
  // so n / d == (mulhi(n, mul) + n) >> shift for every n < 2^31 (the sum stays below 2^32).
  static FastDiv of(uint32_t d) {
    FastDiv f;
    f.d = d;
    while ((uint64_t{1} << f.shift) < d) ++f.shift;
    f.mul = static_cast<uint32_t>(((uint64_t{1} << 32) * ((uint64_t{1} << f.shift) - d)) / d + 1);
    return f;
  }

  // n / d for 0 <= n < 2^31.
  KILN_HD uint32_t div(uint32_t n) const {
#if defined(__CUDA_ARCH__)
    const uint32_t hi = __umulhi(n, mul);
#else
    const uint32_t hi = static_cast<uint32_t>((static_cast<uint64_t>(n) * mul) >> 32);
#endif
    return (hi + n) >> shift;
  }
};

}  // namespace kiln

#undef KILN_HD
