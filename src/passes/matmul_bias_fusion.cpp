// MatMul(A, constant 2-D B) -> Add(constant bias over the last dim) [-> Add(residual of the same
// shape)] [-> Relu]  =>  kiln.FusedMatMul (ops/fused_matmul.cpp): the CUDA backend runs it as one
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
      if (is_op(n.get(), "MatMul")) matmuls.push_back(n.get());
    for (Node* mm : matmuls) changed |= fuse(g, mm);
    if (changed) KILN_RETURN_IF_ERROR(g.topological_sort());
    return changed;
  }

 private:
  static bool fuse(Graph& g, Node* mm) {
    if (!mm->has_input(0) || !mm->has_input(1) || !mm->has_output(0)) return false;
    Value *a = mm->inputs[0], *b = mm->inputs[1], *mid = mm->outputs[0];
    const DType t = a->type.dtype;
    if (!(t == DType::kFloat32 || t == DType::kFloat16 || t == DType::kBFloat16) || b->type.dtype != t) return false;
    if (!b->is_constant() || b->constant->rank() != 2) return false;
    if (!a->type.shape.has_rank() || a->type.shape.rank() < 2) return false;
    const int64_t n = b->constant->dim(1);
    const size_t out_rank = a->type.shape.rank();
    Node* add = sole_reader_once(g, mid);
    if (!is_op(add, "Add") || !add->has_output(0) || add->num_inputs() != 2) return false;
    Value* bias = add->inputs[0] == mid ? add->inputs[1] : add->inputs[0];
    if (!is_bias_for(bias, t, n, out_rank)) return false;
    std::vector<Node*> fused = {mm, add};
    Value* out = add->outputs[0];
    Value* residual = nullptr;
    if (Node* radd = sole_reader_once(g, out); is_op(radd, "Add") && radd->has_output(0) && radd->num_inputs() == 2) {
      Value* other = radd->inputs[0] == out ? radd->inputs[1] : radd->inputs[0];
      auto od = out->type.shape.to_dims(), rd = other->type.shape.to_dims();
      // Only a residual of exactly the output's shape (no broadcasting). It cannot depend on the
      // chain: the chain's values each have this one reader.
      if (other->type.dtype == t && od && rd && *od == *rd) {
        residual = other;
        fused.push_back(radd);
        out = radd->outputs[0];
      }
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
