// Layout helpers of kiln's NHWC ops: kiln.FusedConv (ops/fused_conv.cpp) and kiln.NHWC
// (ops/nhwc_op.cpp).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "ops/window_geometry.hpp"

namespace kiln {

inline constexpr const char* kKilnDomain = "kiln";

// Transpose perms between (N, C, spatial...) and (N, spatial..., C) for a tensor of `rank`:
// y = Transpose(x, perm) has y.dim(i) = x.dim(perm[i]).
std::vector<int64_t> nhwc_to_nchw_perm(size_t rank);  // NHWC data -> NCHW: {0, r-1, 1, ..., r-2}
std::vector<int64_t> nchw_to_nhwc_perm(size_t rank);  // NCHW data -> NHWC: {0, 2, ..., r-1, 1}

// Ops that kiln.NHWC can wrap (attribute `op`).
bool nhwc_wrappable(const std::string& op);
// The pooling window of a pool node (an ONNX pool or its kiln.NHWC form) over NCHW dims
// `nchw_in`, when cuDNN's NHWC pooling computes it exactly (no dilation, symmetric pads smaller
// than the kernel, no ceil_mode overhang); unsupported otherwise.
Expected<Window> nhwc_pool_window(const Node& n, const Dims& nchw_in);

}  // namespace kiln
