// Slice parameters, shared by Slice's inference and its kernels.
#pragma once

#include <optional>
#include <vector>

#include "ops/op_registry.hpp"

namespace kiln {

// One sliced axis as given: starts/ends may be negative or out of range (INT64_MAX is common).
struct SliceSpec {
  int64_t axis = 0;  // normalized to [0, rank)
  int64_t start = 0, end = 0, step = 1;
};

// Validates Slice's inputs (lengths, axes in range and distinct, steps non-zero) for a given rank;
// errors name the node. Absent axes mean 0..n-1, absent steps mean 1.
Expected<std::vector<SliceSpec>> slice_specs(const Node& node, int64_t rank, const std::vector<int64_t>& starts,
                                             const std::vector<int64_t>& ends,
                                             const std::optional<std::vector<int64_t>>& axes,
                                             const std::optional<std::vector<int64_t>>& steps);

// The first index and element count of a slice of a dim of size `dim`, after clamping.
struct SliceRange {
  int64_t first = 0, count = 0;
};
SliceRange slice_range(int64_t dim, const SliceSpec& s);

}  // namespace kiln
