// A float16 NHWC ConvTranspose whose kernel equals its stride (UNet's 2x2 stride-2 upsampling) as
// kiln's Hopper GEMM (conv_transpose_tma_kernels.hpp), which stores each product tile straight into
// its output pixels: tactics "tma_wgmma" (tiles of 256 product columns) and "tma_wgmma_n128" (128:
// twice the tiles, for products too small to fill the GPU otherwise), timed with cuBLASLt's and
// cuDNN's; offered on sm_90 GPUs when the build has sm_90a code and C and M are multiples of 64.
#pragma once

#include "backends/cuda/cuda_layer.hpp"

namespace kiln::cuda {

inline constexpr const char* kConvTransposeTmaTactic = "tma_wgmma";
inline constexpr const char* kConvTransposeTmaNarrowTactic = "tma_wgmma_n128";

// The node's tactics of this kind (empty where it does not fit or the GPU cannot run it).
std::vector<std::string> conv_transpose_tma_tactics(const Node& n);
bool is_conv_transpose_tma_tactic(const std::string& tactic);
Expected<std::unique_ptr<CudaLayer>> conv_transpose_tma_create(const Node& n, const std::string& tactic);

}  // namespace kiln::cuda
