// CUDA layers: what the CUDA backend runs for one node, and how op families register them.
//
// A family registers a factory per op type (in its own file under backends/cuda/layers/):
//
//   KILN_REGISTER_CUDA_LAYER("Relu", kiln::cuda::CudaLayerFactory{.supports = ..., .create = ...});
//
// The builder asks `supports` for every node (shapes are static, dtypes final), times each of
// `tactics` when there are several, and the engine calls `create` once per node with the chosen
// tactic. `enqueue` then runs on every inference; it is const (an engine is shared by contexts on
// several threads) and must not allocate, synchronize or touch host memory (it is captured into
// CUDA graphs).
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "backends/cuda/cuda_check.hpp"
#include "builder/build_options.hpp"
#include "ir/graph.hpp"
#include "runtime/plan.hpp"

namespace kiln::cuda {

struct DeviceTensor {
  void* data = nullptr;  // null for an absent optional input
  DType dtype = DType::kUndefined;
  Dims dims;
  int64_t numel() const { return dims_numel(dims); }
  size_t nbytes() const { return static_cast<size_t>(numel()) * dtype_size(dtype); }
  template <typename T> T* as() const { return static_cast<T*>(data); }
};

// Library handles owned by each execution context (cuDNN handles are not shared across streams).
struct Handles {
  cudnnHandle_t cudnn = nullptr;
  cublasLtHandle_t cublaslt = nullptr;
};

struct LaunchArgs {
  const std::vector<DeviceTensor>& inputs;
  const std::vector<DeviceTensor>& outputs;
  void* workspace;
  size_t workspace_bytes;
  cudaStream_t stream;
  const Handles& handles;
  // Data-dependent layers (CudaLayerFactory::output_dims) write their one int64 count here, on
  // the device; the context reads it back after the layer (the documented sync).
  int64_t* count_out = nullptr;
};

class CudaLayer {
 public:
  virtual ~CudaLayer() = default;
  // Scratch memory `enqueue` needs (the context allocates the largest of its layers').
  virtual size_t workspace_bytes() const { return 0; }
  virtual Status enqueue(const LaunchArgs& args) const = 0;
};

struct CudaLayerFactory {
  // Whether this node (static shapes, final dtypes) can run here.
  std::function<bool(const Node&)> supports;
  // The kernels to choose from, timed at build; empty = one default kernel ("").
  std::function<std::vector<std::string>(const Node&, const BuildOptions&)> tactics;
  // Makes the layer for the chosen tactic and precision; may upload or transform weights (the
  // node's constant inputs) into memory the layer owns.
  std::function<Expected<std::unique_ptr<CudaLayer>>(const Node&, const LayerChoice&)> create;
  // Ops whose output shape depends on their input *values* (NonZero, NonMaxSuppression, TopK with
  // K from a tensor), set for those only. `max_output_dims`: the outputs' largest dims given the
  // node's static input shapes (their memory is planned at that size). The layer writes one int64
  // count to LaunchArgs::count_out; `output_dims` turns it into the outputs' actual dims (an error
  // for a count the op rejects, e.g. TopK's K out of range). The context synchronizes after such
  // a layer to read the count (docs/dynamic-shapes.md).
  std::function<Expected<std::vector<Dims>>(const Node&)> max_output_dims;
  std::function<Expected<std::vector<Dims>>(const Node&, int64_t count)> output_dims;
};

bool register_cuda_layer(const std::string& op_type, CudaLayerFactory factory);
// The factory for an op type, if any: "Conv" (default ONNX domain) or "<domain>.<op>" for other
// domains (kiln's own ops, e.g. "kiln.FusedConv").
const CudaLayerFactory* find_cuda_layer(const std::string& op_type);
// The factory for a node: its plugin's layer (layers/plugin_layer.cpp) when it runs as a plugin,
// else the one of its domain and op type, if any.
const CudaLayerFactory* find_cuda_layer(const Node& n);
std::vector<std::string> cuda_layer_ops();

// Launch geometry helper for elementwise kernels: blocks of 256 threads covering n items.
inline unsigned blocks_for(int64_t n, int threads = 256) {
  int64_t b = (n + threads - 1) / threads;
  return static_cast<unsigned>(b < 1 ? 1 : (b > 65535 * 32 ? 65535 * 32 : b));
}

}  // namespace kiln::cuda

#define KILN_REGISTER_CUDA_LAYER(op, ...)                                                   \
  namespace {                                                                               \
  [[maybe_unused]] const bool KILN_CONCAT(kiln_cuda_layer_registered_, __COUNTER__) =       \
      ::kiln::cuda::register_cuda_layer(op, __VA_ARGS__);                                   \
  }
