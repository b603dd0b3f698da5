#include "compare_metrics.hpp"

#include <cmath>
#include <limits>

#include "util/error.hpp"

namespace kiln::cli {

namespace {

// Index of the first largest finite value in [p, p + n) (-1 when none is finite).
int64_t argmax(const double* p, int64_t n) {
  int64_t best = -1;
  for (int64_t i = 0; i < n; ++i)
    if (std::isfinite(p[i]) && (best < 0 || p[i] > p[best])) best = i;
  return best;
}

}  // namespace

Expected<CompareMetrics> compare_tensors(const Tensor& ref, const Tensor& test) {
  if (ref.dims() != test.dims())
    return invalid_argument("shapes differ: {} against the reference {}", test.describe(), ref.describe());
  std::vector<double> a = ref.to_double_vector(), b = test.to_double_vector();
  CompareMetrics m;
  double diff2 = 0, ref2 = 0, test2 = 0, dot = 0, abs_sum = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    if (!std::isfinite(a[i]) || !std::isfinite(b[i])) {
      // Both NaN (or the same infinity) agree; anything else is a mismatch worth seeing.
      bool same = (std::isnan(a[i]) && std::isnan(b[i])) || a[i] == b[i];
      if (!same) ++m.nonfinite;
      continue;
    }
    double d = std::fabs(b[i] - a[i]);
    m.max_abs = std::max(m.max_abs, d);
    abs_sum += d;
    diff2 += d * d;
    ref2 += a[i] * a[i];
    test2 += b[i] * b[i];
    dot += a[i] * b[i];
    ++m.count;
  }
  if (m.count > 0) m.mean_abs = abs_sum / static_cast<double>(m.count);
  if (ref2 > 0) m.rel_l2 = std::sqrt(diff2) / std::sqrt(ref2);
  else m.rel_l2 = diff2 > 0 ? std::numeric_limits<double>::infinity() : 0.0;
  if (ref2 > 0 && test2 > 0) m.cosine = dot / (std::sqrt(ref2) * std::sqrt(test2));
  else m.cosine = (ref2 == 0 && test2 == 0) ? 1.0 : 0.0;
  if (m.nonfinite > 0) {
    // A NaN/Inf where the reference is finite (or the reverse) is an unbounded error.
    m.max_abs = m.mean_abs = m.rel_l2 = std::numeric_limits<double>::infinity();
    if (m.count == 0) m.cosine = 0;  // nothing finite agreed
  }

  if (is_floating(ref.dtype()) && ref.rank() >= 2) {
    int64_t cols = ref.dims().back();
    int64_t rows = cols > 0 ? ref.numel() / cols : 0;
    if (rows > 0) {
      int64_t same = 0;
      for (int64_t r = 0; r < rows; ++r)
        if (argmax(a.data() + r * cols, cols) == argmax(b.data() + r * cols, cols)) ++same;
      m.top1 = static_cast<double>(same) / static_cast<double>(rows);
    }
  }
  return m;
}

}  // namespace kiln::cli
