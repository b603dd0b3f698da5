// Small graph-rewriting helpers shared by the passes.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "ir/graph.hpp"
#include "ops/attention.hpp"

namespace kiln::passes {

// Whether `v` is one of the graph's outputs.
bool is_graph_output(const Graph& g, const Value* v);
// Whether anything reads `v`: a node (here or in a subgraph) or a graph output.
bool is_used(const Graph& g, const Value* v);
// Makes every reader of `from` (nodes of `g` and of its subgraphs, subgraph outputs and the graph's
// outputs) read `to` instead.
void replace_uses(Graph& g, Value* from, Value* to);
// Removes `n`, whose first output always equals its first input (Identity and friends), making its
// readers read the input. When that output is a graph output, the input's producer is made to
// write it instead so the binding keeps its name; returns false (graph untouched) when that is not
// possible (the input is a graph input, a constant, another output or from an enclosing graph) or
// when another output of `n` is used.
bool bypass_node(Graph& g, Node* n);
// The value of a one-element floating or integer constant.
std::optional<double> scalar_constant(const Value* v);
// Whether `v` is a one-element constant within `tol` (relative) of `want`.
bool is_scalar(const Value* v, double want, double tol = 1e-4);
// The only node reading `v`, when exactly one does and `v` is not a graph output.
Node* single_consumer(const Graph& g, const Value* v);
// The only node reading `v`, when exactly one does, reads it as one input only (not Add(x, x)) and
// `v` is not a graph output.
Node* sole_reader_once(const Graph& g, const Value* v);
// Whether `n` is a node of type `op` in the default domain (false for null).
inline bool is_op(const Node* n, const char* op) { return n && n->domain.empty() && n->op_type == op; }
// The producer of `v` when it is a node of type `op` in the default domain.
Node* producer_of(const Value* v, const char* op);
// The other input of a two-input node, given one of them (nullptr when `v` is not an input).
Value* other_input(const Node* n, const Value* v);
// A 2-D tensor transposed ([R, C] -> [C, R]), any dtype: constant weights moved for a GEMM.
Tensor transpose_2d(const Tensor& t);
// Re-expresses a kiln.Attention view (logical `sizes` over [B,H,S,D]) of a tensor laid out as
// `old_dims` for the same data laid out with old dim i at position perm_to_new[i] of `new_dims`,
// the old tensor's element 0 at `new_base`; false when a logical dim would not step along one old
// dim (mha_transpose.cpp).
bool remap_attention_view(AttentionView& v, const std::array<int64_t, 4>& sizes, const Dims& old_dims,
                          const Dims& new_dims, const std::vector<int64_t>& perm_to_new, int64_t new_base);
// Joins node names for the `kiln_fused` attribute (see pass.hpp).
std::string fused_names(const std::vector<const Node*>& nodes);

}  // namespace kiln::passes
