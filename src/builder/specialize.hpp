// Specializing a plan's graph with dynamic inputs to one set of input shapes: a copy of the graph
// with those shapes fixed, every value's shape inferred and what became constant folded (shape
// arithmetic such as Shape -> Gather -> Concat -> Reshape). Used by the builder (at a profile's opt
// and max shapes) and by the CUDA engine (once per distinct input-shape set, then cached).
#pragma once

#include <functional>
#include <map>
#include <set>
#include <string>

#include "ir/graph.hpp"

namespace kiln {

// A deep copy; constants share their tensors' memory with the original.
GraphPtr clone_graph(const Graph& graph, Graph* parent = nullptr);

// Clones `graph`, fixes the named inputs' shapes, infers shapes and folds constants. Nodes keep
// their names and output value names, so a node of the result can be matched to the original by
// its first output's name.
// `fixed_values` also fixes the shapes of node outputs by value name: the data-dependent outputs
// (NonZero, ...) whose actual dims a staged run has learned (docs/dynamic-shapes.md).
Expected<GraphPtr> specialize_graph(const Graph& graph, const std::map<std::string, Dims>& input_shapes,
                                    const std::set<std::string>& disabled_passes = {},
                                    const std::map<std::string, Dims>& fixed_values = {});

// The first node at or after `begin` with an output (not a constant) whose shape is not static;
// nodes.size() when there is none. In a specialized graph that is a data-dependent op (its output
// size depends on values, not shapes) or a node fed by one.
size_t first_unresolved_node(const Graph& graph, size_t begin = 0);

// The largest output dims of a data-dependent node, or an error saying why it has none (no such
// layer, or its shape depends on device values in a way the backend cannot bound).
using OutputBounds = std::function<Expected<std::vector<Dims>>(const Node&)>;

// For the builder of a data-dependent plan: specializes `graph` and then, node by node, fixes
// each unresolved node's outputs to `bounds` and specializes again, until every shape is static.
// The result is the graph at its largest data-dependent sizes (for support checks, tactics and
// sizing); `resolved` receives the keys (node_key) of the nodes that were bounded. An unresolved
// node that `bounds` refuses is an error naming it.
Expected<GraphPtr> specialize_at_bounds(const Graph& graph, const std::map<std::string, Dims>& input_shapes,
                                        const OutputBounds& bounds, const std::set<std::string>& disabled_passes = {},
                                        std::vector<std::string>* resolved = nullptr);

// Removes nodes whose every output shape inference already knows as a constant (Shape or Size of
// a static value, ...), even when an input is not constant (the folding pass needs constant
// inputs). Returns how many.
size_t drop_known_nodes(Graph& graph);

// The builder's graph passes (constant folding, constant-If inlining, dead code) plus
// drop_known_nodes, to a fixed point: for graphs whose input shapes are all fixed.
Status fold_static_graph(Graph& graph, const std::set<std::string>& disabled_passes = {});

// The key naming a node across a graph and its specializations: its first output's name.
std::string node_key(const Node& node);

}  // namespace kiln
