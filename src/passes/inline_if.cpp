// If nodes with a constant condition become their chosen branch. PyTorch exports test shapes in
// `if`s (`if x.size(0) > 1`), which constant folding settles once input shapes are fixed; inlining
// then removes the If, so backends without control flow (CUDA) can build the model.
#include <functional>
#include <map>

#include "passes/pass.hpp"

namespace kiln {

namespace {

// Replaces, in `g` and every graph nested in it, reads of values found in `map`.
void remap_reads(Graph& g, const std::map<const Value*, Value*>& map) {
  auto mapped = [&](Value* v) {
    auto it = map.find(v);
    return it == map.end() ? v : it->second;
  };
  for (const auto& n : g.nodes()) {
    for (Value*& v : n->inputs) v = v ? mapped(v) : v;
    for (const Graph* sg : n->subgraphs()) remap_reads(const_cast<Graph&>(*sg), map);
  }
  for (Value*& v : g.outputs) v = mapped(v);
}

// Moves the nodes of `branch` into `g` in place of the If node `n`: values get fresh names in
// `g`, graphs nested in the branch are re-parented to `g`, and Identity nodes bind the If's
// outputs (which keep their names: they may be graph outputs).
void inline_branch(Graph& g, Node* n, const Graph& branch) {
  std::map<const Value*, Value*> map;
  for (const auto& v : branch.values()) {
    Value* nv = g.add_value(v->name.empty() ? "" : g.unique_name(v->name), v->type);
    nv->constant = v->constant;
    map[v.get()] = nv;
  }
  auto mapped = [&](Value* v) {
    auto it = map.find(v);
    return it == map.end() ? v : it->second;
  };
  for (const auto& bn : branch.nodes()) {
    std::vector<Value*> ins, outs;
    for (Value* v : bn->inputs) ins.push_back(v ? mapped(v) : nullptr);
    for (Value* v : bn->outputs) outs.push_back(v ? mapped(v) : nullptr);
    Node* c = g.add_node(bn->op_type, ins, outs, n->name + "/" + bn->name, bn->domain, bn->opset);
    c->attrs = bn->attrs;  // nested graphs are shared, then moved below
    c->plugin = bn->plugin;
    for (const Graph* sg : c->subgraphs()) {
      const_cast<Graph*>(sg)->parent = &g;
      remap_reads(const_cast<Graph&>(*sg), map);
    }
  }
  std::vector<Value*> results;
  for (Value* v : branch.outputs) results.push_back(mapped(v));
  std::vector<Value*> if_outputs = n->outputs;
  const std::string name = n->name;
  const int opset = n->opset;
  g.remove_node(n);  // frees the branches (nested graphs live on in the moved nodes)
  for (size_t i = 0; i < if_outputs.size() && i < results.size(); ++i)
    if (if_outputs[i]) g.add_node("Identity", {results[i]}, {if_outputs[i]}, name + "/output_" + std::to_string(i), "", opset);
}

// The branch a constant condition selects, or null.
const Graph* chosen_branch(const Node& n) {
  if (n.op_type != "If" || !n.domain.empty() || !n.has_input(0)) return nullptr;
  const Value* cond = n.inputs[0];
  if (!cond->constant || cond->constant->dtype() != DType::kBool || cond->constant->numel() != 1) return nullptr;
  const Graph* branch = n.attrs.graph(*cond->constant->data<bool>() ? "then_branch" : "else_branch");
  // Inference has checked the counts; a malformed If is left for it to report.
  if (!branch || branch->outputs.size() != n.outputs.size() || !branch->inputs.empty()) return nullptr;
  return branch;
}

bool inline_ifs(Graph& g) {
  bool changed = false;
  for (bool again = true; again;) {  // an inlined branch may bring constant-condition Ifs along
    again = false;
    for (const auto& n : g.nodes()) {
      if (const Graph* branch = chosen_branch(*n)) {
        inline_branch(g, n.get(), *branch);
        again = changed = true;
        break;  // nodes() changed
      }
    }
  }
  for (const auto& n : g.nodes())
    for (const Graph* sg : n->subgraphs()) changed |= inline_ifs(const_cast<Graph&>(*sg));
  return changed;
}

class InlineConstantIf : public Pass {
 public:
  std::string_view name() const override { return "inline-constant-if"; }
  Expected<bool> run(Graph& g) override { return inline_ifs(g); }
};

}  // namespace

std::unique_ptr<Pass> make_inline_constant_if_pass() { return std::make_unique<InlineConstantIf>(); }

}  // namespace kiln
