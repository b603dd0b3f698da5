// The opset-normalization rules, grouped by file (internal to the importer).
#pragma once

#include <vector>

#include "onnx/rewriter.hpp"

namespace kiln::onnx_import {

// A rule rewrites nodes of `op` (default domain) whose model opset is below `before_opset`.
struct NormalizeRule {
  const char* op;
  int before_opset;
  Status (*apply)(Rewriter&, Node&);
};

// Attributes that became inputs (axes, split, pads, min/max, k, starts/ends, shape, ratio ...).
const std::vector<NormalizeRule>& attribute_to_input_rules();
// Changed semantics: Softmax-family coercion, Upsample/Resize, BatchNormalization, Scatter, ...
const std::vector<NormalizeRule>& semantic_rules();
// Scan-8 (batched) -> Loop over Scan-9.
const std::vector<NormalizeRule>& scan_rules();
// Forms from before opset 7: legacy broadcasting, per-channel PRelu, string Cast, ...
const std::vector<NormalizeRule>& legacy_rules();

// "node 'x' (Op, opset N): message" as an invalid-model / unsupported Status.
template <typename... Args>
Status node_error(const Node& n, fmt::format_string<Args...> f, Args&&... args) {
  return Status(StatusCode::kInvalidModel, n.describe() + ": " + fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args>
Status node_unsupported(const Node& n, fmt::format_string<Args...> f, Args&&... args) {
  return Status(StatusCode::kUnsupported, n.describe() + ": " + fmt::format(f, std::forward<Args>(args)...));
}

}  // namespace kiln::onnx_import
