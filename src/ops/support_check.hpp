// Lists, in one error, every op of a graph (subgraphs included) that a backend cannot run.
#pragma once

#include <functional>
#include <string_view>

#include "ir/graph.hpp"

namespace kiln {

// Unsupported: "the CPU backend does not support 2 ops: Foo (opset 13; nodes 'a', 'b'), ...".
Status check_ops_supported(const Graph& graph, const std::function<bool(const Node&)>& supported,
                           std::string_view backend_name);

}  // namespace kiln
