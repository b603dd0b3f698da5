#include <set>

#include "ops/op_registry.hpp"
#include "passes/pass.hpp"

namespace kiln {

namespace {

class DeadCode : public Pass {
 public:
  std::string_view name() const override { return "dead-code"; }

  Expected<bool> run(Graph& g) override {
    bool changed = false;
    // Walk backwards so a chain of dead nodes goes in one run.
    for (bool again = true; again;) {
      again = false;
      std::set<const Value*> used(g.outputs.begin(), g.outputs.end());
      for (const auto& n : g.nodes()) {
        for (const Value* v : n->inputs) used.insert(v);
        for (const Graph* sg : n->subgraphs())
          for (const Value* v : sg->outer_scope_values()) used.insert(v);
      }
      std::vector<Node*> dead;
      for (const auto& n : g.nodes()) {
        bool any_used = false;
        for (const Value* o : n->outputs) any_used |= o && used.count(o);
        if (!any_used) dead.push_back(n.get());
      }
      for (Node* n : dead) g.remove_node(n);
      again = !dead.empty();
      changed |= again;
    }
    changed |= trim_unused_outputs(g);
    changed |= g.remove_unused_values() > 0;
    return changed;
  }

 private:
  // Drops trailing optional outputs nothing reads (Dropout's mask, LayerNormalization's mean,
  // MaxPool's indices), so kernels need not compute them. Variadic ops (Split: the output count
  // is the number of pieces) and subgraph ops keep theirs.
  static bool trim_unused_outputs(Graph& g) {
    std::set<const Value*> used(g.outputs.begin(), g.outputs.end());
    for (const auto& n : g.nodes()) {
      for (const Value* v : n->inputs) used.insert(v);
      for (const Graph* sg : n->subgraphs())
        for (const Value* v : sg->outer_scope_values()) used.insert(v);
    }
    bool changed = false;
    for (const auto& n : g.nodes()) {
      if (n->outputs.size() < 2 || !n->subgraphs().empty()) continue;
      const OpSchema* schema = OpRegistry::instance().schema(n->domain, n->op_type);
      if (!schema || schema->max_outputs > 4) continue;
      size_t keep = n->outputs.size();
      while (keep > static_cast<size_t>(std::max(schema->min_outputs, 1)) &&
             (!n->outputs[keep - 1] || !used.count(n->outputs[keep - 1])))
        --keep;
      if (keep == n->outputs.size()) continue;
      for (size_t i = keep; i < n->outputs.size(); ++i)
        if (n->outputs[i] && n->outputs[i]->producer == n.get()) n->outputs[i]->producer = nullptr;
      n->outputs.resize(keep);
      changed = true;
    }
    return changed;
  }
};

}  // namespace

std::unique_ptr<Pass> make_dead_code_pass() { return std::make_unique<DeadCode>(); }

}  // namespace kiln
