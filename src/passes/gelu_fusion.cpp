// gelu-fusion: the GELU subgraphs exporters write, as one Gelu node (so a backend runs one kernel):
//   erf:  x * 0.5 * (1 + Erf(x / sqrt(2)))                      -> Gelu(x)
//   tanh: x * 0.5 * (1 + Tanh(sqrt(2/pi) * (x + 0.044715 x^3)))  -> Gelu(x, approximate="tanh")
// The three factors may be multiplied in any order. Only the final Mul is replaced; the rest goes
// with dead-code once nothing else reads it.
#include <cmath>

#include "passes/pass.hpp"
#include "passes/pass_util.hpp"

namespace kiln {

namespace {

using namespace passes;

Node* mul_of(const Value* v) { return producer_of(v, "Mul"); }

// Whether `v` is x * c (either order) for a scalar constant c.
bool is_scaled(const Value* v, const Value* x, double c) {
  Node* m = mul_of(v);
  return m && is_scalar(other_input(m, x), c);  // other_input is null unless x is one of two inputs
}

// From `one_plus` = 1 + f(x), finds the Mul computing x * 0.5 * one_plus; collects matched nodes.
Node* find_product(const Graph& g, const Value* one_plus, const Value* x, std::vector<const Node*>& used) {
  Node* m1 = single_consumer(g, one_plus);
  if (!m1 || !m1->domain.empty() || m1->op_type != "Mul") return nullptr;
  Value* o = other_input(m1, one_plus);
  if (!o) return nullptr;
  if (o == x || is_scalar(o, 0.5)) {
    // (x * a) * 0.5 or (0.5 * a) * x
    Node* m2 = single_consumer(g, m1->outputs[0]);
    if (!m2 || !m2->domain.empty() || m2->op_type != "Mul") return nullptr;
    Value* o2 = other_input(m2, m1->outputs[0]);
    if (!(o == x ? is_scalar(o2, 0.5) : o2 == x)) return nullptr;
    used.push_back(m1);
    used.push_back(m2);
    return m2;
  }
  if (is_scaled(o, x, 0.5)) {  // (x * 0.5) * a
    used.push_back(o->producer);
    used.push_back(m1);
    return m1;
  }
  return nullptr;
}

// 1 + v (either order): the Add node.
Node* add_one(const Graph& g, const Value* v) {
  Node* a = single_consumer(g, v);
  if (!a || !a->domain.empty() || a->op_type != "Add" || !is_scalar(other_input(a, v), 1.0)) return nullptr;
  return a;
}

// Erf's input is x / sqrt(2) or x * (1/sqrt(2)): returns x.
Value* erf_arg(const Value* v, std::vector<const Node*>& used) {
  Node* p = v->producer;
  if (!p || !p->domain.empty() || p->inputs.size() != 2) return nullptr;
  if (p->op_type == "Div" && is_scalar(p->inputs[1], std::sqrt(2.0))) {
    used.push_back(p);
    return p->inputs[0];
  }
  if (p->op_type == "Mul") {
    for (int i = 0; i < 2; ++i)
      if (is_scalar(p->inputs[1 - i], 1.0 / std::sqrt(2.0))) {
        used.push_back(p);
        return p->inputs[i];
      }
  }
  return nullptr;
}

// Tanh's input is sqrt(2/pi) * (x + 0.044715 * x^3): returns x (x^3 as Pow(x, 3) or x*x*x).
Value* tanh_arg(const Value* v, std::vector<const Node*>& used) {
  Node* m = mul_of(v);
  if (!m || m->inputs.size() != 2) return nullptr;
  const double k = std::sqrt(2.0 / M_PI);
  int si = is_scalar(m->inputs[0], k) ? 0 : is_scalar(m->inputs[1], k) ? 1 : -1;
  if (si < 0) return nullptr;
  Node* add = producer_of(m->inputs[1 - si], "Add");
  if (!add || add->inputs.size() != 2) return nullptr;
  for (int i = 0; i < 2; ++i) {
    Value* x = add->inputs[i];
    Node* c = mul_of(add->inputs[1 - i]);
    if (!c || c->inputs.size() != 2) continue;
    int ci = is_scalar(c->inputs[0], 0.044715) ? 0 : is_scalar(c->inputs[1], 0.044715) ? 1 : -1;
    if (ci < 0) continue;
    Value* cube = c->inputs[1 - ci];
    Node* pw = producer_of(cube, "Pow");
    bool ok = pw && pw->inputs.size() == 2 && pw->inputs[0] == x && is_scalar(pw->inputs[1], 3.0);
    Node* mm = mul_of(cube);
    if (!ok && mm && mm->inputs.size() == 2) {  // x * (x * x) or (x * x) * x
      for (int j = 0; j < 2 && !ok; ++j) {
        Node* sq = mul_of(mm->inputs[1 - j]);
        ok = mm->inputs[j] == x && sq && sq->inputs.size() == 2 && sq->inputs[0] == x && sq->inputs[1] == x;
      }
    }
    if (!ok) continue;
    used.insert(used.end(), {cube->producer, c, add, m});
    return x;
  }
  return nullptr;
}

class GeluFusion : public Pass {
 public:
  std::string_view name() const override { return "gelu-fusion"; }

  Expected<bool> run(Graph& g) override {
    bool changed = false;
    std::vector<Node*> starts;
    for (const auto& n : g.nodes())
      if (n->domain.empty() && (n->op_type == "Erf" || n->op_type == "Tanh") && n->has_input(0) && n->has_output(0))
        starts.push_back(n.get());
    for (Node* f : starts) {
      bool tanh = f->op_type == "Tanh";
      std::vector<const Node*> used;
      Value* x = tanh ? tanh_arg(f->inputs[0], used) : erf_arg(f->inputs[0], used);
      if (!x || !is_floating(x->type.dtype)) continue;
      used.push_back(f);
      Node* add = add_one(g, f->outputs[0]);
      if (!add) continue;
      used.push_back(add);
      Node* last = find_product(g, add->outputs[0], x, used);
      if (!last) continue;
      Value* y = last->outputs[0];
      std::string name = last->name.empty() ? "" : last->name + "_gelu";
      std::string fused = fused_names(used);
      y->producer = nullptr;
      g.remove_node(last);
      Node* gelu = g.add_node("Gelu", {x}, {y}, name, "", 21);
      gelu->attrs.set("approximate", std::string(tanh ? "tanh" : "none"));
      gelu->attrs.set(kFusedAttr, fused);
      changed = true;
    }
    return changed;
  }
};

}  // namespace

std::unique_ptr<Pass> make_gelu_fusion_pass() { return std::make_unique<GeluFusion>(); }

}  // namespace kiln
