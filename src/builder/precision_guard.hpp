// The float32 guard of --fp16/--bf16 builds: nodes whose results overflow or lose too much in 16
// bits stay float32 (docs/precision.md lists the rules and why Softmax/LayerNormalization are not
// among them: the CPU and CUDA kernels compute those in float32 internally).
#pragma once

#include <string>
#include <vector>

#include "ir/graph.hpp"

namespace kiln {

struct GuardedNode {
  std::string node;    // precision_key
  std::string op;
  std::string reason;  // why it stays float32
};

// Reductions of more than this many elements per output keep float32 (their sums leave fp16's
// range or its 11-bit mantissa's reach).
inline constexpr int64_t kGuardReduceElements = 4096;

// The top-level nodes of `g` (after the clean-up passes, shapes inferred) that should stay float32:
// sums of squares (decomposed normalizations: Pow/Mul x*x -> ReduceMean/ReduceSum [-> Add eps
// -> Sqrt], and ReduceSumSquare), Exp/Pow results that feed a sum, and sum/mean/L2 reductions
// over more than kGuardReduceElements elements (or a count unknown at build time). In graph order.
std::vector<GuardedNode> find_fp16_hazards(const Graph& g);

}  // namespace kiln
