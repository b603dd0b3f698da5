// Moves the NHWC layout pass's Transposes back to NCHW (perm {0, 3, 1, 2}) below ops that do not
// care about the layout: unary elementwise ops (per-tensor Quantize/DequantizeLinear too), binary elementwise ops (the other operand is
// transposed the opposite way: free when it is itself such a Transpose or a constant, cheap when
// small) and Concat (axis remapped). A Transpose sunk to the next convolution's input cancels
// with it, so NHWC regions grow across activations, SE-block scales and skip concatenations.
// A Transpose moves only when all its readers can take NHWC data (each then gets its own
// Transpose after it, which cancels at the next convolution, and the original goes).
#include <set>

#include "ops/fused_conv.hpp"
#include "passes/pass.hpp"
#include "passes/pass_util.hpp"

namespace kiln {

namespace {

using passes::is_graph_output;

const std::set<std::string>& unary_ops() {
  static const std::set<std::string> ops = {
      "Relu", "LeakyRelu", "Sigmoid", "Tanh", "HardSigmoid", "HardSwish", "Elu", "Selu", "Celu", "Gelu", "Softplus",
      "Softsign", "Mish", "Clip", "Cast", "Identity", "Abs", "Neg", "Exp", "Log", "Sqrt", "Erf", "Reciprocal",
      // Per tensor only (sink() requires scalar constant scale and zero point): INT8 chains
      // between kiln.QConv layers quantize float residual outputs in NHWC, with no Transposes.
      "QuantizeLinear", "DequantizeLinear"};
  return ops;
}

const std::set<std::string>& binary_ops() {
  static const std::set<std::string> ops = {"Add", "Sub", "Mul", "Div", "Max", "Min", "PRelu"};
  return ops;
}

// Pools kiln.NHWC can run (its ConvTranspose form comes from the layout pass, with W moved too).
bool is_pool(const std::string& op) { return op != "ConvTranspose" && nhwc_wrappable(op); }

std::vector<int64_t> inverse(const std::vector<int64_t>& p) {
  std::vector<int64_t> inv(p.size());
  for (size_t i = 0; i < p.size(); ++i) inv[static_cast<size_t>(p[i])] = static_cast<int64_t>(i);
  return inv;
}

class TransposeSinking : public Pass {
 public:
  std::string_view name() const override { return "transpose-sinking"; }

  Expected<bool> run(Graph& g) override {
    bool changed = false;
    std::vector<Node*> nodes;
    for (const auto& n : g.nodes()) nodes.push_back(n.get());
    for (Node* n : nodes) changed |= sink(g, n);
    if (changed) KILN_RETURN_IF_ERROR(g.topological_sort());
    return changed;
  }

 private:
  // Whether a reader of an NCHW value can take it in NHWC instead: a Transpose to NHWC (cancels)
  // or an op this pass moves Transposes through.
  static bool layout_friendly(const Node& n) {
    if (!n.domain.empty()) return false;
    if (n.op_type == "Transpose") return n.attrs.ints("perm") == nchw_to_nhwc_perm(4);
    return unary_ops().count(n.op_type) || binary_ops().count(n.op_type) || n.op_type == "Concat" ||
           is_pool(n.op_type);
  }

  // The Transpose back to NCHW producing v (read by `reader`), when every reader of v is layout
  // friendly: once they all take the NHWC value, the Transpose goes.
  static Node* movable_transpose(const Graph& g, const Value* v, const Node* reader) {
    if (!v || !v->producer || is_graph_output(g, v)) return nullptr;
    Node* t = v->producer;
    if (!t->domain.empty() || t->op_type != "Transpose" || !t->has_input(0) ||
        t->attrs.ints("perm") != nhwc_to_nchw_perm(4))
      return nullptr;
    bool read_by_reader = false;
    for (const Node* c : g.consumers(v)) {
      if (c->owner != &g || !layout_friendly(*c)) return nullptr;
      read_by_reader |= c == reader;
    }
    return read_by_reader ? t : nullptr;
  }

  static bool is_scalar_constant(const Value* v) { return v && v->constant && v->constant->numel() == 1; }

  static bool sink(Graph& g, Node* n) {
    if (!n->domain.empty() || n->outputs.size() != 1 || !n->has_output(0) || n->inputs.empty()) return false;
    const auto to_nchw = nhwc_to_nchw_perm(4), to_nhwc = nchw_to_nhwc_perm(4);
    const TensorType& out = n->outputs[0]->type;
    if (!out.shape.has_rank() || out.shape.rank() != 4) return false;
    if (unary_ops().count(n->op_type)) {
      Node* t = movable_transpose(g, n->inputs[0], n);
      if (!t) return false;
      for (size_t i = 1; i < n->inputs.size(); ++i)  // Clip's bounds and the like
        if (n->inputs[i] && !is_scalar_constant(n->inputs[i])) return false;
      n->inputs[0] = t->inputs[0];
    } else if (binary_ops().count(n->op_type) && n->inputs.size() == 2 && n->has_input(0) && n->has_input(1)) {
      size_t i = movable_transpose(g, n->inputs[0], n) ? 0 : 1;
      Node* t = movable_transpose(g, n->inputs[i], n);
      if (!t) return false;
      Value* other = n->inputs[1 - i];
      const Shape& os = other->type.shape;
      const bool other_moves = movable_transpose(g, other, n) != nullptr;
      if (!os.has_rank()) return false;
      if (os.rank() == 4) {
        // Transposing the other operand must be worth it: it cancels, folds, or is small.
        const auto od = os.to_dims(), xd = t->inputs[0]->type.shape.to_dims();
        const bool small = od && xd && dims_numel(*od) * 8 <= dims_numel(*xd);
        if (!other_moves && !other->constant && !small) return false;
        Value* moved = g.add_value(g.unique_name(other->name + "/to_nhwc"));
        Node* nt = g.add_node("Transpose", {other}, {moved}, g.unique_name(n->name + "/to_nhwc"), "", t->opset);
        nt->attrs.set("perm", to_nhwc);
        n->inputs[1 - i] = moved;
      } else if (!is_scalar_constant(other)) {
        return false;  // lower-rank broadcasting aligns to the last axes: the layout matters
      }
      n->inputs[i] = t->inputs[0];
    } else if (is_pool(n->op_type)) {
      // Pools become kiln.NHWC where cuDNN's NHWC pooling computes them exactly (int8 MaxPool: our kernel).
      Node* t = movable_transpose(g, n->inputs[0], n);
      if (!t || n->inputs.size() != 1) return false;
      const DType dt = out.dtype;
      auto in = n->inputs[0]->type.shape.to_dims();
      const bool int8_max = dt == DType::kInt8 && n->op_type == "MaxPool";  // an int8 chain's (qdq-fusion)
      if ((dt != DType::kFloat16 && dt != DType::kBFloat16 && !int8_max) || !in || !nhwc_pool_window(*n, *in).ok())
        return false;
      n->inputs[0] = t->inputs[0];
      n->attrs.set("op", n->op_type);
      n->op_type = "NHWC";
      n->domain = kKilnDomain;
    } else if (n->op_type == "Concat") {
      std::vector<Value*> sources;
      for (Value* v : n->inputs) {
        Node* t = movable_transpose(g, v, n);
        if (!t) return false;
        sources.push_back(t->inputs[0]);
      }
      int64_t axis = n->attrs.i("axis", 0);
      if (axis < 0) axis += 4;
      if (axis < 0 || axis >= 4) return false;
      n->inputs = sources;
      n->attrs.set("axis", inverse(to_nhwc)[static_cast<size_t>(axis)]);  // NCHW axis a sits at NHWC position
    } else {
      return false;
    }
    // n now computes in NHWC; a Transpose after it restores the NCHW value its readers expect.
    Value* v = n->outputs[0];
    Value* u = g.add_value(g.unique_name(v->name + "/nhwc"));
    n->outputs[0] = u;
    u->producer = n;
    Node* back = g.add_node("Transpose", {u}, {v}, g.unique_name(n->name + "/to_nchw"), "", n->opset > 0 ? n->opset : 21);
    back->attrs.set("perm", to_nchw);
    return true;
  }
};

}  // namespace

std::unique_ptr<Pass> make_transpose_sinking_pass() { return std::make_unique<TransposeSinking>(); }

}  // namespace kiln
