#include "passes/pass_util.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace kiln::passes {

namespace {

void replace_in(Graph& g, Value* from, Value* to) {
  for (const auto& n : g.nodes()) {
    for (Value*& v : n->inputs)
      if (v == from) v = to;
    // Subgraphs are held by shared pointers in the node's attributes; they are ours to edit.
    for (const Graph* sg : n->subgraphs()) {
      Graph* mut = const_cast<Graph*>(sg);
      replace_in(*mut, from, to);
      for (Value*& o : mut->outputs)
        if (o == from) o = to;
    }
  }
}

}  // namespace

bool is_graph_output(const Graph& g, const Value* v) {
  return std::find(g.outputs.begin(), g.outputs.end(), v) != g.outputs.end();
}

bool is_used(const Graph& g, const Value* v) { return is_graph_output(g, v) || !g.consumers(v).empty(); }

void replace_uses(Graph& g, Value* from, Value* to) {
  replace_in(g, from, to);
  for (Value*& o : g.outputs)
    if (o == from) o = to;
}

bool bypass_node(Graph& g, Node* n) {
  if (n->inputs.empty() || !n->inputs[0] || n->outputs.empty() || !n->outputs[0]) return false;
  for (size_t i = 1; i < n->outputs.size(); ++i)
    if (n->outputs[i] && is_used(g, n->outputs[i])) return false;
  Value* in = n->inputs[0];
  Value* out = n->outputs[0];
  if (!is_graph_output(g, out)) {
    g.remove_node(n);
    replace_uses(g, out, in);
    return true;
  }
  // `out` is bound by name: keep it, and let the input's producer write it directly.
  Node* p = in->producer;
  if (!p || p->owner != &g || in->is_constant() || is_graph_output(g, in) ||
      std::find(g.inputs.begin(), g.inputs.end(), in) != g.inputs.end())
    return false;
  g.remove_node(n);
  replace_uses(g, in, out);
  for (Value*& o : p->outputs)
    if (o == in) o = out;
  out->producer = p;
  in->producer = nullptr;
  return true;
}

std::optional<double> scalar_constant(const Value* v) {
  if (!v || !v->is_constant() || v->constant->numel() != 1) return std::nullopt;
  DType t = v->constant->dtype();
  if (!is_floating(t) && !is_integer(t)) return std::nullopt;
  return v->constant->scalar_as_double();
}

bool is_scalar(const Value* v, double want, double tol) {
  auto s = scalar_constant(v);
  return s && std::abs(*s - want) <= tol * std::max(1.0, std::abs(want));
}

Node* single_consumer(const Graph& g, const Value* v) {
  if (is_graph_output(g, v)) return nullptr;
  auto c = g.consumers(v);
  return c.size() == 1 ? c[0] : nullptr;
}

Node* sole_reader_once(const Graph& g, const Value* v) {
  Node* r = single_consumer(g, v);
  return r && std::count(r->inputs.begin(), r->inputs.end(), v) == 1 ? r : nullptr;
}

Node* producer_of(const Value* v, const char* op) {
  if (!v || !v->producer) return nullptr;
  Node* p = v->producer;
  return p->domain.empty() && p->op_type == op ? p : nullptr;
}

Value* other_input(const Node* n, const Value* v) {
  if (n->inputs.size() != 2) return nullptr;
  if (n->inputs[0] == v) return n->inputs[1];
  if (n->inputs[1] == v) return n->inputs[0];
  return nullptr;
}

Tensor transpose_2d(const Tensor& t) {
  const int64_t r = t.dim(0), c = t.dim(1);
  const size_t es = dtype_size(t.dtype());
  Tensor out(t.dtype(), {c, r});
  const auto* src = static_cast<const unsigned char*>(t.raw_data());
  auto* dst = static_cast<unsigned char*>(out.raw_data());
  for (int64_t i = 0; i < r; ++i)
    for (int64_t j = 0; j < c; ++j)
      std::memcpy(dst + static_cast<size_t>(j * r + i) * es, src + static_cast<size_t>(i * c + j) * es, es);
  return out;
}

std::string fused_names(const std::vector<const Node*>& nodes) {
  std::string s;
  for (const Node* n : nodes) {
    if (!s.empty()) s += ",";
    s += n->name.empty() ? n->op_type : n->name + ":" + n->op_type;
  }
  return s;
}

}  // namespace kiln::passes
