// The activation quantization of FP8 GEMMs moved into its producer (after fp8-gemm-fusion), so no
// separate kiln.Fp8Quantize pass over x remains:
//  - kiln.Fp8MatMul -> kiln.Fp8Quantize(s), the quantization its only reader (the FFN up-projection
//    + GELU feeding the down-projection): the GEMM writes float8 itself (input 6, y_scale = s;
//    cuBLASLt's D scale);
//  - LayerNormalization -> kiln.Fp8Quantize(s) among its readers: kiln.Fp8LayerNorm, writing the
//    float output for the other readers (the residual path) and the float8 copy in one kernel.
// Both compute what the pair computed: the quantization of the producer's float16/bfloat16 output.
#include "passes/pass.hpp"
#include "passes/pass_util.hpp"

KILN_REGISTER_PASS_INFO("fp8-quantize-fusion",
                        "CUDA: kiln.Fp8Quantize into its producer (Fp8MatMul writing float8, LayerNorm -> "
                        "kiln.Fp8LayerNorm)")

namespace kiln {
namespace {

using passes::is_op;

bool is_kiln(const Node* n, const char* op) { return n && n->domain == "kiln" && n->op_type == op; }

// A one-element positive float constant.
bool scale_constant(const Value* v) {
  auto s = passes::scalar_constant(v);
  return s && *s > 0 && is_floating(v->type.dtype);
}

// fused list of `n` extended by `q`.
std::string fused_with(const Node* n, const Node* q) {
  const std::string own = n->attrs.s(kFusedAttr, "");
  const std::string more = passes::fused_names({q});
  return own.empty() ? passes::fused_names({n, q}) : own + "," + more;
}

class Fp8QuantizeFusion : public Pass {
 public:
  std::string_view name() const override { return "fp8-quantize-fusion"; }

  Expected<bool> run(Graph& g) override {
    std::vector<Node*> quantizers;
    for (const auto& n : g.nodes())
      if (is_kiln(n.get(), "Fp8Quantize")) quantizers.push_back(n.get());
    bool changed = false;
    for (Node* q : quantizers) {
      if (!q->has_input(0) || !q->has_input(1) || !q->has_output(0) || !scale_constant(q->inputs[1])) continue;
      Node* p = q->inputs[0]->producer;
      if (is_kiln(p, "Fp8MatMul")) changed |= into_gemm(g, p, q);
      else if (is_op(p, "LayerNormalization")) changed |= into_layer_norm(g, p, q);
    }
    if (changed) KILN_RETURN_IF_ERROR(g.topological_sort());
    return changed;
  }

 private:
  // The GEMM's float16/bfloat16 output read by `q` alone: the GEMM writes q's float8 output.
  static bool into_gemm(Graph& g, Node* mm, Node* q) {
    Value* y = mm->outputs[0];
    if (mm->num_inputs() > 6 || !mm->has_output(0) || y != q->inputs[0]) return false;
    // cuBLASLt writes float8 only with a 16-bit C/bias type.
    if (y->type.dtype != DType::kFloat16 && y->type.dtype != DType::kBFloat16) return false;
    if (passes::sole_reader_once(g, y) != q) return false;
    std::vector<Value*> inputs = mm->inputs;
    inputs.resize(6, nullptr);
    inputs.push_back(q->inputs[1]);
    Value* out = q->outputs[0];
    const std::string name = mm->name, domain = mm->domain, fused = fused_with(mm, q);
    const int opset = mm->opset;
    Attributes attrs = mm->attrs;
    g.remove_node(q);
    g.remove_node(mm);
    Node* n = g.add_node("Fp8MatMul", inputs, {out}, name, domain, opset);
    n->attrs = std::move(attrs);
    n->attrs.set(kFusedAttr, fused);
    return true;
  }

  // LayerNormalization (float statistics, only Y used) whose Y `q` reads (others may too).
  static bool into_layer_norm(Graph& g, Node* ln, Node* q) {
    if (!ln->has_output(0) || ln->outputs[0] != q->inputs[0] || !ln->has_input(0) || !ln->has_input(1)) return false;
    for (size_t i = 1; i < ln->outputs.size(); ++i)
      if (ln->has_output(i) && passes::is_used(g, ln->outputs[i])) return false;
    if (ln->attrs.i("stash_type", 1) != 1) return false;
    const DType t = ln->inputs[0]->type.dtype;
    if (t != DType::kFloat32 && t != DType::kFloat16 && t != DType::kBFloat16) return false;
    const auto xd = ln->inputs[0]->type.shape.to_dims();
    if (!xd || xd->empty()) return false;
    const int64_t rank = static_cast<int64_t>(xd->size());
    int64_t axis = ln->attrs.i("axis", -1);
    if (axis < -rank || axis >= rank) return false;
    if (axis < 0) axis += rank;
    int64_t cols = 1;
    for (int64_t i = axis; i < rank; ++i) cols *= (*xd)[static_cast<size_t>(i)];
    // Scale and B per column only (they could broadcast over rows in general).
    for (size_t i = 1; i < 3 && i < ln->inputs.size(); ++i) {
      if (!ln->has_input(i)) continue;
      auto pd = ln->inputs[i]->type.shape.to_dims();
      if (!pd || dims_numel(*pd) != cols || ln->inputs[i]->type.dtype != t) return false;
      Dims tail(xd->begin() + axis, xd->end()), p = *pd;
      while (p.size() > tail.size() && p.front() == 1) p.erase(p.begin());
      while (tail.size() > p.size() && tail.front() == 1) tail.erase(tail.begin());
      if (p != tail) return false;
    }
    std::vector<Value*> inputs{ln->inputs[0], ln->inputs[1], q->inputs[1]};
    if (ln->has_input(2)) inputs.push_back(ln->inputs[2]);
    std::vector<Value*> outputs{ln->outputs[0], q->outputs[0]};
    const std::string name = ln->name, fused = fused_with(ln, q);
    const int opset = ln->opset;
    Attributes attrs;
    attrs.set("axis", axis);
    attrs.set("epsilon", ln->attrs.f("epsilon", 1e-5f));
    attrs.set(kFusedAttr, fused);
    g.remove_node(q);
    g.remove_node(ln);
    Node* n = g.add_node("Fp8LayerNorm", inputs, outputs, name, "kiln", opset);
    n->attrs = std::move(attrs);
    return true;
  }
};

}  // namespace

std::unique_ptr<Pass> make_fp8_quantize_fusion_pass() { return std::make_unique<Fp8QuantizeFusion>(); }

}  // namespace kiln
