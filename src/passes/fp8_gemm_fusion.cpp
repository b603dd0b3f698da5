// Explicit FP8 quantization on the CUDA backend: a MatMul/Gemm whose activation input is
// DequantizeLinear(QuantizeLinear(x, s_x) to float8e4m3fn, s_x) and whose weight is
// DequantizeLinear(constant float8 W, s_w), both per tensor, [+ bias Add] [+ residual Add]
// [+ Relu/Gelu]  =>  kiln.Fp8MatMul(xq, s_x, Wᵀ, s_w, bias, residual) (ops/fp8_matmul.cpp), one
// cuBLASLt FP8 GEMM with its epilogue. The QuantizeLinear becomes kiln.Fp8Quantize in place, so
// GEMMs reading one x (attention's Q/K/V projections) share one quantization; the DQ nodes stay
// for other readers (dead code removes them when none is left).
#include <algorithm>

#include "passes/pass.hpp"
#include "passes/pass_util.hpp"

KILN_REGISTER_PASS_INFO("fp8-gemm-fusion",
                        "CUDA: FP8 Q/DQ around MatMul/Gemm [+ bias, residual, Relu/Gelu] -> kiln.Fp8MatMul")

namespace kiln {
namespace {

using passes::is_op;
using passes::sole_reader_once;

using passes::is_graph_output;
using passes::scalar_constant;


bool float_activation(DType t) { return t == DType::kFloat32 || t == DType::kFloat16 || t == DType::kBFloat16; }

// A zero point that is absent or a constant of zeros.
bool zero_or_absent(const Node& n) {
  if (!n.has_input(2)) return true;
  const Value* z = n.inputs[2];
  if (!z->is_constant()) return false;
  for (double v : z->constant->to_double_vector())
    if (v != 0.0) return false;
  return true;
}

// A per-tensor float8 DequantizeLinear: its one-element constant scale, else nullopt.
std::optional<double> fp8_dequant_scale(const Node* dq) {
  if (!is_op(dq, "DequantizeLinear") || !dq->has_input(0) || dq->inputs[0]->type.dtype != DType::kFloat8E4M3FN)
    return std::nullopt;
  if (dq->attrs.i("block_size", 0) != 0 || !zero_or_absent(*dq)) return std::nullopt;
  auto s = scalar_constant(dq->inputs[1]);
  if (!s || !(*s > 0) || !is_floating(dq->inputs[1]->type.dtype)) return std::nullopt;
  return s;
}

// A constant of dtype t broadcasting over the last dim only ([N], [1, N], ...), as a [N] tensor.
std::optional<Tensor> bias_row(const Value* c, DType t, int64_t n) {
  if (!c || !c->is_constant() || c->type.dtype != t) return std::nullopt;
  const Dims& d = c->constant->dims();
  if (d.empty() || d.back() != n || !std::all_of(d.begin(), d.end() - 1, [](int64_t x) { return x == 1; }))
    return std::nullopt;
  return c->constant->reshaped({n});
}

// [K, N] float8 -> [N, K] (cuBLASLt's FP8 GEMM wants the weight operand transposed, "TN").
Tensor transpose_fp8(const Tensor& w) {
  const int64_t k = w.dim(0), n = w.dim(1);
  Tensor t(DType::kFloat8E4M3FN, {n, k});
  const auto* src = static_cast<const uint8_t*>(w.raw_data());
  auto* dst = static_cast<uint8_t*>(t.raw_data());
  for (int64_t i = 0; i < k; ++i)
    for (int64_t j = 0; j < n; ++j) dst[j * k + i] = src[i * n + j];
  return t;
}

class Fp8GemmFusion : public Pass {
 public:
  std::string_view name() const override { return "fp8-gemm-fusion"; }

  Expected<bool> run(Graph& g) override {
    bool changed = false;
    std::vector<Node*> gemms;
    for (const auto& n : g.nodes())
      if (is_op(n.get(), "MatMul") || is_op(n.get(), "Gemm")) gemms.push_back(n.get());
    for (Node* mm : gemms) changed |= fuse(g, mm);
    if (changed) KILN_RETURN_IF_ERROR(g.topological_sort());
    return changed;
  }

 private:
  static bool fuse(Graph& g, Node* mm) {
    if (!mm->has_input(0) || !mm->has_input(1) || !mm->has_output(0)) return false;
    const bool gemm = mm->op_type == "Gemm";
    // Activation: DQ(Q(x, s) -> float8, s), per tensor, saturating, the same scale on both.
    Node* dq_x = mm->inputs[0]->producer;
    auto sx = fp8_dequant_scale(dq_x);
    if (!sx) return false;
    Node* q_x = dq_x->inputs[0]->producer;
    const bool converted = q_x && q_x->domain == "kiln" && q_x->op_type == "Fp8Quantize";  // by another GEMM
    if (!converted && (!is_op(q_x, "QuantizeLinear") || !q_x->has_input(0) || q_x->attrs.i("saturate", 1) != 1 ||
                       q_x->attrs.i("block_size", 0) != 0 || !zero_or_absent(*q_x)))
      return false;
    auto qs = scalar_constant(q_x->inputs[1]);
    if (!qs || *qs != *sx || !is_floating(q_x->inputs[1]->type.dtype)) return false;
    Value* x = q_x->inputs[0];
    if (!float_activation(x->type.dtype) || !x->type.shape.has_rank() || x->type.shape.rank() < 2) return false;
    // Y (and bias, residual) has the dequantized x's dtype: DQ's scale's.
    const DType t = dq_x->inputs[1]->type.dtype;
    if (!float_activation(t) || mm->outputs[0]->type.dtype != t) return false;
    // Weight: DQ(constant float8 [K, N] (or [N, K] with Gemm transB), s_w).
    Node* dq_w = mm->inputs[1]->producer;
    auto sw = fp8_dequant_scale(dq_w);
    if (!sw || !dq_w->inputs[0]->is_constant() || dq_w->inputs[0]->constant->rank() != 2) return false;
    const Tensor& w = *dq_w->inputs[0]->constant;
    const bool trans_b = gemm && mm->attrs.i("transB", 0) != 0;
    const int64_t k = trans_b ? w.dim(1) : w.dim(0), n = trans_b ? w.dim(0) : w.dim(1);
    if (x->type.shape[x->type.shape.rank() - 1].value != k) return false;
    std::optional<Tensor> bias;
    if (gemm) {
      if (mm->attrs.i("transA", 0) != 0 || mm->attrs.f("alpha", 1.f) != 1.f || x->type.shape.rank() != 2) return false;
      if (mm->has_input(2)) {
        if (mm->attrs.f("beta", 1.f) != 1.f || !(bias = bias_row(mm->inputs[2], t, n))) return false;
      }
    }
    std::vector<const Node*> fused = {mm};
    Value* out = mm->outputs[0];
    const size_t out_rank = x->type.shape.rank();
    if (!bias) {
      if (Node* add = sole_reader_once(g, out); is_op(add, "Add") && add->has_output(0) && add->num_inputs() == 2) {
        Value* c = passes::other_input(add, out);
        if (c && c->is_constant() && static_cast<size_t>(c->constant->rank()) <= out_rank &&
            (bias = bias_row(c, t, n))) {
          fused.push_back(add);
          out = add->outputs[0];
        }
      }
    }
    Value* residual = nullptr;
    if (Node* radd = sole_reader_once(g, out); is_op(radd, "Add") && radd->has_output(0) && radd->num_inputs() == 2) {
      Value* other = passes::other_input(radd, out);
      auto od = out->type.shape.to_dims(), rd = other ? other->type.shape.to_dims() : std::nullopt;
      // Exactly the output's shape (no broadcasting); it cannot depend on the chain, whose values
      // each have one reader.
      if (other && other->type.dtype == t && od && rd && *od == *rd) {
        residual = other;
        fused.push_back(radd);
        out = radd->outputs[0];
      }
    }
    std::string act, approximate = "none";
    if (Node* a = sole_reader_once(g, out); a && a->has_output(0) && (is_op(a, "Relu") || is_op(a, "Gelu"))) {
      act = a->op_type;
      if (act == "Gelu") approximate = a->attrs.s("approximate", "none");
      fused.push_back(a);
      out = a->outputs[0];
    }
    Value* wt = g.add_constant(g.unique_name(dq_w->inputs[0]->name + "_fp8t"), trans_b ? w : transpose_fp8(w));
    Value* bias_v = bias ? g.add_constant(g.unique_name(mm->name + "_bias"), *bias) : nullptr;
    if (!converted) {  // QuantizeLinear -> kiln.Fp8Quantize(x, s_x): same fp8 output, its readers keep it
      q_x->op_type = "Fp8Quantize";
      q_x->domain = "kiln";
      q_x->inputs.resize(2);
      q_x->attrs = Attributes();
    }
    std::vector<Value*> inputs{q_x->outputs[0], dq_x->inputs[1], wt, dq_w->inputs[1], bias_v};
    if (residual) inputs.push_back(residual);
    else if (!bias_v) inputs.pop_back();
    const std::string names = passes::fused_names(fused);
    const std::string node_name = mm->name;
    const int opset = mm->opset;
    for (const Node* f : fused) g.remove_node(const_cast<Node*>(f));
    Node* fn = g.add_node("Fp8MatMul", inputs, {out}, node_name, "kiln", opset);
    if (!act.empty()) fn->attrs.set("activation", act);
    if (act == "Gelu") fn->attrs.set("approximate", approximate);
    fn->attrs.set(kFusedAttr, names);
    return true;
  }
};

}  // namespace

std::unique_ptr<Pass> make_fp8_gemm_fusion_pass() { return std::make_unique<Fp8GemmFusion>(); }

}  // namespace kiln
