// kiln.FusedConv in NHWC whose reduction kh * kw * C is at most 16 (a grayscale 3x3 stem), float16
// or bfloat16, with 16, 32 or 64 outputs and no residual, as one tensor-core product per 16 output
// pixels (smallk_conv.cu). Tactic "mma_smallk", timed with the rest.
#pragma once

#include "backends/cuda/cuda_layer.hpp"

namespace kiln::cuda {

inline constexpr const char* kSmallkConvTactic = "mma_smallk";

bool smallk_conv_fits(const Node& n);
Expected<std::unique_ptr<CudaLayer>> smallk_conv_create(const Node& n);

}  // namespace kiln::cuda
