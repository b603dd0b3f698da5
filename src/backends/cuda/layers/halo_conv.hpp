// kiln.FusedConv as the Hopper halo-tile kernel (halo_conv_kernels.hpp): float16 NHWC 3x3, stride 1,
// pads 1, 64 inputs and outputs (UNet's full-resolution layers, ResNet's first stage). Tactic "halo3x3", timed with cuDNN's; offered on sm_90 GPUs when the build has sm_90a code.
#pragma once

#include "backends/cuda/cuda_layer.hpp"

namespace kiln::cuda {

inline constexpr const char* kHaloConvTactic = "halo3x3";

bool halo_conv_fits(const Node& n);
Expected<std::unique_ptr<CudaLayer>> halo_conv_create(const Node& n);

}  // namespace kiln::cuda
