// GraphProto -> kiln::Graph (internal to the importer): values, constants, nodes, attributes and
// subgraphs, with the checks that give errors naming the file, node and value.
#pragma once

#include <onnx/onnx_pb.h>

#include <map>
#include <string>

#include "ir/graph.hpp"

namespace kiln::onnx_import {

struct ImportContext {
  std::string file;      // for messages ("model.onnx")
  std::string base_dir;  // external data folder
  std::map<std::string, int64_t> opsets;  // domain ("" = ai.onnx) -> version
};

// Fills `g` (whose `parent` is set for a subgraph) from `proto`. Outer-scope names resolve through
// g.parent. Nodes are left in topological order.
Status import_graph(const onnx::GraphProto& proto, Graph& g, const ImportContext& ctx);

// The default domain spelled "" (ONNX also allows "ai.onnx").
inline std::string canonical_domain(const std::string& d) { return d == "ai.onnx" ? std::string() : d; }

}  // namespace kiln::onnx_import
