// layernorm-fusion: the decomposed layer normalization exporters write,
//   m = ReduceMean(x, axes); d = x - m; v = ReduceMean(d^2, axes); n = d / Sqrt(v + eps);
//   [y = n * gamma; [z = y + beta]]
// over trailing axes, as one LayerNormalization(x, gamma, beta, axis, epsilon). Only the last node
// is replaced; the rest goes with dead-code once nothing else reads it.
#include "passes/pass.hpp"
#include "passes/pass_util.hpp"

namespace kiln {

namespace {

using namespace passes;

// The first reduced axis when `r` is a keepdims ReduceMean of `x` over its trailing axes.
std::optional<int64_t> trailing_mean_axis(const Node* r, const Value* x) {
  if (!r || r->inputs.empty() || r->inputs[0] != x || r->attrs.i("keepdims", 1) != 1) return std::nullopt;
  const Shape& s = x->type.shape;
  if (!s.has_rank() || s.rank() == 0 || !r->has_input(1) || !r->inputs[1]->is_constant()) return std::nullopt;
  auto axes = r->inputs[1]->constant->to_int64_vector();
  if (!axes.ok() || axes->empty()) return std::nullopt;
  int64_t rank = static_cast<int64_t>(s.rank());
  std::vector<bool> seen(static_cast<size_t>(rank), false);
  for (int64_t a : *axes) {
    if (a < -rank || a >= rank) return std::nullopt;
    seen[static_cast<size_t>(a < 0 ? a + rank : a)] = true;
  }
  int64_t first = rank - static_cast<int64_t>(axes->size());
  for (int64_t i = 0; i < rank; ++i)
    if (seen[static_cast<size_t>(i)] != (i >= first)) return std::nullopt;
  return first;
}

// `p` as a constant of the normalized dims (`p` broadcasts over nothing else), in dtype `dt`.
Value* param_as(Graph& g, const Value* p, const Dims& norm, DType dt) {
  if (!p || !p->is_constant()) return nullptr;
  const Dims& pd = p->constant->dims();
  if (p->constant->numel() != dims_numel(norm)) return nullptr;
  // Right-aligned: dims past the normalized ones must be 1, the rest equal.
  for (size_t i = 0; i < pd.size(); ++i) {
    size_t from_end = pd.size() - i;
    if (from_end > norm.size() ? pd[i] != 1 : pd[i] != norm[norm.size() - from_end]) return nullptr;
  }
  return g.add_constant(g.unique_name(p->name + "_ln"), p->constant->cast(dt).reshaped(norm));
}

class LayerNormFusion : public Pass {
 public:
  std::string_view name() const override { return "layernorm-fusion"; }

  Expected<bool> run(Graph& g) override {
    bool changed = false;
    std::vector<Node*> divs;
    for (const auto& n : g.nodes())
      if (n->domain.empty() && n->op_type == "Div" && n->inputs.size() == 2 && n->has_output(0)) divs.push_back(n.get());
    for (Node* div : divs) changed |= try_fuse(g, div);
    return changed;
  }

 private:
  bool try_fuse(Graph& g, Node* div) {
    Value* d = div->inputs[0];
    Node* sub = producer_of(d, "Sub");
    Node* sqrt = producer_of(div->inputs[1], "Sqrt");
    if (!sub || !sqrt || sub->inputs.size() != 2) return false;
    Value* x = sub->inputs[0];
    auto axis = trailing_mean_axis(producer_of(sub->inputs[1], "ReduceMean"), x);
    Node* add_eps = producer_of(sqrt->inputs[0], "Add");
    if (!axis || !add_eps || add_eps->inputs.size() != 2) return false;
    int vi = scalar_constant(add_eps->inputs[1]) ? 0 : scalar_constant(add_eps->inputs[0]) ? 1 : -1;
    if (vi < 0) return false;
    double eps = *scalar_constant(add_eps->inputs[1 - vi]);
    Node* var = producer_of(add_eps->inputs[vi], "ReduceMean");
    if (!var || var->inputs.empty()) return false;
    Node* sq = var->inputs[0]->producer;
    bool squares = sq && sq->domain.empty() && sq->inputs.size() == 2 && sq->inputs[0] == d &&
                   ((sq->op_type == "Pow" && is_scalar(sq->inputs[1], 2.0)) || (sq->op_type == "Mul" && sq->inputs[1] == d));
    if (!squares || trailing_mean_axis(var, var->inputs[0]) != axis || eps < 0) return false;
    const Shape& xs = x->type.shape;
    if (!is_floating(x->type.dtype)) return false;
    Dims norm;  // the normalized dims must be known (the batch dims need not)
    for (size_t i = static_cast<size_t>(*axis); i < xs.rank(); ++i) {
      if (!xs[i].known()) return false;
      norm.push_back(xs[i].value);
    }

    std::vector<const Node*> used = {sub->inputs[1]->producer, sub, sq, var, add_eps, sqrt, div};
    Node* last = div;
    Value* gamma = nullptr;
    Value* beta = nullptr;
    if (Node* mul = single_consumer(g, div->outputs[0]); mul && mul->domain.empty() && mul->op_type == "Mul") {
      if ((gamma = param_as(g, other_input(mul, div->outputs[0]), norm, x->type.dtype))) {
        used.push_back(last = mul);
        if (Node* add = single_consumer(g, mul->outputs[0]); add && add->domain.empty() && add->op_type == "Add")
          if ((beta = param_as(g, other_input(add, mul->outputs[0]), norm, x->type.dtype))) used.push_back(last = add);
      }
    }
    if (!gamma) {
      Tensor ones = Tensor::from_vector<float>(norm, std::vector<float>(static_cast<size_t>(dims_numel(norm)), 1.f));
      gamma = g.add_constant(g.unique_name((div->name.empty() ? "ln" : div->name) + "_scale"), ones.cast(x->type.dtype));
    }
    Value* y = last->outputs[0];
    std::string name = last->name.empty() ? "" : last->name + "_layernorm";
    std::string fused = fused_names(used);
    y->producer = nullptr;
    g.remove_node(last);
    std::vector<Value*> ins = {x, gamma};
    if (beta) ins.push_back(beta);
    Node* ln = g.add_node("LayerNormalization", ins, {y}, name, "", 21);
    ln->attrs.set("axis", *axis);
    ln->attrs.set("epsilon", static_cast<float>(eps));
    ln->attrs.set(kFusedAttr, fused);
    return true;
  }
};

}  // namespace

std::unique_ptr<Pass> make_layernorm_fusion_pass() { return std::make_unique<LayerNormFusion>(); }

}  // namespace kiln
