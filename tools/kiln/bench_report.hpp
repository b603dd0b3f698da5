// `kiln bench` results: statistics, the printed summary, and the JSON exports.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "bench_loop.hpp"

namespace kiln::cli {

struct Stats {
  double min = 0, mean = 0, median = 0, p90 = 0, p95 = 0, p99 = 0, max = 0;
  double stddev = 0;  // population standard deviation
  double cov() const { return mean > 0 ? stddev / mean : 0; }  // coefficient of variation
};
// Percentiles are nearest-rank (the smallest value with at least p% of the values at or below
// it); the median of an even count is the mean of the middle two. All zero for no values.
Stats compute_stats(std::vector<double> values);

// Latency CoV above this prints a warning: the numbers are not stable enough to compare.
inline constexpr double kHighCov = 0.10;

struct BenchContext {
  std::string source;   // the plan or model benchmarked
  std::string backend;  // "cpu" or "cuda"
  BenchSettings settings;
  int64_t batch = 1;    // items per query: the first input's leading dim
  uint64_t weight_bytes = 0, context_bytes = 0;  // device memory (CUDA); host weights on the CPU
  // CUDA plans with data-dependent output shapes: the layers after which each query synchronizes.
  std::vector<std::string> sync_layers;
};

void print_summary(const BenchContext& ctx, const BenchResult& result);
nlohmann::ordered_json times_json(const BenchContext& ctx, const BenchResult& result);
nlohmann::ordered_json profile_json(const BenchContext& ctx, const Plan& plan, const LayerProfile& profile);
// The slowest layers, one line each (after --export-profile).
void print_profile_top(const Plan& plan, const LayerProfile& profile, size_t count);

}  // namespace kiln::cli
