// Resize (opset 19 semantics): attribute parsing and output-size computation, shared by the
// inference and the kernels.
#pragma once

#include <optional>
#include <vector>

#include "ops/op_registry.hpp"

namespace kiln {

struct ResizeAttrs {
  enum class Mode { kNearest, kLinear, kCubic } mode = Mode::kNearest;
  enum class Coord {
    kHalfPixel, kHalfPixelSymmetric, kPytorchHalfPixel, kAlignCorners, kAsymmetric, kTfCropAndResize
  } coord = Coord::kHalfPixel;
  enum class Nearest { kRoundPreferFloor, kRoundPreferCeil, kFloor, kCeil } nearest = Nearest::kRoundPreferFloor;
  enum class AspectPolicy { kStretch, kNotLarger, kNotSmaller } policy = AspectPolicy::kStretch;
  double cubic_a = -0.75;
  bool exclude_outside = false;
  bool antialias = false;
  double extrapolation_value = 0.0;
  std::vector<int64_t> axes;  // normalized; all axes when the attribute is absent
};

// Validates the attributes for an input of the given rank; errors name the node and the value.
Expected<ResizeAttrs> resize_attrs(const Node& node, int64_t rank);

// The output dims (unknown where they cannot be known) and, per axis, the scale used by the
// coordinate transform (1 for axes that are not resized). `scales`/`sizes`/`roi` are per entry of
// attrs.axes; roi is [starts..., ends...]. Exactly one of scales and sizes must be given.
struct ResizePlan {
  std::vector<Dim> out;
  std::vector<double> scales;
  std::vector<double> roi_start, roi_end;  // per axis of the input
};
Expected<ResizePlan> resize_plan(const Node& node, const ResizeAttrs& attrs, const std::vector<Dim>& in,
                                 const std::optional<std::vector<double>>& scales,
                                 const std::optional<std::vector<int64_t>>& sizes,
                                 const std::optional<std::vector<double>>& roi);

}  // namespace kiln
