// A small per-layer cost estimate for `kiln inspect`: FLOPs (Conv/ConvTranspose/MatMul/Gemm and
// kiln's FusedConv (with its head), NHWC ConvTranspose, FusedMatMul and Fp8MatMul exact
// multiply-adds x2, every other op one per output element) and bytes moved (inputs + outputs).
#pragma once

#include <cstdint>
#include <string>

#include "ir/graph.hpp"

namespace kiln::cli {

struct LayerCost {
  int64_t flops = -1;  // -1 when shapes are not static
  int64_t bytes = -1;
};

LayerCost layer_cost(const Node& node);
// The `kiln_fused` attribute (original nodes of a fused node), or "".
std::string fused_ops(const Node& node);
// "1.23 GFLOP", "456 kFLOP", "-" for unknown.
std::string flops_text(int64_t flops);

}  // namespace kiln::cli
