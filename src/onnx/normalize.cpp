#include "onnx/normalize.hpp"

#include <map>

#include "onnx/normalize_rules.hpp"

namespace kiln::onnx_import {

namespace {

using RuleMap = std::multimap<std::string, NormalizeRule>;

const RuleMap& rules_by_op() {
  static const RuleMap map = [] {
    RuleMap m;
    // Legacy (< 7) first: later rules assume opset-7 attributes.
    for (const auto* list : {&legacy_rules(), &attribute_to_input_rules(), &semantic_rules(), &scan_rules()})
      for (const NormalizeRule& r : *list) m.emplace(r.op, r);
    return m;
  }();
  return map;
}

Status normalize_graph(Graph& g, TypeTable& types) {
  Rewriter rw(g, types);
  // Rules add nodes: walk a snapshot, in topological order so inputs' types are known.
  std::vector<Node*> order;
  for (const auto& n : g.nodes()) order.push_back(n.get());
  const RuleMap& rules = rules_by_op();
  for (Node* n : order) {
    for (const Graph* sg : n->subgraphs()) KILN_RETURN_IF_ERROR(normalize_graph(const_cast<Graph&>(*sg), types));
    if (n->domain.empty()) {
      if (n->opset < 7) n->attrs.erase("consumed_inputs");  // a legacy memory hint, removed in 6/7
      // Rules are chosen by the original op: a rule that renames (Upsample -> Resize) emits the
      // final form itself.
      const std::string op = n->op_type;
      auto [lo, hi] = rules.equal_range(op);
      for (auto it = lo; it != hi; ++it)
        if (n->opset < it->second.before_opset) KILN_RETURN_IF_ERROR(it->second.apply(rw, *n));
    }
    for (Node* b : rw.take_before()) rw.infer(*b);
    rw.infer(*n);
    for (Node* a : rw.take_after()) rw.infer(*a);
  }
  return g.topological_sort();
}

}  // namespace

Status normalize_opsets(Graph& g) {
  TypeTable types;
  return normalize_graph(g, types);
}

}  // namespace kiln::onnx_import
