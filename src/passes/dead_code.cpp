#include <set>

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
    changed |= g.remove_unused_values() > 0;
    return changed;
  }
};

}  // namespace

std::unique_ptr<Pass> make_dead_code_pass() { return std::make_unique<DeadCode>(); }

}  // namespace kiln
