// kiln.MaskedSoftmax (ops/masked_softmax.cpp): y = Softmax(x * scale + mask) over x's last dim.
#pragma once

#include <optional>

#include "ir/shape.hpp"

namespace kiln {

// The element strides of `mask` seen broadcast to `x` (one per dim of x, 0 where broadcast), or
// nullopt when mask does not broadcast to x without growing it.
std::optional<Dims> masked_softmax_mask_strides(const Dims& x, const Dims& mask);

}  // namespace kiln
