// kiln.FusedConv, NHWC 1x1 (stride 1, no padding, group 1) with very few output channels (M <= 8: a
// segmentation head's class logits) as a direct kernel: one thread per pixel reads its C channels
// once and forms all M dot products. cuDNN's tensor-core kernels pad M to their tile and read X at a
// fraction of the bandwidth. Tactic "direct_narrow", timed with the rest.
#pragma once

#include "backends/cuda/cuda_layer.hpp"

namespace kiln::cuda {

inline constexpr const char* kNarrowConvTactic = "direct_narrow";

bool narrow_conv_fits(const Node& n);
Expected<std::unique_ptr<CudaLayer>> narrow_conv_create(const Node& n);

}  // namespace kiln::cuda
