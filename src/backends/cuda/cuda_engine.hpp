// The CUDA backend's engine (weights on the device, one layer per node) and its contexts.
//
// Dynamic shapes: a plan built with optimization profiles keeps its graph's dynamic input dims.
// For each distinct set of input shapes the engine makes a *shape set* once and caches it: the
// graph specialized to those shapes on the host (shapes inferred, shape arithmetic folded), its
// layers (the plan's tactic where the layer still accepts it, else the layer's default) and its
// activation memory plan. Weights are uploaded once per engine and shared by every shape set
// (only constants that the specialization folds anew, usually small shape tensors, are uploaded per
// set). A context binds a shape set to its arena (sized for the profile's max shapes) and captures
// a CUDA graph per shape set. The host work of a new shape set is graph copy + shape inference +
// constant folding + layer creation (cuDNN/cuBLASLt descriptor setup) + memory planning; a shape
// set seen before costs a map lookup.
//
// Data-dependent shapes (NonZero, NonMaxSuppression, TopK with K from a tensor; see
// docs/dynamic-shapes.md): such a plan runs in *stages*. A stage's shape set runs the nodes from the
// end of the previous stage up to and including the next data-dependent node, whose outputs are
// planned at their largest size. After it the context copies the node's count (8 bytes) to pinned
// host memory and synchronizes the stream; the next stage's shape set is the graph specialized
// with that output's actual dims fixed as well (so downstream shape arithmetic folds on the host
// with the synced sizes), cached by input shapes + the counts so far. Each stage plans the values
// it produces in an arena region of its own, so values made by earlier stages stay where they are.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
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
  size_t region = 0;                  // activations: the stage whose arena region holds it
  DType dtype = DType::kUndefined;
  Dims dims;
};

// A graph with static shapes and everything made for them.
struct ShapeSet {
  GraphPtr graph;  // declared before the layers: layers may refer to its nodes
  std::vector<const Node*> nodes;  // the nodes `layers` run, in order (all of graph's unless staged)
  std::vector<std::unique_ptr<CudaLayer>> layers;
  std::unordered_map<const Value*, const void*> weight_ptrs;
  DeviceBuffer own_weights;  // constants this shape set folded (not in the plan's weights)
  std::unordered_map<std::string, uint64_t> arena_offsets;
  uint64_t arena_bytes = 0;
  uint64_t workspace_bytes = 0;
  // Staged runs (data-dependent shapes). `stage` is this set's arena region; region_bytes has one
  // size per stage so far; region_of gives a value's region (absent: 0).
  size_t stage = 0;
  std::vector<uint64_t> region_bytes;
  std::unordered_map<std::string, size_t> region_of;
  // The last of `nodes` when its output size depends on values: the context syncs after it.
  const Node* sync_node = nullptr;
  const CudaLayerFactory* sync_factory = nullptr;
  std::unordered_map<std::string, Dims> max_dims;  // sync_node's outputs at their largest
  std::map<std::string, Dims> input_shapes, fixed;  // what the graph was specialized with
  std::set<std::string> done;  // keys of the nodes run by this stage and the earlier ones
  std::string key;
  Expected<ValueLocation> locate(const Value* v) const;
};

class CudaEngine : public EngineImpl {
 public:
  static Expected<std::unique_ptr<CudaEngine>> create(const Plan& plan);
  Expected<std::unique_ptr<ExecutionContext>> create_context(const ContextOptions& options) const override;
  uint64_t weight_bytes() const override { return weights_.size(); }
  uint64_t context_bytes() const override { return arena_bytes_ + workspace_bytes_; }

  // The plan's graph (dynamic input dims when the plan has profiles).
  const Graph& graph() const { return *graph_; }
  bool dynamic() const { return !static_set_; }
  size_t max_layers() const { return graph_->nodes().size(); }
  // A node's index among the plan's layers, by its key (node_key); max_layers() when it has none.
  size_t plan_index(const Node& n) const;
  uint64_t arena_bytes() const { return arena_bytes_; }
  uint64_t workspace_bytes() const { return workspace_bytes_; }
  // The shape set for these input shapes (made and cached on first use; thread-safe).
  Expected<std::shared_ptr<const ShapeSet>> shape_set(const std::map<std::string, Dims>& input_shapes) const;
  // The stage after `prev` (which has a sync_node), now that its outputs' dims are known.
  Expected<std::shared_ptr<const ShapeSet>> next_stage(const ShapeSet& prev, const std::vector<Dims>& dims) const;

 private:
  Expected<std::unique_ptr<ShapeSet>> make_shape_set(GraphPtr graph, const std::vector<LayerChoice>* layers,
                                                     const std::vector<ArenaSlot>* arena, uint64_t arena_bytes,
                                                     const ShapeSet* prev = nullptr) const;
  std::shared_ptr<const ShapeSet> cache(const std::string& key, std::shared_ptr<const ShapeSet> set) const;

  GraphPtr graph_;
  bool tf32_ = true;
  std::unordered_map<std::string, LayerChoice> choices_;  // by node_key, from the plan
  std::unordered_map<std::string, size_t> index_by_key_;  // plan layer index by node_key
  DeviceBuffer weights_;
  // The plan's constants on the device, by the host address of their data (a specialized graph's
  // constants share that data with the plan's).
  std::unordered_map<const void*, const void*> weight_by_host_;
  std::shared_ptr<const ShapeSet> static_set_;  // plans without profiles: the only shape set
  mutable std::mutex mutex_;
  mutable std::map<std::string, std::shared_ptr<const ShapeSet>> sets_;
  uint64_t arena_bytes_ = 0;
  uint64_t workspace_bytes_ = 0;
};

}  // namespace kiln::cuda
