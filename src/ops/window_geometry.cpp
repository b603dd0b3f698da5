#include "ops/window_geometry.hpp"

#include <algorithm>

#include "util/error.hpp"

namespace kiln {

Expected<AutoPad> read_auto_pad(const Node& node) {
  std::string s = node.attrs.s("auto_pad", "NOTSET");
  if (s == "NOTSET" || s.empty()) return AutoPad::kNotSet;
  if (s == "SAME_UPPER") return AutoPad::kSameUpper;
  if (s == "SAME_LOWER") return AutoPad::kSameLower;
  if (s == "VALID") return AutoPad::kValid;
  return invalid_model("{}: auto_pad '{}' is not one of NOTSET, SAME_UPPER, SAME_LOWER, VALID",
                       node.describe(), s);
}

Expected<Dims> read_spatial_ints(const Node& node, const char* name, size_t count, int64_t def) {
  Dims v = node.attrs.ints(name);
  if (v.empty()) return Dims(count, def);
  if (v.size() != count)
    return invalid_model("{}: attribute {} has {} values [{}], expected {} (one per spatial dim)",
                         node.describe(), name, v.size(), fmt::join(v, ","), count);
  return v;
}

namespace {
int64_t ceil_div(int64_t a, int64_t b) { return a >= 0 ? (a + b - 1) / b : -((-a) / b); }
}  // namespace

Expected<Window> resolve_window(const Node& node, const Dims& in_spatial, const Dims* kernel_from_weights,
                                bool ceil_mode) {
  const size_t nd = in_spatial.size();
  Window w;
  w.in = in_spatial;
  KILN_ASSIGN_OR_RETURN(AutoPad auto_pad, read_auto_pad(node));
  if (node.attrs.has("kernel_shape")) {
    KILN_ASSIGN_OR_RETURN(w.kernel, read_spatial_ints(node, "kernel_shape", nd, 1));
    if (kernel_from_weights && *kernel_from_weights != w.kernel)
      return invalid_model("{}: kernel_shape [{}] does not match the weights' spatial dims [{}]",
                           node.describe(), fmt::join(w.kernel, ","), fmt::join(*kernel_from_weights, ","));
  } else if (kernel_from_weights) {
    w.kernel = *kernel_from_weights;
  } else {
    return invalid_model("{}: attribute kernel_shape is required", node.describe());
  }
  KILN_ASSIGN_OR_RETURN(w.strides, read_spatial_ints(node, "strides", nd, 1));
  KILN_ASSIGN_OR_RETURN(w.dilations, read_spatial_ints(node, "dilations", nd, 1));
  KILN_ASSIGN_OR_RETURN(Dims pads, read_spatial_ints(node, "pads", 2 * nd, 0));
  for (size_t i = 0; i < nd; ++i) {
    if (w.kernel[i] < 1 || w.strides[i] < 1 || w.dilations[i] < 1)
      return invalid_model("{}: kernel_shape [{}], strides [{}] and dilations [{}] must be positive",
                           node.describe(), fmt::join(w.kernel, ","), fmt::join(w.strides, ","),
                           fmt::join(w.dilations, ","));
  }
  for (int64_t p : pads)
    if (p < 0) return invalid_model("{}: pads [{}] must not be negative", node.describe(), fmt::join(pads, ","));

  w.pads_begin.assign(nd, 0);
  w.pads_end.assign(nd, 0);
  w.out.assign(nd, -1);
  for (size_t i = 0; i < nd; ++i) {
    const int64_t in = in_spatial[i], s = w.strides[i], span = w.span(i);
    switch (auto_pad) {
      case AutoPad::kNotSet: {
        w.pads_begin[i] = pads[i];
        w.pads_end[i] = pads[nd + i];
        if (in < 0) break;
        int64_t room = in + pads[i] + pads[nd + i] - span;
        if (room < 0) break;  // reported below
        int64_t out = (ceil_mode ? ceil_div(room, s) : room / s) + 1;
        // The last window must start inside the input or the begin padding.
        if (ceil_mode && (out - 1) * s >= in + pads[i]) --out;
        w.out[i] = out;
        break;
      }
      case AutoPad::kValid:
        if (in >= 0 && in >= span) w.out[i] = (in - span) / s + 1;
        break;
      case AutoPad::kSameUpper:
      case AutoPad::kSameLower: {
        if (in < 0) break;
        int64_t out = ceil_div(in, s);
        int64_t total = std::max<int64_t>(0, (out - 1) * s + span - in);
        // SAME_UPPER puts the odd pixel at the end, SAME_LOWER at the beginning.
        int64_t small = total / 2, big = total - small;
        w.pads_begin[i] = auto_pad == AutoPad::kSameUpper ? small : big;
        w.pads_end[i] = auto_pad == AutoPad::kSameUpper ? big : small;
        w.out[i] = out;
        break;
      }
    }
    if (in >= 0 && w.out[i] < 0)
      return invalid_model(
          "{}: spatial dim {} of size {} (pads {}+{}) is smaller than the window extent {} "
          "(kernel {}, dilation {})",
          node.describe(), i, in, w.pads_begin[i], w.pads_end[i], span, w.kernel[i], w.dilations[i]);
  }
  return w;
}

Expected<Window> resolve_transposed_window(const Node& node, const Dims& in_spatial, const Dims& kernel) {
  const size_t nd = in_spatial.size();
  Window w;
  w.in = in_spatial;
  KILN_ASSIGN_OR_RETURN(AutoPad auto_pad, read_auto_pad(node));
  if (node.attrs.has("kernel_shape")) {
    KILN_ASSIGN_OR_RETURN(w.kernel, read_spatial_ints(node, "kernel_shape", nd, 1));
    for (size_t i = 0; i < nd; ++i)
      if (kernel[i] >= 0 && kernel[i] != w.kernel[i])
        return invalid_model("{}: kernel_shape [{}] does not match the weights' spatial dims [{}]",
                             node.describe(), fmt::join(w.kernel, ","), fmt::join(kernel, ","));
  } else {
    w.kernel = kernel;
  }
  KILN_ASSIGN_OR_RETURN(w.strides, read_spatial_ints(node, "strides", nd, 1));
  KILN_ASSIGN_OR_RETURN(w.dilations, read_spatial_ints(node, "dilations", nd, 1));
  KILN_ASSIGN_OR_RETURN(Dims pads, read_spatial_ints(node, "pads", 2 * nd, 0));
  KILN_ASSIGN_OR_RETURN(Dims out_pad, read_spatial_ints(node, "output_padding", nd, 0));
  Dims out_shape = node.attrs.ints("output_shape");
  // Some exporters write the full N, C, spatial... shape.
  if (out_shape.size() == nd + 2) out_shape.erase(out_shape.begin(), out_shape.begin() + 2);
  if (!out_shape.empty() && out_shape.size() != nd)
    return invalid_model("{}: output_shape [{}] has {} values, expected {} (one per spatial dim)",
                         node.describe(), fmt::join(out_shape, ","), out_shape.size(), nd);
  for (size_t i = 0; i < nd; ++i) {
    if (w.strides[i] < 1 || w.dilations[i] < 1 || (w.kernel[i] < 1 && w.kernel[i] != -1))
      return invalid_model("{}: kernel_shape [{}], strides [{}] and dilations [{}] must be positive",
                           node.describe(), fmt::join(w.kernel, ","), fmt::join(w.strides, ","),
                           fmt::join(w.dilations, ","));
    if (out_pad[i] < 0 || out_pad[i] >= std::max(w.strides[i], w.dilations[i]))
      return invalid_model("{}: output_padding [{}] must be in [0, max(stride, dilation))", node.describe(),
                           fmt::join(out_pad, ","));
  }
  for (int64_t p : pads)
    if (p < 0) return invalid_model("{}: pads [{}] must not be negative", node.describe(), fmt::join(pads, ","));

  w.pads_begin.assign(nd, 0);
  w.pads_end.assign(nd, 0);
  w.out.assign(nd, -1);
  for (size_t i = 0; i < nd; ++i) {
    if (!out_shape.empty() || auto_pad == AutoPad::kSameUpper || auto_pad == AutoPad::kSameLower) {
      int64_t target = !out_shape.empty() ? out_shape[i] : (w.in[i] >= 0 ? w.in[i] * w.strides[i] : -1);
      w.out[i] = target;
      if (target < 0 || w.in[i] < 0 || w.kernel[i] < 0) continue;
      int64_t total = w.strides[i] * (w.in[i] - 1) + out_pad[i] + w.span(i) - target;
      // A negative total (output_shape larger than the full result) pads with zeros at the end.
      int64_t half = total / 2;
      bool upper = auto_pad == AutoPad::kSameUpper;
      w.pads_begin[i] = upper ? half : total - half;
      w.pads_end[i] = upper ? total - half : half;
      if (w.pads_begin[i] < 0) {  // keep the begin side non-negative: all extra room goes to the end
        w.pads_end[i] += w.pads_begin[i];
        w.pads_begin[i] = 0;
      }
    } else {
      if (auto_pad == AutoPad::kNotSet) {
        w.pads_begin[i] = pads[i];
        w.pads_end[i] = pads[nd + i];
      }
      if (w.in[i] < 0 || w.kernel[i] < 0) continue;
      w.out[i] = w.strides[i] * (w.in[i] - 1) + out_pad[i] + w.span(i) - w.pads_begin[i] - w.pads_end[i];
      if (w.out[i] < 0)
        return invalid_model("{}: pads [{}] remove more than the {} elements of spatial dim {}",
                             node.describe(), fmt::join(pads, ","), w.out[i] + w.pads_begin[i] + w.pads_end[i], i);
    }
  }
  return w;
}

}  // namespace kiln
