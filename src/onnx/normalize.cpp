#include "onnx/normalize.hpp"

namespace kiln::onnx_import {

Status normalize_opsets(Graph& g) {
  for (const auto& n : g.nodes())
    for (const Graph* sg : n->subgraphs()) KILN_RETURN_IF_ERROR(normalize_opsets(const_cast<Graph&>(*sg)));
  return Status::Ok();
}

}  // namespace kiln::onnx_import
