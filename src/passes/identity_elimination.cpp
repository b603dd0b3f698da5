// identity-elimination: nodes whose output equals their input go; their readers read the input.
#include "passes/pass.hpp"
#include "passes/pass_util.hpp"

namespace kiln {

namespace {

using passes::bypass_node;

// Same rank and the same dims (equal numbers, or the same named symbol).
bool same_shape(const Shape& a, const Shape& b) {
  if (!a.has_rank() || !b.has_rank() || a.rank() != b.rank()) return false;
  for (size_t i = 0; i < a.rank(); ++i)
    if (!(a[i] == b[i]) || (!a[i].known() && a[i].symbol.empty())) return false;
  return true;
}

bool all_constant_ints(const Value* v, int64_t want) {
  if (!v || !v->is_constant()) return false;
  auto ints = v->constant->to_int64_vector();
  if (!ints.ok()) return false;
  for (int64_t x : *ints)
    if (x != want) return false;
  return true;
}

bool is_noop(const Node& n) {
  if (!n.domain.empty() || !n.has_input(0) || !n.has_output(0)) return false;
  const Value* in = n.inputs[0];
  const Value* out = n.outputs[0];
  const std::string& op = n.op_type;
  if (op == "Identity") return true;
  if (op == "Dropout") {
    // Inference unless training_mode is a constant true; the mask output must be unused.
    if (n.has_input(2) && !(n.inputs[2]->is_constant() && all_constant_ints(n.inputs[2], 0))) return false;
    return true;
  }
  if (in->type.dtype == DType::kUndefined || in->type.dtype != out->type.dtype) return false;
  if (op == "Cast") return n.attrs.has("to");
  if (op == "Reshape" || op == "Expand") return same_shape(in->type.shape, out->type.shape);
  if (op == "Transpose") {
    auto perm = n.attrs.ints("perm");
    if (perm.empty()) return in->type.shape.has_rank() && in->type.shape.rank() <= 1;
    for (size_t i = 0; i < perm.size(); ++i)
      if (perm[i] != static_cast<int64_t>(i)) return false;
    return true;
  }
  if (op == "Slice") {
    // The same static shape with unit steps means start 0 and the whole length on every axis.
    if (!in->type.shape.is_static() || !(in->type.shape == out->type.shape)) return false;
    return !n.has_input(4) || all_constant_ints(n.inputs[4], 1);
  }
  if (op == "Pad") return n.has_input(1) && all_constant_ints(n.inputs[1], 0);
  if (op == "Concat") return n.inputs.size() == 1;
  return false;
}

class IdentityElimination : public Pass {
 public:
  std::string_view name() const override { return "identity-elimination"; }

  Expected<bool> run(Graph& g) override {
    bool changed = false;
    std::vector<Node*> nodes;
    for (const auto& n : g.nodes()) nodes.push_back(n.get());
    for (Node* n : nodes)
      if (is_noop(*n)) changed |= bypass_node(g, n);
    return changed;
  }
};

}  // namespace

std::unique_ptr<Pass> make_identity_elimination_pass() { return std::make_unique<IdentityElimination>(); }

}  // namespace kiln
