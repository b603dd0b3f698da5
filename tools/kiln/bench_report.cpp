#include "bench_report.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>

#include "cli_util.hpp"
#include "util/error.hpp"

namespace kiln::cli {

namespace {

double nearest_rank(const std::vector<double>& sorted, double p) {
  auto n = static_cast<double>(sorted.size());
  auto rank = static_cast<size_t>(std::ceil(p / 100.0 * n));
  return sorted[std::clamp<size_t>(rank, 1, sorted.size()) - 1];
}

nlohmann::ordered_json stats_json(const Stats& s) {
  return {{"min", s.min}, {"mean", s.mean}, {"median", s.median}, {"p90", s.p90}, {"p95", s.p95},
          {"p99", s.p99}, {"max", s.max},   {"stddev", s.stddev}};
}

template <typename Field>
std::vector<double> column(const BenchResult& r, Field f) {
  std::vector<double> v;
  v.reserve(r.times.size());
  for (const IterationTime& it : r.times) v.push_back(it.*f);
  return v;
}

double queries_per_second(const BenchResult& r) {
  return r.walltime_ms > 0 ? static_cast<double>(r.times.size()) / (r.walltime_ms / 1e3) : 0;
}

void print_row(const char* label, const Stats& s) {
  std::printf("  %-12s %9.4f %9.4f %9.4f %9.4f %9.4f %9.4f %9.4f\n", label, s.min, s.mean, s.median, s.p90, s.p95,
              s.p99, s.max);
}

}  // namespace

Stats compute_stats(std::vector<double> v) {
  Stats s;
  if (v.empty()) return s;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  s.min = v.front();
  s.max = v.back();
  s.mean = std::accumulate(v.begin(), v.end(), 0.0) / static_cast<double>(n);
  s.median = n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
  s.p90 = nearest_rank(v, 90);
  s.p95 = nearest_rank(v, 95);
  s.p99 = nearest_rank(v, 99);
  double sq = 0;
  for (double x : v) sq += (x - s.mean) * (x - s.mean);
  s.stddev = std::sqrt(sq / static_cast<double>(n));
  return s;
}

void print_summary(const BenchContext& c, const BenchResult& r) {
  const BenchSettings& s = c.settings;
  const bool gpu = c.backend == "cuda";
  std::printf("=== performance summary: %s on %s ===\n", c.source.c_str(), c.backend.c_str());
  std::printf("settings     %d stream%s, warmup %g ms (%lld queries), at least %lld iterations and %g s per stream, "
              "CUDA graph %s, data transfers %s\n",
              s.streams, s.streams == 1 ? "" : "s", s.warmup_ms, static_cast<long long>(r.warmup_queries),
              static_cast<long long>(s.iterations), s.duration_s, s.cuda_graph ? "on" : "off",
              s.data_transfers ? "on" : "off");
  double qps = queries_per_second(r);
  std::printf("throughput   %.2f queries/s, %.2f items/s (batch %lld)\n", qps, qps * static_cast<double>(c.batch),
              static_cast<long long>(c.batch));
  std::printf("  %-12s %9s %9s %9s %9s %9s %9s %9s  (ms)\n", "", "min", "mean", "median", "p90", "p95", "p99", "max");
  Stats latency = compute_stats(column(r, &IterationTime::latency_ms));
  print_row("latency", latency);
  print_row("enqueue", compute_stats(column(r, &IterationTime::enqueue_ms)));
  if (gpu && s.data_transfers) print_row("H2D", compute_stats(column(r, &IterationTime::h2d_ms)));
  print_row(gpu ? "GPU compute" : "compute", compute_stats(column(r, &IterationTime::compute_ms)));
  if (gpu && s.data_transfers) print_row("D2H", compute_stats(column(r, &IterationTime::d2h_ms)));
  std::printf("total host walltime %.3f s, %zu queries\n", r.walltime_ms / 1e3, r.times.size());
  if (gpu)
    std::printf("device memory %s: weights %s + %d context%s x %s\n",
                format_bytes(c.weight_bytes + c.context_bytes * static_cast<uint64_t>(s.streams)).c_str(),
                format_bytes(c.weight_bytes).c_str(), s.streams, s.streams == 1 ? "" : "s",
                format_bytes(c.context_bytes).c_str());
  else
    std::printf("host memory  weights %s (activations are allocated per inference on the CPU)\n",
                format_bytes(c.weight_bytes).c_str());
  if (gpu && !c.sync_layers.empty()) {
    std::string names;
    for (const std::string& l : c.sync_layers) names += (names.empty() ? "" : ", ") + l;
    std::printf("note: data-dependent output shapes: every query synchronizes the stream after %zu layer%s (%s) to "
                "read the output size%s (docs/dynamic-shapes.md)\n",
                c.sync_layers.size(), c.sync_layers.size() == 1 ? "" : "s", names.c_str(),
                s.cuda_graph ? "; the CUDA graph is captured per stage between syncs, not for the whole inference"
                             : "");
  }
  if (!gpu && s.data_transfers)
    std::printf("note: the CPU backend has no host/device copies; its enqueue runs the whole inference\n");
  if (latency.cov() > kHighCov)
    std::printf("warning: latency varies a lot between queries (coefficient of variation %.1f%%): the results may "
                "not be stable; stop other work on this machine or run longer (--duration)\n",
                latency.cov() * 100);
}

nlohmann::ordered_json times_json(const BenchContext& c, const BenchResult& r) {
  nlohmann::ordered_json summary = {
      {"source", c.source},
      {"backend", c.backend},
      {"streams", c.settings.streams},
      {"cuda_graph", c.settings.cuda_graph},
      {"data_transfers", c.settings.data_transfers},
      {"batch", c.batch},
      {"queries", r.times.size()},
      {"warmup_queries", r.warmup_queries},
      {"walltime_ms", r.walltime_ms},
      {"queries_per_second", queries_per_second(r)},
      {"items_per_second", queries_per_second(r) * static_cast<double>(c.batch)},
      {"latency_ms", stats_json(compute_stats(column(r, &IterationTime::latency_ms)))},
      {"enqueue_ms", stats_json(compute_stats(column(r, &IterationTime::enqueue_ms)))},
      {"h2d_ms", stats_json(compute_stats(column(r, &IterationTime::h2d_ms)))},
      {"compute_ms", stats_json(compute_stats(column(r, &IterationTime::compute_ms)))},
      {"d2h_ms", stats_json(compute_stats(column(r, &IterationTime::d2h_ms)))},
  };
  nlohmann::ordered_json list = nlohmann::ordered_json::array();
  for (const IterationTime& it : r.times)
    list.push_back({{"stream", it.stream},
                    {"iteration", it.iteration},
                    {"start_ms", it.start_ms},
                    {"latency_ms", it.latency_ms},
                    {"enqueue_ms", it.enqueue_ms},
                    {"h2d_ms", it.h2d_ms},
                    {"compute_ms", it.compute_ms},
                    {"d2h_ms", it.d2h_ms}});
  return {{"summary", summary}, {"times", list}};
}

nlohmann::ordered_json profile_json(const BenchContext& c, const Plan& plan, const LayerProfile& p) {
  const auto& nodes = plan.graph->nodes();
  double total = 0;
  std::vector<Stats> stats;
  for (const auto& t : p.times) {
    stats.push_back(compute_stats(t));
    total += stats.back().mean;
  }
  nlohmann::ordered_json layers = nlohmann::ordered_json::array();
  for (size_t i = 0; i < nodes.size() && i < stats.size(); ++i) {
    const Node& n = *nodes[i];
    const LayerChoice* choice = i < plan.layers.size() ? &plan.layers[i] : nullptr;
    layers.push_back({{"index", i},
                      {"name", n.name},
                      {"op", n.op_type},
                      {"precision", choice ? choice->precision : ""},
                      {"tactic", choice ? choice->tactic : ""},
                      {"mean_ms", stats[i].mean},
                      {"median_ms", stats[i].median},
                      {"min_ms", stats[i].min},
                      {"max_ms", stats[i].max},
                      {"percent", total > 0 ? 100 * stats[i].mean / total : 0}});
  }
  return {{"source", c.source},
          {"backend", c.backend},
          {"timing", c.backend == "cuda" ? "GPU events between layers" : "host time per layer"},
          {"iterations", p.iterations},
          {"total_mean_ms", total},
          {"layers", layers}};
}

void print_profile_top(const Plan& plan, const LayerProfile& p, size_t count) {
  std::vector<std::pair<double, size_t>> by_time;
  double total = 0;
  for (size_t i = 0; i < p.times.size(); ++i) {
    double mean = compute_stats(p.times[i]).mean;
    by_time.emplace_back(mean, i);
    total += mean;
  }
  std::sort(by_time.begin(), by_time.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
  std::printf("slowest layers (mean of %lld profiled inferences, %.4f ms in all):\n",
              static_cast<long long>(p.iterations), total);
  for (size_t k = 0; k < by_time.size() && k < count; ++k) {
    const Node& n = *plan.graph->nodes()[by_time[k].second];
    std::printf("  %9.4f ms %5.1f%%  #%zu %s (%s)\n", by_time[k].first,
                total > 0 ? 100 * by_time[k].first / total : 0.0, by_time[k].second, n.name.c_str(), n.op_type.c_str());
  }
}

}  // namespace kiln::cli
