// kiln.FusedConv nodes with a head (inputs 4 and 5: a 1x1 classifier applied to Y, made by
// conv-head-fusion). The Hopper halo-tile kernel applies the head in its epilogue; every other
// convolution tactic runs on the node's body (the node without its head) into the workspace, and
// the head then runs as the direct 1x1 kernel (narrow_conv.hpp), as the two nodes did unfused.
#pragma once

#include "backends/cuda/cuda_layer.hpp"

namespace kiln::cuda {

bool has_conv_head(const Node& n);
// The head's own checks: NHWC, float dtypes of Y's, (K, 1, 1, M) weights with K <= 8 and Y's M
// channels a multiple of 16 bytes (the direct 1x1 kernel's limits).
bool conv_head_supported(const Node& n);

// The node without its head, in a graph of its own (X, W, B, Z and Y of the convolution).
struct ConvBody {
  std::unique_ptr<Graph> graph;
  const Node* node = nullptr;
};
Expected<ConvBody> conv_body(const Node& n);

// `body` (a layer made for conv_body(n)'s node with some tactic) followed by the head.
Expected<std::unique_ptr<CudaLayer>> conv_head_tail(const Node& n, std::unique_ptr<CudaLayer> body);

}  // namespace kiln::cuda
