// BERT's separate query, key and value projections -> one GEMM: kiln.FusedMatMul nodes reading the
// same input, each with a constant 2-D weight [K, Ni] and bias, no residual and no activation, whose
// outputs only kiln.Attention nodes read as Q, K or V, become one FusedMatMul with the weights and
// biases concatenated along N; each attention then reads its Q/K/V as a column slice (its views
// re-strided over the wider output). One [rows, 3*768] GEMM keeps the tensor cores busier than three
// [rows, 768] ones and reads the input once. Float FusedMatMul only: FP8 plans' kiln.Fp8MatMul
// projections are not touched.
#include <algorithm>
#include <cstring>
#include <map>

#include "ops/attention.hpp"
#include "passes/pass.hpp"
#include "passes/pass_util.hpp"

namespace kiln {
namespace {

using passes::is_graph_output;

bool is_kiln(const Node* n, const char* op) { return n && n->domain == "kiln" && n->op_type == op; }

// The FusedMatMul nodes a merge can take: float, constant 2-D B and 1-D bias, no residual/activation.
bool mergeable(const Node* n) {
  if (!is_kiln(n, "FusedMatMul") || n->num_inputs() != 3 || !n->has_input(0) || !n->has_output(0)) return false;
  if (!n->attrs.s("activation", "").empty()) return false;
  const Value *b = n->inputs[1], *bias = n->inputs[2];
  const DType t = n->outputs[0]->type.dtype;
  return (t == DType::kFloat32 || t == DType::kFloat16 || t == DType::kBFloat16) && b->is_constant() &&
         b->constant->rank() == 2 && b->constant->dtype() == t && bias && bias->is_constant() &&
         bias->constant->rank() == 1 && bias->constant->dtype() == t && n->outputs[0]->type.shape.is_static();
}

// Concatenates 2-D tensors [K, Ni] along dim 1 (any dtype).
Tensor concat_columns(const std::vector<const Tensor*>& parts) {
  const int64_t k = parts[0]->dim(0);
  int64_t n = 0;
  for (const Tensor* p : parts) n += p->dim(1);
  const size_t es = dtype_size(parts[0]->dtype());
  Tensor out(parts[0]->dtype(), {k, n});
  auto* dst = static_cast<unsigned char*>(out.raw_data());
  int64_t col = 0;
  for (const Tensor* p : parts) {
    const auto* src = static_cast<const unsigned char*>(p->raw_data());
    const int64_t w = p->dim(1);
    for (int64_t r = 0; r < k; ++r)
      std::memcpy(dst + static_cast<size_t>(r * n + col) * es, src + static_cast<size_t>(r * w) * es,
                  static_cast<size_t>(w) * es);
    col += w;
  }
  return out;
}

class QkvMerge : public Pass {
 public:
  std::string_view name() const override { return "qkv-merge"; }

  Expected<bool> run(Graph& g) override {
    // Group the candidates by their input, in graph order.
    std::map<const Value*, std::vector<Node*>> by_input;
    std::vector<const Value*> order;
    for (const auto& n : g.nodes()) {
      if (!mergeable(n.get()) || !only_attention_reads(g, n->outputs[0])) continue;
      auto& group = by_input[n->inputs[0]];
      if (group.empty()) order.push_back(n->inputs[0]);
      group.push_back(n.get());
    }
    bool changed = false;
    for (const Value* in : order) {
      auto& group = by_input[in];
      if (group.size() >= 2) changed |= merge(g, group);
    }
    if (changed) KILN_RETURN_IF_ERROR(g.topological_sort());
    return changed;
  }

 private:
  // Whether every reader of `v` is a kiln.Attention of this graph reading it as Q, K or V only.
  static bool only_attention_reads(const Graph& g, const Value* v) {
    if (is_graph_output(g, v)) return false;
    auto readers = g.consumers(v);
    if (readers.empty()) return false;
    for (const Node* r : readers) {
      if (!is_kiln(r, "Attention") || r->owner != &g) return false;
      for (size_t i = 3; i < r->inputs.size(); ++i)
        if (r->inputs[i] == v) return false;
    }
    return true;
  }

  static bool merge(Graph& g, const std::vector<Node*>& group) {
    const Node* first = group[0];
    const DType t = first->outputs[0]->type.dtype;
    const int64_t k = first->inputs[1]->constant->dim(0);
    const Dims out0 = *first->outputs[0]->type.shape.to_dims();
    const Dims rows(out0.begin(), out0.end() - 1);
    int64_t total = 0;
    std::vector<int64_t> base;  // each member's first column in the merged output
    for (const Node* n : group) {
      const Dims d = *n->outputs[0]->type.shape.to_dims();
      if (n->outputs[0]->type.dtype != t || n->inputs[1]->constant->dim(0) != k ||
          Dims(d.begin(), d.end() - 1) != rows)
        return false;
      base.push_back(total);
      total += d.back();
    }
    Dims merged_dims = rows;
    merged_dims.push_back(total);

    // Every attention reading a member, with its views re-strided over the merged output.
    std::vector<std::pair<Node*, AttentionGeometry>> readers;
    for (size_t m = 0; m < group.size(); ++m) {
      Value* v = group[m]->outputs[0];
      const Dims old_dims = *v->type.shape.to_dims();
      std::vector<int64_t> same(old_dims.size());
      for (size_t i = 0; i < same.size(); ++i) same[i] = static_cast<int64_t>(i);
      for (Node* r : g.consumers(v)) {
        auto it = std::find_if(readers.begin(), readers.end(), [&](const auto& p) { return p.first == r; });
        if (it == readers.end()) {
          auto geo = attention_geometry(*r);
          if (!geo.ok()) return false;
          readers.emplace_back(r, std::move(*geo));
          it = readers.end() - 1;
        }
        AttentionGeometry& geo = it->second;
        AttentionView* views[3] = {&geo.q, &geo.k, &geo.v};
        const std::array<int64_t, 4> sizes[3] = {{geo.batch, geo.heads, geo.sq, geo.d},
                                                 {geo.batch, geo.heads, geo.sk, geo.d},
                                                 {geo.batch, geo.heads, geo.sk, geo.dv}};
        for (size_t i = 0; i < 3; ++i)
          if (r->has_input(i) && r->inputs[i] == v &&
              !passes::remap_attention_view(*views[i], sizes[i], old_dims, merged_dims, same, base[m]))
            return false;
      }
    }

    std::vector<const Tensor*> weights, biases;
    std::string names;
    for (const Node* n : group) {
      weights.push_back(&*n->inputs[1]->constant);
      biases.push_back(&*n->inputs[2]->constant);
      names += (names.empty() ? "" : ",") + n->attrs.s(kFusedAttr, n->name);
    }
    std::vector<Tensor> bias_rows;
    for (const Tensor* b : biases) bias_rows.push_back(b->reshaped({1, b->numel()}));
    std::vector<const Tensor*> bias_ptrs;
    for (const Tensor& b : bias_rows) bias_ptrs.push_back(&b);
    const std::string base_name = first->name.empty() ? "qkv" : first->name;
    Value* w = g.add_constant(g.unique_name(base_name + "/qkv_weight"), concat_columns(weights));
    Value* bias = g.add_constant(g.unique_name(base_name + "/qkv_bias"), concat_columns(bias_ptrs).reshaped({total}));
    Value* out = g.add_value(g.unique_name(base_name + "/qkv"), {t, Shape::from_dims(merged_dims)});
    Value* in = first->inputs[0];
    const int opset = first->opset;
    std::vector<Value*> old_outputs;
    for (Node* n : group) old_outputs.push_back(n->outputs[0]);
    for (Node* n : group) g.remove_node(n);
    Node* fm = g.add_node("FusedMatMul", {in, w, bias}, {out}, base_name + "/qkv", "kiln", opset);
    fm->attrs.set("activation", std::string());
    fm->attrs.set(kFusedAttr, names);
    for (auto& [r, geo] : readers) {
      for (size_t i = 0; i < 3; ++i)
        if (r->has_input(i) && std::find(old_outputs.begin(), old_outputs.end(), r->inputs[i]) != old_outputs.end())
          r->inputs[i] = out;
      set_attention_attrs(r->attrs, geo);
    }
    return true;
  }
};

}  // namespace

std::unique_ptr<Pass> make_qkv_merge_pass() { return std::make_unique<QkvMerge>(); }

}  // namespace kiln
