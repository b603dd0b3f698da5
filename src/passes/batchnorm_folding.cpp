// batchnorm-folding: an inference BatchNormalization with constant statistics is an affine map per
// channel, y = x*s + t with s = scale/sqrt(var+eps), t = bias - mean*s. After a Conv /
// ConvTranspose / Gemm / rank-2 MatMul with constant weights it goes into their weights and bias;
// elsewhere it becomes Mul + Add.
#include <cmath>

#include "passes/pass.hpp"
#include "passes/pass_util.hpp"

namespace kiln {

namespace {

using passes::fused_names;
using passes::single_consumer;

struct Affine {
  std::vector<double> s, t;
};

// The per-channel map of an inference BatchNormalization, when its parameters are constants.
std::optional<Affine> bn_affine(const Graph& g, const Node& bn) {
  if (bn.inputs.size() < 5 || bn.attrs.i("training_mode", 0) != 0) return std::nullopt;
  for (size_t i = 1; i < bn.outputs.size(); ++i)
    if (bn.outputs[i] && passes::is_used(g, bn.outputs[i])) return std::nullopt;
  for (size_t i = 1; i < 5; ++i)
    if (!bn.has_input(i) || !bn.inputs[i]->is_constant() || !is_floating(bn.inputs[i]->constant->dtype()))
      return std::nullopt;
  auto scale = bn.inputs[1]->constant->to_double_vector(), bias = bn.inputs[2]->constant->to_double_vector();
  auto mean = bn.inputs[3]->constant->to_double_vector(), var = bn.inputs[4]->constant->to_double_vector();
  size_t c = scale.size();
  if (c == 0 || bias.size() != c || mean.size() != c || var.size() != c) return std::nullopt;
  double eps = bn.attrs.f("epsilon", 1e-5f);
  Affine a;
  for (size_t i = 0; i < c; ++i) {
    double s = scale[i] / std::sqrt(var[i] + eps);
    a.s.push_back(s);
    a.t.push_back(bias[i] - mean[i] * s);
  }
  return a;
}

// A constant of `like`'s dtype from doubles.
Value* add_const(Graph& g, const std::string& base, DType dtype, Dims dims, const std::vector<double>& v) {
  return g.add_constant(g.unique_name(base), Tensor::from_vector<double>(std::move(dims), v).cast(dtype));
}

bool floating_const(const Value* v) { return v && v->is_constant() && is_floating(v->constant->dtype()); }

// Folds `a` into the weights of `p` (which feeds only `bn`); false when `p` does not fit.
bool fold_into(Graph& g, Node& p, Node& bn, const Affine& a) {
  if (!p.domain.empty() || p.inputs.size() < 2 || !floating_const(p.inputs[1])) return false;
  const Tensor& w = *p.inputs[1]->constant;
  const size_t m = a.s.size();
  std::vector<double> wv = w.to_double_vector();
  std::vector<double> bv(m, 0.0);
  const std::string& op = p.op_type;
  if (op == "Conv" || op == "ConvTranspose") {
    if (w.rank() < 3) return false;
    int64_t group = p.attrs.i("group", 1);
    int64_t c0 = w.dim(0), c1 = w.dim(1);
    size_t out_ch = op == "Conv" ? static_cast<size_t>(c0) : static_cast<size_t>(c1 * group);
    if (out_ch != m || group <= 0 || c0 % group) return false;
    size_t inner = static_cast<size_t>(w.numel() / (c0 * c1));
    for (size_t i = 0; i < wv.size(); ++i) {
      size_t a0 = i / (c1 * inner), a1 = (i / inner) % c1;
      size_t ch = op == "Conv" ? a0 : (a0 / (c0 / group)) * c1 + a1;
      wv[i] *= a.s[ch];
    }
    if (p.has_input(2)) {
      if (!floating_const(p.inputs[2]) || p.inputs[2]->constant->numel() != static_cast<int64_t>(m)) return false;
      bv = p.inputs[2]->constant->to_double_vector();
    }
  } else if (op == "Gemm" || op == "MatMul") {
    if (w.rank() != 2 || !p.outputs[0]->type.shape.has_rank() || p.outputs[0]->type.shape.rank() != 2) return false;
    bool trans_b = op == "Gemm" && p.attrs.i("transB", 0) != 0;
    if (op == "MatMul" && (!p.inputs[0]->type.shape.has_rank() || p.inputs[0]->type.shape.rank() != 2)) return false;
    size_t n = static_cast<size_t>(trans_b ? w.dim(0) : w.dim(1)), k = static_cast<size_t>(trans_b ? w.dim(1) : w.dim(0));
    if (n != m) return false;
    for (size_t r = 0; r < (trans_b ? n : k); ++r)
      for (size_t c = 0; c < (trans_b ? k : n); ++c) wv[r * (trans_b ? k : n) + c] *= a.s[trans_b ? r : c];
    if (op == "Gemm" && p.has_input(2)) {
      // A per-column or scalar C, scaled by beta; a full [M, N] C would need its own broadcast.
      if (!floating_const(p.inputs[2])) return false;
      auto c = p.inputs[2]->constant->to_double_vector();
      const Dims& cd = p.inputs[2]->constant->dims();
      bool per_col = c.size() == m && (cd.size() == 1 || (cd.size() == 2 && cd[0] == 1));
      if (!per_col && c.size() != 1) return false;
      double beta = p.attrs.f("beta", 1.f);
      for (size_t i = 0; i < m; ++i) bv[i] = beta * c[per_col ? i : 0];
    }
  } else {
    return false;
  }
  for (size_t i = 0; i < m; ++i) bv[i] = bv[i] * a.s[i] + a.t[i];
  DType dt = w.dtype();
  p.inputs[1] = add_const(g, p.inputs[1]->name + "_bn", dt, w.dims(), wv);
  Value* bias = add_const(g, (p.name.empty() ? bn.name : p.name) + "_bn_bias", dt, {static_cast<int64_t>(m)}, bv);
  if (op == "MatMul") {
    p.op_type = "Gemm";  // X @ W' + b' in one node
    p.attrs = Attributes{};
  }
  if (p.op_type == "Gemm") p.attrs.set("beta", 1.f);
  p.inputs.resize(3);
  p.inputs[2] = bias;
  p.attrs.set(kFusedAttr, fused_names({&p, &bn}));
  Value* y = bn.outputs[0];
  p.outputs[0]->producer = nullptr;
  g.remove_node(&bn);
  p.outputs[0] = y;
  y->producer = &p;
  return true;
}

// x*s + t with s, t shaped [C, 1, ...] to broadcast over channel axis 1.
bool lower_to_mul_add(Graph& g, Node& bn, const Affine& a) {
  Value* x = bn.inputs[0];
  const Shape& sh = x->type.shape;
  if (!sh.has_rank() || sh.rank() < 2 || !is_floating(x->type.dtype)) return false;
  if (sh[1].known() && sh[1].value != static_cast<int64_t>(a.s.size())) return false;
  Dims d(sh.rank() - 1, 1);
  d[0] = static_cast<int64_t>(a.s.size());
  std::string base = bn.name.empty() ? "bn" : bn.name;
  Value* s = add_const(g, base + "_scale", x->type.dtype, d, a.s);
  Value* t = add_const(g, base + "_shift", x->type.dtype, d, a.t);
  Value* mid = g.add_value(g.unique_name(base + "_scaled"), x->type);
  Value* y = bn.outputs[0];
  std::string name = bn.name;
  y->producer = nullptr;
  g.remove_node(&bn);
  g.add_node("Mul", {x, s}, {mid}, name + "_mul", "", 21);
  g.add_node("Add", {mid, t}, {y}, name + "_add", "", 21);
  return true;
}

class BatchNormFolding : public Pass {
 public:
  std::string_view name() const override { return "batchnorm-folding"; }

  Expected<bool> run(Graph& g) override {
    bool changed = false;
    std::vector<Node*> bns;
    for (const auto& n : g.nodes())
      if (n->domain.empty() && n->op_type == "BatchNormalization" && n->has_input(0) && n->has_output(0))
        bns.push_back(n.get());
    for (Node* bn : bns) {
      auto a = bn_affine(g, *bn);
      if (!a) continue;
      Value* x = bn->inputs[0];
      Node* p = x->producer;
      if (p && p->owner == &g && single_consumer(g, x) == bn && fold_into(g, *p, *bn, *a)) {
        changed = true;
        continue;
      }
      changed |= lower_to_mul_add(g, *bn, *a);
    }
    return changed;
  }
};

}  // namespace

std::unique_ptr<Pass> make_batchnorm_folding_pass() { return std::make_unique<BatchNormFolding>(); }

}  // namespace kiln
