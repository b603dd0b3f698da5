// Per-node precision for the precision pass: which float computations run in float32, float16 or
// bfloat16. The builder fills it from --fp16/--bf16/--best, --layer-precision, the float32 guard
// and the accuracy budget (builder/precision_plan.hpp); the pass then places the Casts.
#pragma once

#include <map>
#include <memory>
#include <string>

#include "ir/graph.hpp"
#include "passes/pass.hpp"

namespace kiln {

struct PrecisionAssignment {
  DType fallback = DType::kFloat16;     // nodes not in `nodes` (kFloat32: everything stays float32)
  std::map<std::string, DType> nodes;   // precision_key(node) -> kFloat32, kFloat16 or kBFloat16
  DType of(const Node& n) const;
};

// How --layer-precision and the builder's reports name a top-level node: its name, else its first
// output's name (nodes of imported models may be unnamed).
std::string precision_key(const Node& n);

// Whether the node reads or writes a float32 tensor that the precision pass may lower (a node that
// computes no float, e.g. Shape of an int64 tensor, has no precision to choose).
bool computes_float(const Node& n);

// Ops that only move data (Reshape, Transpose, ...): exact in any float type.
bool moves_data(const Node& n);

// The precision pass with one precision per top-level node: a float32 value feeds a node of
// another precision through a Cast (one per value and precision), weights of reduced-precision
// nodes are converted, graph inputs and outputs keep their float32 bindings. Nodes that only move
// data (Reshape, Transpose, ...) or compute no float and are not named take their input's
// precision, so a float32 island costs one Cast at each end. Subgraphs take their node's precision.
std::unique_ptr<Pass> make_mixed_precision_pass(PrecisionAssignment assignment);

}  // namespace kiln
