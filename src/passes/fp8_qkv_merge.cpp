// FP8 GEMMs that read one float8 activation and feed only kiln.Attention (a transformer's Q, K and
// V projections) become one wider kiln.Fp8MatMul (N = the sum; BERT-base: 768x3 -> 2304): one
// launch and better tensor-core occupancy than three 768-wide products. Attention reads its
// Q/K/V as column ranges of the merged output through its strided views (ops/attention.hpp), so
// no split or copy is needed.
//
// cuBLASLt takes one scale per operand, so only GEMMs with equal weight scales merge: the merge is
// then exact (the model's own quantized values and scales, nothing re-rounded). kiln's FP8
// calibration (insert_qdq) gives the GEMMs that read one activation one shared weight scale for
// this reason; a QAT model with distinct Q/K/V weight scales keeps three GEMMs. FP8-specific:
// float GEMMs are left to any generic merge pass.
#include <algorithm>
#include <cstring>
#include <map>

#include "ops/attention.hpp"
#include "passes/pass.hpp"
#include "passes/pass_util.hpp"

KILN_REGISTER_PASS_INFO("fp8-qkv-merge",
                        "CUDA: FP8 GEMMs of one float8 input feeding only kiln.Attention (Q/K/V) -> one wider "
                        "kiln.Fp8MatMul read through Attention's views")

namespace kiln {
namespace {

bool is_kiln(const Node* n, const char* op) { return n && n->domain == "kiln" && n->op_type == op; }

// Attention view attribute of input i (0..2).
const char* view_name(size_t i) { return i == 0 ? "q_view" : i == 1 ? "k_view" : "v_view"; }

// The view over a row-major [rows, n] tensor moved into a [rows, n_total] one at column col:
// strides that are whole rows scale, in-row strides stay; nullopt when the in-row part of the view
// could cross a row end (then it is not a column range).
std::optional<AttentionView> remap(const AttentionView& v, const std::array<int64_t, 4>& dims, int64_t n,
                                   int64_t n_total, int64_t col) {
  AttentionView out;
  int64_t in_row = v.offset % n;
  for (size_t i = 0; i < 4; ++i) {
    const int64_t st = v.stride[i];
    if (dims[i] == 1 || st % n == 0) {
      out.stride[i] = st / n * n_total + (dims[i] == 1 ? st % n : 0);
    } else {
      out.stride[i] = st;
      in_row += (dims[i] - 1) * st;
    }
  }
  if (in_row >= n) return std::nullopt;
  out.offset = v.offset / n * n_total + v.offset % n + col;
  return out;
}

// A GEMM that may join a merge: no residual, activation or float8 output; a bias constant or none;
// its output read only by kiln.Attention nodes as Q, K or V.
bool mergeable(const Graph& g, const Node* mm) {
  if (!mm->has_output(0) || mm->num_inputs() < 4 || mm->num_inputs() > 5 || !mm->has_input(2) ||
      !mm->inputs[2]->is_constant() || mm->inputs[2]->constant->rank() != 2 || !mm->has_input(3) ||
      !passes::scalar_constant(mm->inputs[3]) || !passes::scalar_constant(mm->inputs[1]))
    return false;
  if (!mm->attrs.s("activation", "").empty()) return false;
  if (mm->has_input(4) && (!mm->inputs[4]->is_constant() || mm->inputs[4]->constant->rank() != 1)) return false;
  const Value* y = mm->outputs[0];
  if (passes::is_graph_output(g, y) || !y->type.shape.to_dims()) return false;
  const auto readers = g.consumers(y);
  if (readers.empty()) return false;
  for (const Node* a : readers) {
    if (!is_kiln(a, "Attention")) return false;
    for (size_t i = 0; i < a->inputs.size(); ++i)
      if (a->inputs[i] == y && i > 2) return false;  // as the mask
  }
  return true;
}

// Whether two GEMMs can share one product: the same x and weight scales, output type and leading
// dims, and both or neither with a bias.
bool compatible(const Node* a, const Node* b) {
  return *passes::scalar_constant(a->inputs[1]) == *passes::scalar_constant(b->inputs[1]) &&
         *passes::scalar_constant(a->inputs[3]) == *passes::scalar_constant(b->inputs[3]) &&
         a->inputs[1]->type.dtype == b->inputs[1]->type.dtype &&
         a->outputs[0]->type.dtype == b->outputs[0]->type.dtype && a->has_input(4) == b->has_input(4) &&
         a->inputs[3]->type.dtype == b->inputs[3]->type.dtype &&
         a->inputs[2]->constant->dim(1) == b->inputs[2]->constant->dim(1);
}

class Fp8QkvMerge : public Pass {
 public:
  std::string_view name() const override { return "fp8-qkv-merge"; }

  Expected<bool> run(Graph& g) override {
    std::map<const Value*, std::vector<Node*>> by_input;
    std::vector<const Value*> order;
    for (const auto& n : g.nodes())
      if (is_kiln(n.get(), "Fp8MatMul") && n->has_input(0) && mergeable(g, n.get())) {
        auto& list = by_input[n->inputs[0]];
        if (list.empty()) order.push_back(n->inputs[0]);
        list.push_back(n.get());
      }
    bool changed = false;
    for (const Value* x : order) {
      std::vector<Node*>& all = by_input[x];
      while (all.size() >= 2) {
        std::vector<Node*> group{all[0]}, rest;
        for (size_t i = 1; i < all.size(); ++i) (compatible(all[0], all[i]) ? group : rest).push_back(all[i]);
        if (group.size() >= 2 && merge(g, group)) changed = true;
        all = rest;
      }
    }
    if (changed) KILN_RETURN_IF_ERROR(g.topological_sort());
    return changed;
  }

 private:
  static bool merge(Graph& g, const std::vector<Node*>& group) {
    const Node* first = group[0];
    const int64_t k = first->inputs[2]->constant->dim(1);
    int64_t n_total = 0;
    double s_max = 0;  // the common weight scale (`compatible` made them equal)
    for (const Node* mm : group) {
      n_total += mm->inputs[2]->constant->dim(0);
      s_max = std::max(s_max, *passes::scalar_constant(mm->inputs[3]));
    }
    const Dims y0 = *first->outputs[0]->type.shape.to_dims();
    for (const Node* mm : group) {
      Dims yd = *mm->outputs[0]->type.shape.to_dims();
      yd.back() = y0.back();
      if (yd != y0) return false;
    }
    // Every Attention view must stay a column range of the merged output; checked before changing anything.
    struct Use {
      Node* attention;
      size_t input;
      AttentionView view;
    };
    std::vector<Use> uses;
    int64_t col = 0;
    for (const Node* mm : group) {
      const int64_t n = mm->inputs[2]->constant->dim(0);
      for (Node* a : g.consumers(mm->outputs[0])) {
        auto geo = attention_geometry(*a);
        if (!geo.ok()) return false;
        const std::array<int64_t, 4> qd{geo->batch, geo->heads, geo->sq, geo->d},
            kd{geo->batch, geo->heads, geo->sk, geo->d}, vd{geo->batch, geo->heads, geo->sk, geo->dv};
        for (size_t i = 0; i < 3; ++i) {
          if (a->inputs[i] != mm->outputs[0]) continue;
          const AttentionView& v = i == 0 ? geo->q : i == 1 ? geo->k : geo->v;
          auto moved = remap(v, i == 0 ? qd : i == 1 ? kd : vd, n, n_total, col);
          if (!moved) return false;
          uses.push_back({a, i, *moved});
        }
      }
      col += n;
    }
    // The merged weight [n_total, k] (one scale, equal for all: `compatible`); the bias concatenated.
    Tensor w(DType::kFloat8E4M3FN, {n_total, k});
    auto* dst = static_cast<uint8_t*>(w.raw_data());
    const bool bias = first->has_input(4);
    const DType bias_t = bias ? first->inputs[4]->constant->dtype() : DType::kFloat32;
    std::vector<double> b;
    for (const Node* mm : group) {
      const Tensor& wj = *mm->inputs[2]->constant;
      std::memcpy(dst, wj.raw_data(), wj.nbytes());
      dst += wj.nbytes();
      if (bias) {
        auto bj = mm->inputs[4]->constant->to_double_vector();
        b.insert(b.end(), bj.begin(), bj.end());
      }
    }
    std::string fused;
    for (const Node* mm : group) {
      const std::string f = mm->attrs.s(kFusedAttr, "");
      fused += (fused.empty() ? "" : ",") + (f.empty() ? passes::fused_names({mm}) : f);
    }
    const std::string name = g.unique_name(first->name + "_qkv");
    Value* wv = g.add_constant(g.unique_name(name + "_w"), std::move(w));
    Value* sv = g.add_constant(g.unique_name(name + "_sw"),
                               Tensor::scalar<double>(s_max).cast(first->inputs[3]->type.dtype));
    std::vector<Value*> inputs{first->inputs[0], first->inputs[1], wv, sv};
    if (bias)
      inputs.push_back(g.add_constant(g.unique_name(name + "_b"), Tensor::from_vector<double>({n_total}, b).cast(bias_t)));
    Dims yd = y0;
    yd.back() = n_total;
    Value* y = g.add_value(name, {first->outputs[0]->type.dtype, Shape::from_dims(yd)});
    const int opset = first->opset;
    for (const Use& u : uses) {
      u.attention->inputs[u.input] = y;
      auto v = u.view;
      u.attention->attrs.set(view_name(u.input),
                             std::vector<int64_t>{v.offset, v.stride[0], v.stride[1], v.stride[2], v.stride[3]});
    }
    for (Node* mm : group) g.remove_node(mm);
    Node* merged = g.add_node("Fp8MatMul", inputs, {y}, name, "kiln", opset);
    merged->attrs.set(kFusedAttr, fused);
    return true;
  }
};

}  // namespace

std::unique_ptr<Pass> make_fp8_qkv_merge_pass() { return std::make_unique<Fp8QkvMerge>(); }

}  // namespace kiln
