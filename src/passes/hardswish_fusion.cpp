// hardswish-fusion: Clip(x + 3, 0, 6) / 6 (or * 1/6) -> HardSigmoid(x) (alpha 1/6, beta 0.5), then
// x * HardSigmoid(x) -> HardSwish(x); also (x * Clip(x + 3, 0, 6)) / 6 -> HardSwish(x).
#include <algorithm>
#include <cmath>

#include "passes/pass.hpp"
#include "passes/pass_util.hpp"

namespace kiln {

namespace {

using namespace passes;

// `v` = Clip(x + 3, 0, 6): returns x.
Value* relu6_shift_arg(const Value* v, std::vector<const Node*>& used) {
  Node* clip = producer_of(v, "Clip");
  if (!clip || clip->inputs.size() != 3 || !is_scalar(clip->inputs[1], 0.0) || !is_scalar(clip->inputs[2], 6.0))
    return nullptr;
  Node* add = producer_of(clip->inputs[0], "Add");
  if (!add || add->inputs.size() != 2) return nullptr;
  for (int i = 0; i < 2; ++i)
    if (is_scalar(add->inputs[1 - i], 3.0)) {
      used.insert(used.end(), {add, clip});
      return add->inputs[i];
    }
  return nullptr;
}

// Whether `n` divides input `i` by 6 (Div by 6 or Mul by 1/6); sets `i` to the other operand.
bool divides_by_six(const Node* n, int& i) {
  if (!n->domain.empty() || n->inputs.size() != 2) return false;
  if (n->op_type == "Div" && is_scalar(n->inputs[1], 6.0)) return (i = 0), true;
  if (n->op_type == "Mul")
    for (int k = 0; k < 2; ++k)
      if (is_scalar(n->inputs[1 - k], 1.0 / 6.0)) return (i = k), true;
  return false;
}

Node* replace_last(Graph& g, Node* last, const char* op, Value* x, const std::vector<const Node*>& used) {
  Value* y = last->outputs[0];
  std::string name = last->name.empty() ? "" : last->name + "_" + op;
  std::string fused = fused_names(used);
  y->producer = nullptr;
  g.remove_node(last);
  Node* n = g.add_node(op, {x}, {y}, name, "", 21);
  n->attrs.set(kFusedAttr, fused);
  return n;
}

class HardSwishFusion : public Pass {
 public:
  std::string_view name() const override { return "hardswish-fusion"; }

  Expected<bool> run(Graph& g) override {
    bool changed = false;
    std::vector<Node*> nodes;
    for (const auto& n : g.nodes()) nodes.push_back(n.get());
    std::vector<Node*> removed;
    for (Node* n : nodes) {
      if (std::find(removed.begin(), removed.end(), n) != removed.end() || !n->has_output(0)) continue;
      int i = 0;
      if (!divides_by_six(n, i)) continue;
      std::vector<const Node*> used;
      if (Value* x = relu6_shift_arg(n->inputs[i], used)) {
        used.push_back(n);
        removed.push_back(n);
        Node* hs = replace_last(g, n, "HardSigmoid", x, used);
        hs->attrs.set("alpha", 1.f / 6.f);
        hs->attrs.set("beta", 0.5f);
        changed = true;
        continue;
      }
      Node* m = producer_of(n->inputs[i], "Mul");
      if (!m || m->inputs.size() != 2) continue;
      for (int k = 0; k < 2; ++k) {
        std::vector<const Node*> u;
        Value* x = relu6_shift_arg(m->inputs[1 - k], u);
        if (!x || x != m->inputs[k]) continue;
        u.insert(u.end(), {m, n});
        removed.push_back(n);
        replace_last(g, n, "HardSwish", x, u);
        changed = true;
        break;
      }
    }
    // x * HardSigmoid(x) with the HardSwish constants.
    std::vector<Node*> muls;
    for (const auto& n : g.nodes())
      if (n->domain.empty() && n->op_type == "Mul" && n->inputs.size() == 2 && n->has_output(0)) muls.push_back(n.get());
    for (Node* m : muls) {
      for (int k = 0; k < 2; ++k) {
        Node* hs = producer_of(m->inputs[1 - k], "HardSigmoid");
        if (!hs || hs->inputs[0] != m->inputs[k] || !is_scalar_attr(hs->attrs.f("alpha", 0.2f), 1.0 / 6.0) ||
            !is_scalar_attr(hs->attrs.f("beta", 0.5f), 0.5))
          continue;
        std::vector<const Node*> used = {hs, m};
        replace_last(g, m, "HardSwish", m->inputs[k], used);
        changed = true;
        break;
      }
    }
    return changed;
  }

 private:
  static bool is_scalar_attr(float v, double want) { return std::abs(v - want) <= 1e-4 * std::abs(want); }
};

}  // namespace

std::unique_ptr<Pass> make_hardswish_fusion_pass() { return std::make_unique<HardSwishFusion>(); }

}  // namespace kiln
