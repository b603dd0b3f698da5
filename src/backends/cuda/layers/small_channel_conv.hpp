// kiln.FusedConv in NHWC with very few input channels (a grayscale or RGB stem: C <= 4, C * kh * kw <= 160)
// as a direct kernel: tensor-core convolutions pad such a reduction to their tile and spend their
// time on it, while the output write is the real cost. Tactic "direct_smallc", timed with the rest.
#pragma once

#include "backends/cuda/cuda_layer.hpp"

namespace kiln::cuda {

inline constexpr const char* kSmallChannelTactic = "direct_smallc";

bool small_channel_conv_fits(const Node& n);
Expected<std::unique_ptr<CudaLayer>> small_channel_conv_create(const Node& n);

}  // namespace kiln::cuda
