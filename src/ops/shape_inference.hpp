// Whole-graph shape and type inference (run after import and after passes).
#pragma once

#include "ir/graph.hpp"

namespace kiln {

struct ShapeInferenceOptions {
  // Ops without a schema are left with unknown output types instead of failing.
  bool allow_unknown_ops = true;
};

// Infers every value's dtype and shape in topological order, recursing into subgraphs. Declared
// types (from the model) are kept where inference knows less. Fails naming the node on
// inconsistent inputs.
Status infer_shapes(Graph& graph, const ShapeInferenceOptions& options = {});

}  // namespace kiln
