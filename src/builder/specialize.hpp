// Specializing a plan's graph with dynamic inputs to one set of input shapes: a copy of the graph
// with those shapes fixed, every value's shape inferred and what became constant folded (shape
// arithmetic such as Shape -> Gather -> Concat -> Reshape). Used by the builder (at a profile's opt
// and max shapes) and by the CUDA engine (once per distinct input-shape set, then cached).
#pragma once

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
Expected<GraphPtr> specialize_graph(const Graph& graph, const std::map<std::string, Dims>& input_shapes,
                                    const std::set<std::string>& disabled_passes = {});

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
