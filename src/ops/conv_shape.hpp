// Conv's output shape, shared by Conv, ConvInteger and QLinearConv (defined in ops/conv.cpp).
#pragma once

#include "ops/op_registry.hpp"

namespace kiln {

// X is (N, C, spatial...), W (M, C / group, kernel...), `bias` (when given) 1-D of M values. Checks
// ranks, channel counts and group (not dtypes); the spatial sizes follow the window attributes.
// Unknown rank when neither X's nor W's rank is known. Errors name the node.
Expected<Shape> conv_output_shape(const InferContext& ctx, const Shape& x, const Shape& w, const Shape* bias,
                                  int64_t group);

}  // namespace kiln
