// A kiln.FusedConv, act(conv(X, W) + B + Z), as one cuDNN backend-API (graph API) operation graph:
// ConvolutionFwd (ConvolutionBwdData for a ConvTranspose), then pointwise Add (bias), Add (Z) and
// Relu on float intermediates. Its engines (among them the runtime-fusion ones for NHWC float16)
// are newer than the legacy API's algorithms. Each engine config is a tactic named by its
// engine's global index and knob choices, "graph_e<index>[_k<type>.<value>]...", so a plan
// re-creates exactly the timed config; "graphp_..." names a config of the convolution alone (for
// nodes whose epilogue cuDNN cannot fuse: the layer's epilogue kernel then adds it).
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "backends/cuda/layers/conv_descs.hpp"

namespace kiln::cuda {

// Owns one cudnnBackendDescriptor_t.
class BackendDesc {
 public:
  BackendDesc() = default;
  ~BackendDesc() { reset(); }
  BackendDesc(BackendDesc&& o) noexcept : d_(std::exchange(o.d_, nullptr)) {}
  BackendDesc& operator=(BackendDesc&& o) noexcept {
    if (this != &o) {
      reset();
      d_ = std::exchange(o.d_, nullptr);
    }
    return *this;
  }
  BackendDesc(const BackendDesc&) = delete;
  BackendDesc& operator=(const BackendDesc&) = delete;
  Status create(cudnnBackendDescriptorType_t type);
  cudnnBackendDescriptor_t get() const { return d_; }
  void reset() {
    if (d_) cudnnBackendDestroyDescriptor(d_);
    d_ = nullptr;
  }

 private:
  cudnnBackendDescriptor_t d_ = nullptr;
};

// One engine config: the engine's global index and its knob choices (type, value).
struct GraphConfig {
  int64_t engine = -1;
  std::vector<std::pair<int64_t, int64_t>> knobs;
  bool plain = false;             // the convolution alone ("graphp_"), the epilogue left to the layer
  bool runtime_compiled = false;  // the engine compiles its kernel when the plan is made (NVRTC)
  std::string name() const;
  static std::optional<GraphConfig> parse(const std::string& tactic);
};

struct ConvGraphSpec {
  ConvGeometry geo;  // NCHW-order dims (X as pre-padded), layout in geo.nhwc
  DType dtype = DType::kUndefined;
  bool bias = false, z = false, relu = false;
  bool transposed = false;  // ConvTranspose: X is the data gradient's dY, Y its dX
  std::string precision;    // "fp32" (no tensor cores), "tf32", "fp16", "bf16", "int8"
  // Y's dtype when it is not `dtype`: an int8 convolution (kiln.QConv) computes in INT32 and
  // writes its sums as float32 (kFloat32). kInt32 builds too, but on an H200 (cuDNN 9) its
  // engines wrote wrong values (float32 sums, by their size) into the int32 Y: not used.
  DType y_dtype = DType::kUndefined;
  bool has_epilogue() const { return bias || z || relu; }
};

class ConvGraph {
 public:
  // The finalized operation graph (no engine chosen yet). Unsupported when cuDNN cannot build it.
  // `plain`: the graph of a node's convolution alone (spec without epilogue), its configs "graphp_".
  static Expected<std::unique_ptr<ConvGraph>> create(const ConvGraphSpec& spec, cudnnHandle_t h, bool plain = false);
  // Heuristic configs (mode A, then the fallback list) that fit the precision and `max_workspace`,
  // deduplicated, at most `limit` (at most `max_runtime_compiled` of them compile at plan time).
  Expected<std::vector<GraphConfig>> configs(size_t limit, size_t max_runtime_compiled, uint64_t max_workspace) const;
  const ConvGraphSpec& spec() const { return spec_; }
  // Makes the execution plan of `cfg` (an error when cuDNN cannot run it here).
  Status select(const GraphConfig& cfg);
  bool has_plan() const { return plan_.get() != nullptr; }
  size_t workspace() const { return workspace_; }
  // Runs the plan on `h`'s stream (the variant pack is made per call: no device work, no sync).
  Status execute(cudnnHandle_t h, const void* x, const void* w, const void* bias, const void* z, void* y,
                 void* workspace) const;

 private:
  ConvGraph() = default;
  Status build_graph();
  Status make_tensor(int64_t uid, const Dims& dims, const std::vector<int64_t>& strides, cudnnDataType_t type,
                     bool is_virtual);
  Status add_pointwise(cudnnPointwiseMode_t mode, int64_t x_uid, int64_t b_uid, int64_t y_uid);
  cudnnBackendDescriptor_t tensor(int64_t uid) const;

  ConvGraphSpec spec_;
  bool plain_variant_ = false;
  cudnnHandle_t handle_ = nullptr;  // the query handle (lives as long as the process)
  std::vector<std::pair<int64_t, BackendDesc>> tensors_;
  std::vector<BackendDesc> ops_, misc_;
  BackendDesc graph_, plan_;
  size_t workspace_ = 0;
};

// Graph-API configs offered per node: enough to find the fast ones, few enough to keep builds
// short (runtime-compiled engines compile a kernel per plan): (configs, runtime-compiled ones).
// KILN_CONV_GRAPH_CONFIGS="N,R" overrides both (0: no graph-API tactics), for experiments.
constexpr size_t kGraphConfigs = 8, kGraphRuntimeCompiled = 2;
std::pair<size_t, size_t> graph_limits();

// KILN_CONV_GRAPH_DEBUG set: why configs are dropped and how long plans take, on stderr.
bool conv_graph_debug();

inline bool is_graph_tactic(const std::string& t) { return t.rfind("graph_", 0) == 0 || t.rfind("graphp_", 0) == 0; }

// The graph-API tactics of a node: configs of the whole node, or when cuDNN has none for it (an
// epilogue it cannot fuse), of the convolution alone. Only configs whose plan cuDNN makes here.
std::vector<std::string> graph_tactics(const ConvGraphSpec& spec, uint64_t max_workspace);

// The graph for a "graph_"/"graphp_" tactic, its plan made. A config that cannot be re-created
// here (a plan from another cuDNN or GPU) falls back to the heuristics' first of the same kind,
// with a note on stderr naming `who`; null (with a note) when no graph config runs at all.
// Plans are made once per process and spec (shared by the layers running them: execute is const).
Expected<std::shared_ptr<const ConvGraph>> graph_for_tactic(const ConvGraphSpec& spec, const std::string& tactic,
                                                            const std::string& who);

// Forgets the plans made so far (tests: the next layer re-creates its config from the name).
void clear_graph_plan_cache();

}  // namespace kiln::cuda
