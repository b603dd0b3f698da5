// The CUDA backend's engine (weights on the device, one layer per node) and its contexts.
#pragma once

#include <memory>
#include <unordered_map>

#include "backends/cuda/cuda_layer.hpp"
#include "backends/cuda/device_buffer.hpp"
#include "runtime/engine.hpp"

namespace kiln::cuda {

// Where a value's bytes are: in the weights buffer (constants) or at an offset in a context's arena.
struct ValueLocation {
  bool constant = false;
  const void* weights_ptr = nullptr;  // constants
  uint64_t arena_offset = 0;          // activations
  DType dtype = DType::kUndefined;
  Dims dims;
};

class CudaEngine : public EngineImpl {
 public:
  static Expected<std::unique_ptr<CudaEngine>> create(const Plan& plan);
  Expected<std::unique_ptr<ExecutionContext>> create_context(const ContextOptions& options) const override;
  uint64_t weight_bytes() const override { return weights_.size(); }
  uint64_t context_bytes() const override { return arena_bytes_ + workspace_bytes_; }

  const Graph& graph() const { return *graph_; }
  const std::vector<std::unique_ptr<CudaLayer>>& layers() const { return layers_; }
  Expected<ValueLocation> locate(const Value* v) const;
  uint64_t arena_bytes() const { return arena_bytes_; }
  uint64_t workspace_bytes() const { return workspace_bytes_; }

 private:
  GraphPtr graph_;
  std::vector<std::unique_ptr<CudaLayer>> layers_;
  DeviceBuffer weights_;
  std::unordered_map<const Value*, const void*> weight_ptrs_;
  std::unordered_map<std::string, uint64_t> arena_offsets_;
  uint64_t arena_bytes_ = 0;
  uint64_t workspace_bytes_ = 0;
};

}  // namespace kiln::cuda
