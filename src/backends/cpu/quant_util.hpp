// Helpers of the quantized CPU kernels: rounding, saturation, scale/zero-point layouts and the
// integer GEMM that accumulates like int32 hardware.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "ir/tensor.hpp"

namespace kiln::cpu {

// Round to nearest, ties to even (ONNX's rounding), whatever the FP environment's mode is.
inline double round_half_even(double v) {
  double r = std::round(v);  // ties away from zero
  if (std::fabs(v - r) == 0.5) r = 2.0 * std::round(v / 2.0);
  return r;
}

// saturate(round(v) + zero_point) in Q's range. NaN quantizes to the zero point (a real 0).
template <typename Q>
Q quantize_value(double v, int64_t zero_point) {
  double q = (std::isnan(v) ? 0.0 : round_half_even(v)) + static_cast<double>(zero_point);
  q = std::clamp(q, static_cast<double>(std::numeric_limits<Q>::lowest()),
                 static_cast<double>(std::numeric_limits<Q>::max()));
  return static_cast<Q>(q);
}

// Which scale / zero-point element each element of x uses (QuantizeLinear, DequantizeLinear):
// x is walked as [outer, axis_len, inner], and element (o, k, i) reads
// param[o * outer_stride + (k / block) * axis_stride + i * inner_stride].
struct QdqLayout {
  int64_t outer = 1, axis_len = 1, inner = 1;
  int64_t outer_stride = 0, block = 1, axis_stride = 0, inner_stride = 0;
  int64_t index(int64_t o, int64_t k, int64_t i) const {
    return o * outer_stride + (k / block) * axis_stride + i * inner_stride;
  }
};

// The layout of `param` (already checked by shape inference): one element (per tensor), 1-D
// (per axis) or, with block_size > 0, blocked along `axis` (normalized by the caller when needed).
inline QdqLayout qdq_layout(const Dims& x, const Dims& param, int64_t axis, int64_t block_size) {
  QdqLayout l;
  const int64_t rank = static_cast<int64_t>(x.size());
  if (block_size == 0 && dims_numel(param) == 1 && param.size() <= 1) {
    l.axis_len = dims_numel(x);  // per tensor: every stride 0
    return l;
  }
  if (axis < 0) axis += rank;
  const size_t a = static_cast<size_t>(axis);
  for (size_t i = 0; i < a; ++i) l.outer *= x[i];
  l.axis_len = x[a];
  for (size_t i = a + 1; i < x.size(); ++i) l.inner *= x[i];
  if (block_size == 0) {
    l.axis_stride = 1;
  } else {
    l.block = block_size;
    l.axis_stride = l.inner;
    l.inner_stride = 1;
    l.outer_stride = param[a] * l.inner;
  }
  return l;
}

// Zero-point values as int64 (an absent zero point is one 0).
inline std::vector<int64_t> zero_points(const Tensor* zp) {
  if (!zp) return {0};
  auto v = zp->to_int64_vector();
  return v ? *v : std::vector<int64_t>{0};
}

// y[m x n] (int32) = a[m x k] * b[k x n] (row-major int32, leading dims k and n). The sums are
// exact in int64 and then wrap to int32: the result of 32-bit accumulation that overflows.
inline void gemm_int32(int64_t m, int64_t n, int64_t k, const int32_t* a, const int32_t* b, int32_t* y) {
  std::vector<int64_t> row(static_cast<size_t>(n));
  for (int64_t i = 0; i < m; ++i) {
    std::fill(row.begin(), row.end(), 0);
    for (int64_t p = 0; p < k; ++p) {
      const int64_t av = a[i * k + p];
      if (av == 0) continue;
      const int32_t* brow = b + p * n;
      for (int64_t j = 0; j < n; ++j) row[static_cast<size_t>(j)] += av * brow[j];
    }
    for (int64_t j = 0; j < n; ++j) y[i * n + j] = static_cast<int32_t>(row[static_cast<size_t>(j)]);
  }
}

}  // namespace kiln::cpu
