// The timing loop behind `kiln bench`: N execution contexts, each on its own thread (and, on the
// GPU, its own stream), run inferences back to back; every timed one is recorded.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "runtime/engine.hpp"

namespace kiln::cli {

struct BenchSettings {
  double warmup_ms = 200;      // each stream runs untimed inferences this long first (at least one)
  int64_t iterations = 10;     // then at least this many timed inferences per stream
  double duration_s = 3;       // and for at least this long
  int streams = 1;             // contexts running at once, one thread each
  bool cuda_graph = false;     // replay the layers as a CUDA graph
  bool data_transfers = true;  // copy inputs in and outputs out on every inference
};

// One timed inference. Host times are from the bench's start; device times are the backend's own
// (GPU events on CUDA, zero for copies that did not happen).
struct IterationTime {
  int stream = 0;
  int64_t iteration = 0;   // within its stream
  double start_ms = 0;     // host time when the inference started
  double latency_ms = 0;   // host time from start until its outputs were back (or it finished)
  double enqueue_ms = 0;   // host time spent in enqueue()
  double h2d_ms = 0, compute_ms = 0, d2h_ms = 0;
};

struct BenchResult {
  std::vector<IterationTime> times;  // every stream's, ordered by start
  int64_t warmup_queries = 0;
  double walltime_ms = 0;            // first timed start to last timed end, over all streams
};

Expected<BenchResult> run_bench(const Engine& engine, const std::map<std::string, Tensor>& inputs,
                                const BenchSettings& settings);

// Per-layer times, from a separate run with layer timing on (events between the layers, which
// would disturb the timed run): times[layer][iteration] in ms.
struct LayerProfile {
  std::vector<std::vector<double>> times;
  int64_t iterations = 0;
};
Expected<LayerProfile> profile_layers(const Engine& engine, const std::map<std::string, Tensor>& inputs,
                                      int64_t iterations);

}  // namespace kiln::cli
