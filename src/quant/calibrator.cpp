#include "quant/calibrator.hpp"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <vector>

namespace kiln {

std::string CalibrationAlgorithm::name() const {
  switch (kind) {
    case Kind::kMinMax: return "minmax";
    case Kind::kEntropy: return "entropy";
    case Kind::kPercentile: return fmt::format("percentile={}", percentile);
  }
  return "?";
}

Expected<CalibrationAlgorithm> parse_calibration_algorithm(const std::string& text) {
  CalibrationAlgorithm a;
  if (text == "minmax") {
    a.kind = CalibrationAlgorithm::Kind::kMinMax;
    return a;
  }
  if (text == "entropy") return a;
  if (text == "percentile") {
    a.kind = CalibrationAlgorithm::Kind::kPercentile;
    return a;
  }
  if (text.rfind("percentile=", 0) == 0) {
    const std::string p = text.substr(11);
    char* end = nullptr;
    double v = std::strtod(p.c_str(), &end);
    if (p.empty() || *end != '\0' || !(v > 0 && v <= 100))
      return invalid_argument("--calib-algo {}: the percentile must be a number in (0, 100], e.g. percentile=99.99",
                              text);
    a.kind = CalibrationAlgorithm::Kind::kPercentile;
    a.percentile = v;
    return a;
  }
  return invalid_argument("unknown calibration algorithm '{}' (choose minmax, entropy or percentile=P)", text);
}

void Histogram::add(const float* x, int64_t n) {
  double batch_max = 0;
  for (int64_t i = 0; i < n; ++i) {
    double a = std::fabs(static_cast<double>(x[i]));
    if (std::isfinite(a)) batch_max = std::max(batch_max, a);  // NaN/Inf say nothing of the range
  }
  if (batch_max > 0 && width_ == 0) {
    width_ = batch_max / kBins;
    counts_[0] += zeros_;
    zeros_ = 0;
  }
  // Grow by doubling the bin width: bin i of the new histogram holds old bins 2i and 2i+1.
  while (width_ > 0 && batch_max > width_ * kBins * (1 + 1e-9)) {
    for (int i = 0; i < kBins / 2; ++i) counts_[i] = counts_[2 * i] + counts_[2 * i + 1];
    std::fill(counts_.begin() + kBins / 2, counts_.end(), 0.0);
    width_ *= 2;
  }
  max_ = std::max(max_, batch_max);
  // Integer counts here, added to the (double) totals once: the same sums, without a chain of
  // dependent floating-point adds per element (the large models' calibration spent seconds here).
  int64_t finite = 0;
  if (width_ == 0) {
    for (int64_t i = 0; i < n; ++i) finite += std::isfinite(x[i]) ? 1 : 0;
    total_ += static_cast<double>(finite);
    zeros_ += static_cast<double>(finite);
    return;
  }
  std::vector<int64_t> counts(kBins, 0);
  for (int64_t i = 0; i < n; ++i) {
    double a = std::fabs(static_cast<double>(x[i]));
    if (!std::isfinite(a)) continue;
    ++finite;
    ++counts[static_cast<size_t>(std::min<int64_t>(static_cast<int64_t>(a / width_), kBins - 1))];
  }
  total_ += static_cast<double>(finite);
  for (int i = 0; i < kBins; ++i) counts_[static_cast<size_t>(i)] += static_cast<double>(counts[static_cast<size_t>(i)]);
}

double minmax_amax(const Histogram& h) { return h.max_abs(); }

double percentile_amax(const Histogram& h, double percentile) {
  if (h.total() == 0 || h.bin_width() == 0) return 0;
  const double target = percentile / 100.0 * h.total();
  double cum = 0;
  const auto& c = h.counts();
  for (int i = 0; i < Histogram::kBins; ++i) {
    cum += c[i];
    if (cum >= target) return std::min((i + 1) * h.bin_width(), h.max_abs());
  }
  return h.max_abs();
}

namespace {

// Normalizes `d` to sum 1 and moves a little mass (eps per zero bin) onto its zero bins, so that
// KL(P||Q) stays finite where Q is zero but P is not (as MXNet's and TVM's versions of the method).
bool smooth_normalize(std::vector<double>& d) {
  double sum = 0;
  size_t zeros = 0;
  for (double v : d) {
    sum += v;
    zeros += v == 0;
  }
  const size_t nonzeros = d.size() - zeros;
  if (sum <= 0 || nonzeros == 0) return false;
  const double eps = 1e-4;
  const double take = eps * static_cast<double>(zeros) / static_cast<double>(nonzeros);
  for (double& v : d) v = v == 0 ? eps : v / sum - take;
  for (double v : d)
    if (v <= 0) return false;  // too little mass to smooth: skip this candidate
  return true;
}

}  // namespace

double entropy_amax(const Histogram& h, int quantized_bins) {
  // The spike of exact zeros after a ReLU would dominate the KL divergence and push the threshold
  // down: bin 0 counts as its neighbour does (as NVIDIA's pytorch-quantization does). Only where
  // that neighbour holds values: for discrete data (an image of 17 grey levels, values k/16) the
  // neighbour is empty, and dropping the zeros would leave the KL divergence blind to clipping (all
  // non-zero mass folded into one bin "matches" exactly): the digits input once got amax 1/16.
  std::vector<double> hist = h.counts();
  if (hist[1] > 0) hist[0] = hist[1];
  int last = Histogram::kBins - 1;
  while (last >= 0 && hist[last] == 0) --last;
  const int used = last + 1;
  // Values spanning no more bins than there are levels quantize without loss: keep the range.
  if (used <= quantized_bins || h.bin_width() == 0) return h.max_abs();

  std::vector<double> suffix(Histogram::kBins + 1, 0.0);  // suffix[i] = sum of bins >= i
  for (int i = Histogram::kBins - 1; i >= 0; --i) suffix[i] = suffix[i + 1] + hist[i];

  double best_kl = std::numeric_limits<double>::infinity();
  int best_i = used;
  std::vector<double> p, q;
  for (int i = quantized_bins; i <= used; ++i) {
    // P: the first i bins, with everything beyond folded into the last (what clipping does).
    p.assign(hist.begin(), hist.begin() + i);
    p[i - 1] += suffix[i];
    // Q: the first i bins merged into `quantized_bins` levels, each level's count spread evenly
    // over the bins of its group that are non-zero in P.
    q.assign(i, 0.0);
    for (int j = 0; j < quantized_bins; ++j) {
      const int start = static_cast<int>(static_cast<int64_t>(j) * i / quantized_bins);
      const int stop = static_cast<int>(static_cast<int64_t>(j + 1) * i / quantized_bins);
      double sum = 0;
      int nonzero = 0;
      for (int k = start; k < stop; ++k) {
        sum += hist[k];
        nonzero += p[k] != 0;
      }
      if (nonzero == 0) continue;
      for (int k = start; k < stop; ++k)
        if (p[k] != 0) q[k] = sum / nonzero;
    }
    if (!smooth_normalize(p) || !smooth_normalize(q)) continue;
    double kl = 0;
    for (int k = 0; k < i; ++k) kl += p[k] * std::log(p[k] / q[k]);
    if (kl < best_kl) {
      best_kl = kl;
      best_i = i;
    }
  }
  return std::min(best_i * h.bin_width(), h.max_abs());
}

double choose_amax(const Histogram& h, const CalibrationAlgorithm& algo) {
  switch (algo.kind) {
    case CalibrationAlgorithm::Kind::kMinMax: return minmax_amax(h);
    case CalibrationAlgorithm::Kind::kPercentile: return percentile_amax(h, algo.percentile);
    case CalibrationAlgorithm::Kind::kEntropy: return entropy_amax(h);
  }
  return h.max_abs();
}

}  // namespace kiln
