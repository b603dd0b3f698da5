// Pad amounts, shared by Pad/CenterCropPad inference and their kernels.
#pragma once

#include <optional>
#include <vector>

#include "ops/op_registry.hpp"

namespace kiln {

// Elements added before and after each axis (negative values crop).
struct PadAmount {
  int64_t begin = 0, end = 0;
};

// Pad's per-axis amounts from the pads input ([x1_begin, x2_begin, ..., x1_end, x2_end, ...]) for the
// given axes (all axes when absent); errors name the node.
Expected<std::vector<PadAmount>> pad_amounts(const Node& node, int64_t rank, const std::vector<int64_t>& pads,
                                             const std::optional<std::vector<int64_t>>& axes);

// CenterCropPad's per-axis amounts to reach `shape` on `axes` (all axes when the attribute is absent)
// from `dims`: centered, the odd element going to the end.
Expected<std::vector<PadAmount>> center_crop_pad_amounts(const Node& node, const Dims& dims,
                                                         const std::vector<int64_t>& shape);

}  // namespace kiln
