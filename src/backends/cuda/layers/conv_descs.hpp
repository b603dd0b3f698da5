// cuDNN descriptors and algorithm queries shared by the Conv/ConvTranspose layer (conv.cpp) and
// the kiln.FusedConv layer (fused_conv.cpp).
#pragma once

#include <string>
#include <vector>

#include "backends/cuda/layers/axis_map_layer.hpp"
#include "backends/cuda/layers/nn_util.hpp"

namespace kiln::cuda {

// ConvTranspose, or its NHWC form (kiln.NHWC with op ConvTranspose).
bool is_transposed_conv(const Node& n);
// True for a kiln.FusedConv in NHWC layout (X, Z, Y (N, H, W, C), W (M, kh, kw, C/group)) and a
// kiln.NHWC ConvTranspose (W (C, kh, kw, M/group)).
bool is_nhwc_conv(const Node& n);

// The node in cuDNN's terms: NCHW-ordered dims of rank >= 4 (1-D convolutions get a unit H dim)
// and one padding per spatial dim, the begin side's (NHWC nodes: dims permuted to NCHW order).
struct ConvGeometry {
  Dims x, w, y;
  std::vector<int> pads, strides, dilations;
  int group = 1;
  bool nhwc = false;
  Dims x_node;      // X as the node has it, in the node's layout (x is X after pre-padding)
  AxisMaps prepad;  // X -> padded X index maps per axis of the node's layout; empty when equal
};

// Unsupported (with the reason) when cuDNN cannot express the node exactly.
Expected<ConvGeometry> conv_geometry(const Node& n);

cudnnMathType_t default_math(const std::string& precision);
bool math_allowed(cudnnMathType_t m, const std::string& precision);
std::string conv_tactic_name(const std::string& prefix, int algo, cudnnMathType_t math);

// The descriptors of one node, for queries and for running.
struct ConvDescs {
  TensorDesc x, y;
  FilterDesc w;
  ConvDesc conv;
  DType dtype = DType::kUndefined;
  bool transposed = false;
  ConvGeometry geo;

  Status init(const Node& n);
  Status set_math(cudnnMathType_t m);

  // Algorithms cuDNN's heuristics offer, best guess first: (algo, math, workspace bytes).
  struct Candidate {
    int algo;
    cudnnMathType_t math;
    size_t memory;
  };
  Expected<std::vector<Candidate>> candidates(cudnnHandle_t h) const;
  Expected<size_t> workspace_for(cudnnHandle_t h, int algo) const;
};

// The Conv/ConvTranspose layer of conv.cpp (also runs the NHWC ConvTranspose).
CudaLayerFactory conv_layer_factory();

// A descriptor of `dims` (NCHW order, rank 4 or 5) stored in NHWC order when `nhwc`.
Status set_conv_tensor(TensorDesc& desc, cudnnDataType_t type, const Dims& dims, bool nhwc);

}  // namespace kiln::cuda
