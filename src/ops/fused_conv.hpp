// kiln.FusedConv layout helpers (the op is documented in ops/fused_conv.cpp).
#pragma once

#include <cstdint>
#include <vector>

namespace kiln {

inline constexpr const char* kKilnDomain = "kiln";

// Transpose perms between (N, C, spatial...) and (N, spatial..., C) for a tensor of `rank`:
// y = Transpose(x, perm) has y.dim(i) = x.dim(perm[i]).
std::vector<int64_t> nhwc_to_nchw_perm(size_t rank);  // NHWC data -> NCHW: {0, r-1, 1, ..., r-2}
std::vector<int64_t> nchw_to_nhwc_perm(size_t rank);  // NCHW data -> NHWC: {0, 2, ..., r-1, 1}

}  // namespace kiln
