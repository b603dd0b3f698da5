// Times a layer's alternative kernels on random data and remembers the results in a timing
// cache file, so a rebuild of the same model skips the timing.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "backends/cuda/cuda_layer.hpp"
#include "backends/cuda/device_buffer.hpp"

namespace kiln::cuda {

class TacticTimer {
 public:
  explicit TacticTimer(std::string cache_path) : path_(std::move(cache_path)) {}
  ~TacticTimer();
  TacticTimer(const TacticTimer&) = delete;
  TacticTimer& operator=(const TacticTimer&) = delete;
  Status load();  // a missing cache file is fine; a corrupt one is an error naming it
  Status save() const;  // atomic; no-op without a path
  // The fastest of `tactics` for the node (from the cache when known); tactics that fail to
  // create or run are skipped, and if all fail the error of the first is returned.
  Expected<std::string> fastest(const Node& node, const CudaLayerFactory& factory, const std::string& precision,
                                const std::vector<std::string>& tactics);

 private:
  // Device copies of one node's inputs (random data, or its constants) and outputs, made once per
  // node and shared by all of its tactics.
  struct NodeBuffers {
    std::vector<DeviceBuffer> buffers;
    std::vector<DeviceTensor> inputs, outputs;
  };
  Status make_buffers(const Node& node, NodeBuffers& io);
  // One stream, library handles and events for the whole build: creating a cuDNN handle per
  // tactic cost more than the timing itself.
  Status ensure_session();
  Expected<double> time_one(const Node& node, const CudaLayerFactory& factory, const LayerChoice& choice,
                            const NodeBuffers& io);
  Handles handles_;
  cudaStream_t stream_ = nullptr;
  cudaEvent_t start_ = nullptr, stop_ = nullptr;
  std::string path_;
  std::map<std::string, std::map<std::string, double>> cache_;  // key -> tactic -> ms
  bool dirty_ = false;
};

// A key naming the node's op, attributes, input types and shapes, precision and the GPU.
std::string tactic_cache_key(const Node& node, const std::string& precision, const std::string& device);

}  // namespace kiln::cuda
