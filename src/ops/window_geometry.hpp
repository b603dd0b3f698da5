// Sliding-window geometry shared by Conv and the pooling ops (inference and CPU kernels): the
// kernel_shape/strides/dilations/pads/auto_pad attributes and the output sizes they give.
#pragma once

#include "ir/graph.hpp"

namespace kiln {

enum class AutoPad { kNotSet, kSameUpper, kSameLower, kValid };

// "NOTSET" (or absent), "SAME_UPPER", "SAME_LOWER", "VALID"; anything else is an error naming the node.
Expected<AutoPad> read_auto_pad(const Node& node);

// The resolved window of an N-d sliding op. Spatial sizes are -1 where unknown (import time).
struct Window {
  Dims kernel, strides, dilations;
  Dims pads_begin, pads_end;  // as used: auto_pad SAME computes them from the input size
  Dims in, out;

  size_t rank() const { return kernel.size(); }
  // The extent one window covers: (k - 1) * d + 1.
  int64_t span(size_t i) const { return (kernel[i] - 1) * dilations[i] + 1; }
};

// Reads the window attributes for in_spatial.size() spatial dims and computes the output sizes.
// kernel_from_weights (Conv: W's spatial dims) replaces a missing kernel_shape and must match a
// present one. ceil_mode rounds the output size up (pools); a window that would start inside the
// end padding is dropped, as in PyTorch and ONNX opset 19+. Errors name the node and the values.
Expected<Window> resolve_window(const Node& node, const Dims& in_spatial, const Dims* kernel_from_weights,
                                bool ceil_mode);

// ConvTranspose's window: out = stride * (in - 1) + output_padding + span - pads, or the
// output_shape attribute with pads derived from it (auto_pad SAME_* gives out = in * stride).
// `kernel` is W's spatial dims; -1 where unknown.
Expected<Window> resolve_transposed_window(const Node& node, const Dims& in_spatial, const Dims& kernel);

// Reads an optional list attribute of `count` values (empty or absent: `def`); error on another count.
Expected<Dims> read_spatial_ints(const Node& node, const char* name, size_t count, int64_t def);

}  // namespace kiln
