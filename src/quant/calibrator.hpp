// Calibrators: from the values a tensor took over the calibration set to its dynamic range (amax).
//
//   Histogram h;                       // of |x|, 2048 bins, range grows as batches arrive
//   h.add(batch.data<float>(), batch.numel());
//   float amax = choose_amax(h, *parse_calibration_algorithm("entropy"));
//
// minmax: the largest |x| seen. percentile=P: the P-th percentile of |x| (upper edge of the bin
// holding it). entropy: TensorRT's KL-divergence calibrator: the threshold whose 128-level
// quantized distribution loses the least information (minimal KL(P||Q)) against the histogram.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "util/error.hpp"

namespace kiln {

struct CalibrationAlgorithm {
  enum class Kind { kMinMax, kEntropy, kPercentile };
  Kind kind = Kind::kEntropy;
  double percentile = 99.99;  // for kPercentile, in (0, 100]
  std::string name() const;   // "minmax", "entropy", "percentile=99.99" (what the cache records)
};

// "minmax", "entropy", "percentile" (99.99) or "percentile=P" with 0 < P <= 100.
Expected<CalibrationAlgorithm> parse_calibration_algorithm(const std::string& text);

// A histogram of |x| over [0, bins * width). The first values fix the width (max / bins); a later
// value beyond the range doubles the width, merging bin pairs, until it fits: one pass over the
// data, exact counts, a resolution that is at worst half the final range's 2048 bins.
class Histogram {
 public:
  static constexpr int kBins = 2048;
  Histogram() : counts_(kBins, 0.0) {}

  void add(const float* x, int64_t n);
  double max_abs() const { return max_; }
  double bin_width() const { return width_; }
  double total() const { return total_; }
  const std::vector<double>& counts() const { return counts_; }

 private:
  std::vector<double> counts_;
  double width_ = 0;      // 0 until a non-zero value arrives
  double max_ = 0;
  double total_ = 0;
  double zeros_ = 0;      // exact zeros seen while width_ is 0 (bin 0 once it is known)
};

double minmax_amax(const Histogram& h);
double percentile_amax(const Histogram& h, double percentile);
double entropy_amax(const Histogram& h, int quantized_bins = 128);
double choose_amax(const Histogram& h, const CalibrationAlgorithm& algo);

}  // namespace kiln
