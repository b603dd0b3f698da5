// Helpers shared by the Reduce* ops' inference (ops/reduce.cpp) and their kernels.
#pragma once

#include <cstdint>
#include <vector>

#include "ir/graph.hpp"

namespace kiln {

// Which axes a Reduce* node (opset-18 form) reduces, for an input of rank `rank`:
// empty `axes` means every axis, or none when noop_with_empty_axes is set. Errors name the node
// (axis out of range, repeated axis).
Expected<std::vector<bool>> reduce_axes_mask(const Node& node, int64_t rank,
                                             const std::vector<int64_t>& axes, bool noop_with_empty_axes);

}  // namespace kiln
