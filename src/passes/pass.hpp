// Graph passes: small rewrites that report whether they changed the graph, run to a fixed point.
#pragma once

#include <functional>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "ir/graph.hpp"

namespace kiln {

class Pass {
 public:
  virtual ~Pass() = default;
  virtual std::string_view name() const = 0;
  // Rewrites `graph`; returns true when it changed anything.
  virtual Expected<bool> run(Graph& graph) = 0;
};

struct PassManagerOptions {
  std::set<std::string> disabled;       // pass names to skip
  int max_iterations = 8;               // rounds of the whole pipeline before giving up on a fixed point
  std::function<void(std::string_view)> log;  // per-pass timing when set
};

class PassManager {
 public:
  explicit PassManager(PassManagerOptions options = {}) : options_(std::move(options)) {}
  void add(std::unique_ptr<Pass> pass) { passes_.push_back(std::move(pass)); }
  // Runs every enabled pass in order, repeating until none changes the graph; shape inference is
  // re-run after each change so later passes see current types.
  Status run(Graph& graph);

 private:
  PassManagerOptions options_;
  std::vector<std::unique_ptr<Pass>> passes_;
};

// Replaces nodes whose inputs are all constants by their outputs, computed with the CPU kernels
// (random-number ops are kept unless `fold_random`). Outputs larger than `max_bytes` are kept
// as nodes, so a tiny ConstantOfShape does not become a huge weight.
std::unique_ptr<Pass> make_constant_folding_pass(bool fold_random = false, uint64_t max_bytes = 64u << 20);
// Turns float32 activations and weights into `low` (float16 or bfloat16), keeping float32
// bindings with Casts at the graph's inputs and outputs. Run once, not in a fixed-point loop.
std::unique_ptr<Pass> make_precision_pass(DType low);
// Replaces each If whose condition is a constant by the nodes of the branch it selects (in every
// graph, subgraphs included), with Identity nodes binding the If's outputs.
std::unique_ptr<Pass> make_inline_constant_if_pass();
// Removes nodes none of whose outputs is used (by a node, a subgraph or a graph output), and
// values nothing refers to.
std::unique_ptr<Pass> make_dead_code_pass();

// CUDA backend passes (ops/fused_conv.cpp documents kiln.FusedConv):
// Conv [+ Add of a same-shaped residual] [+ Relu] -> kiln.FusedConv (every float Conv).
std::unique_ptr<Pass> make_conv_fusion_pass();
// float16/bfloat16 2-D FusedConv -> NHWC layout, with Transposes around each.
std::unique_ptr<Pass> make_nhwc_layout_pass();
// Moves NHWC -> NCHW Transposes below layout-agnostic ops (elementwise, Concat).
std::unique_ptr<Pass> make_transpose_sinking_pass();
// Removes Transpose pairs that cancel (readers of the second read the first's input).
std::unique_ptr<Pass> make_transpose_cancellation_pass();

}  // namespace kiln
