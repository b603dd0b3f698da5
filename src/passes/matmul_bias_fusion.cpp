// MatMul(A, constant 2-D B) -> Add(constant bias over the last dim) [-> Add(residual of the same
// shape)] [-> Relu]  =>  kiln.FusedMatMul; Gemm(A, constant B, constant bias row) (transA 0, alpha
// and beta 1) the same, with B transposed here when transB (ops/fused_matmul.cpp): the CUDA backend runs it as one
// cuBLASLt GEMM with a bias (+ReLU) epilogue and the residual as C, instead of a GEMM and up to
// three full passes over its output. MatMul -> Add(bias) -> Gelu becomes a GELU epilogue (activation
// "GeluTanh"): exact for Gelu(approximate="tanh"); for the erf form only in float16/bfloat16, where
// the tanh approximation's error (< 3.5e-4 absolute, about 1.8e-4 relative) is below the format's
// own rounding, so float32 plans keep the exact Gelu.
#include <algorithm>

#include "passes/pass.hpp"
#include "passes/pass_util.hpp"

namespace kiln {
namespace {

using passes::is_op;
using passes::sole_reader_once;

using passes::is_graph_output;

// A constant that broadcasts over the last dim only ([N], [1, N], ...), in `out_rank` dims or fewer.
bool is_bias_for(const Value* c, DType t, int64_t n, size_t out_rank) {
  if (!c || !c->is_constant() || c->type.dtype != t) return false;
  const Dims& d = c->constant->dims();
  if (d.empty() || d.size() > out_rank || d.back() != n) return false;
  return std::all_of(d.begin(), d.end() - 1, [](int64_t x) { return x == 1; });
}

class MatMulBiasFusion : public Pass {
 public:
  std::string_view name() const override { return "matmul-bias-fusion"; }

  Expected<bool> run(Graph& g) override {
    bool changed = false;
    std::vector<Node*> matmuls;
    for (const auto& n : g.nodes())
      if (is_op(n.get(), "MatMul") || is_op(n.get(), "Gemm") || is_fused_matmul(n.get())) matmuls.push_back(n.get());
    for (Node* mm : matmuls) changed |= is_fused_matmul(mm) ? absorb_residual(g, mm) : fuse(g, mm);
    if (changed) KILN_RETURN_IF_ERROR(g.topological_sort());
    return changed;
  }

 private:
  static bool is_fused_matmul(const Node* n) { return n->domain == "kiln" && n->op_type == "FusedMatMul"; }

  // The residual of a same-shaped Add reading `out` alone (the other operand), or nullptr.
  static Node* residual_add(const Graph& g, Value* out, DType t, Value*& residual) {
    Node* radd = sole_reader_once(g, out);
    if (!is_op(radd, "Add") || !radd->has_output(0) || radd->num_inputs() != 2) return nullptr;
    Value* other = radd->inputs[0] == out ? radd->inputs[1] : radd->inputs[0];
    auto od = out->type.shape.to_dims(), rd = other->type.shape.to_dims();
    // Only a residual of exactly the output's shape (no broadcasting). It cannot depend on the
    // chain: the chain's values each have this one reader.
    if (other->type.dtype != t || !od || !rd || *od != *rd) return nullptr;
    residual = other;
    return radd;
  }

  // A FusedMatMul made elsewhere (no residual, no activation) takes a following residual Add: the
  // attention output projection once its layout Transposes are gone (mha-transpose).
  static bool absorb_residual(Graph& g, Node* fm) {
    if (fm->num_inputs() != 3 || !fm->has_output(0) || !fm->attrs.s("activation", "").empty()) return false;
    Value* residual = nullptr;
    Node* radd = residual_add(g, fm->outputs[0], fm->outputs[0]->type.dtype, residual);
    if (!radd) return false;
    Value* out = radd->outputs[0];
    const std::string names = fm->attrs.s(kFusedAttr, fm->name) + "," + radd->name;
    g.remove_node(radd);
    fm->inputs.push_back(residual);
    fm->outputs[0] = out;
    out->producer = fm;
    fm->attrs.set(kFusedAttr, names);
    return true;
  }

  // Gemm(A, B, C) with transA = 0, alpha = beta = 1, a constant B and a constant bias row C: the
  // MatMul(A, B or B^T) + Add(C) this pass fuses (out_proj of nn.MultiheadAttention, classifier heads).
  static bool gemm_operands(const Node* gm, Value*& a, Tensor& b, Value*& bias) {
    if (gm->num_inputs() < 2 || !gm->has_input(0) || !gm->has_input(1) || !gm->has_output(0)) return false;
    if (gm->attrs.i("transA", 0) != 0 || gm->attrs.f("alpha", 1.f) != 1.f) return false;
    a = gm->inputs[0];
    Value* bv = gm->inputs[1];
    if (!bv->is_constant() || bv->constant->rank() != 2 || !a->type.shape.has_rank() || a->type.shape.rank() != 2)
      return false;
    b = gm->attrs.i("transB", 0) != 0 ? passes::transpose_2d(*bv->constant) : *bv->constant;
    bias = gm->has_input(2) ? gm->inputs[2] : nullptr;
    if (bias && gm->attrs.f("beta", 1.f) != 1.f) return false;
    return true;
  }

  static bool fuse(Graph& g, Node* mm) {
    const bool gemm = is_op(mm, "Gemm");
    Value *a = nullptr, *b = nullptr, *mid = nullptr, *bias = nullptr;
    Tensor gemm_b;
    if (gemm) {
      if (!gemm_operands(mm, a, gemm_b, bias)) return false;
    } else {
      if (!mm->has_input(0) || !mm->has_input(1) || !mm->has_output(0)) return false;
      a = mm->inputs[0], b = mm->inputs[1];
      if (!b->is_constant() || b->constant->rank() != 2) return false;
    }
    mid = mm->outputs[0];
    const DType t = a->type.dtype;
    const Tensor& bt = gemm ? gemm_b : *b->constant;
    if (!(t == DType::kFloat32 || t == DType::kFloat16 || t == DType::kBFloat16) || bt.dtype() != t) return false;
    if (!a->type.shape.has_rank() || a->type.shape.rank() < 2) return false;
    const int64_t n = bt.dim(1);
    const size_t out_rank = a->type.shape.rank();
    std::vector<Node*> fused = {mm};
    Value* out = mid;
    if (gemm) {
      if (bias && !is_bias_for(bias, t, n, out_rank)) return false;
      if (!bias) bias = g.add_constant(g.unique_name(mm->name + "_zero_bias"), Tensor::zeros(t, {n}));
      b = g.add_constant(g.unique_name(mm->inputs[1]->name + "_kn"), gemm_b);
    } else {
      Node* add = sole_reader_once(g, mid);
      if (!is_op(add, "Add") || !add->has_output(0) || add->num_inputs() != 2) return false;
      bias = add->inputs[0] == mid ? add->inputs[1] : add->inputs[0];
      if (!is_bias_for(bias, t, n, out_rank)) return false;
      fused.push_back(add);
      out = add->outputs[0];
    }
    Value* residual = nullptr;
    if (Node* radd = residual_add(g, out, t, residual)) {
      fused.push_back(radd);
      out = radd->outputs[0];
    }
    std::string act;
    if (Node* relu = sole_reader_once(g, out); is_op(relu, "Relu") && relu->has_output(0)) {
      act = "Relu";
      fused.push_back(relu);
      out = relu->outputs[0];
    } else if (Node* gelu = sole_reader_once(g, out); !residual && is_op(gelu, "Gelu") && gelu->has_output(0) &&
                                                      gelu->outputs[0]->type.dtype == t &&
                                                      (gelu->attrs.s("approximate", "none") == "tanh" ||
                                                       t == DType::kFloat16 || t == DType::kBFloat16)) {
      act = "GeluTanh";
      fused.push_back(gelu);
      out = gelu->outputs[0];
    }
    if (bias->constant->rank() != 1)
      bias = g.add_constant(g.unique_name(bias->name + "_row"), bias->constant->reshaped({n}));
    std::string names;
    for (Node* f : fused) names += (names.empty() ? "" : ",") + f->name;
    const std::string node_name = mm->name;  // the fused node takes the MatMul's place
    const int opset = mm->opset;
    for (Node* f : fused) g.remove_node(f);
    std::vector<Value*> inputs{a, b, bias};
    if (residual) inputs.push_back(residual);
    Node* fn = g.add_node("FusedMatMul", inputs, {out}, node_name, "kiln", opset);
    fn->attrs.set("activation", act);
    fn->attrs.set("kiln_fused", names);
    return true;
  }
};

}  // namespace

std::unique_ptr<Pass> make_matmul_bias_fusion_pass() { return std::make_unique<MatMulBiasFusion>(); }

}  // namespace kiln
