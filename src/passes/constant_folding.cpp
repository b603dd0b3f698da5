#include <set>

#include "backends/cpu/cpu_executor.hpp"
#include "passes/pass.hpp"

namespace kiln {

namespace {

// DequantizeLinear of int8/uint8/float8 data marks quantized weights (explicit Q/DQ): folding it to float
// would hide them from the backends' Q/DQ fusion, so it stays a node (the CPU runs it per inference).
bool is_weight_dequantize(const Node& n) {
  return n.domain.empty() && n.op_type == "DequantizeLinear" && n.has_input(0) &&
         (n.inputs[0]->type.dtype == DType::kInt8 || n.inputs[0]->type.dtype == DType::kUInt8 ||
          n.inputs[0]->type.dtype == DType::kFloat8E4M3FN);
}

bool is_random(const Node& n) {
  static const std::set<std::string> kRandom = {"RandomNormal", "RandomUniform", "RandomNormalLike",
                                                "RandomUniformLike", "Bernoulli", "Multinomial"};
  return n.domain.empty() && kRandom.count(n.op_type);
}

class ConstantFolding : public Pass {
 public:
  ConstantFolding(bool fold_random, uint64_t max_bytes, bool keep_weight_dq)
      : fold_random_(fold_random), max_bytes_(max_bytes), keep_weight_dq_(keep_weight_dq) {}
  std::string_view name() const override { return "constant-folding"; }

  Expected<bool> run(Graph& g) override {
    bool changed = false;
    std::vector<Node*> nodes;
    for (const auto& n : g.nodes()) nodes.push_back(n.get());
    for (Node* n : nodes) {
      if (!n->subgraphs().empty() || (!fold_random_ && is_random(*n)) ||
          (keep_weight_dq_ && is_weight_dequantize(*n)))
        continue;
      bool foldable = true;
      for (const Value* v : n->inputs) foldable &= !v || v->is_constant();
      if (!foldable) continue;
      // Shape inference may already know every output (e.g. Shape of a static value).
      bool known = true;
      for (const Value* o : n->outputs) known &= !o || o->is_constant();
      if (!known) {
        auto outs = run_node_on_cpu(*n);
        if (!outs.ok()) continue;  // no CPU kernel, or it fails: leave the node for the backend
        uint64_t bytes = 0;
        for (const Tensor& t : *outs) bytes += t.nbytes();
        if (bytes > max_bytes_) continue;
        for (size_t i = 0; i < n->outputs.size(); ++i)
          if (n->outputs[i]) n->outputs[i]->constant = (*outs)[i];
      }
      for (Value* o : n->outputs)
        if (o) o->type = TensorType{o->constant->dtype(), Shape::from_dims(o->constant->dims())};
      g.remove_node(n);
      changed = true;
    }
    return changed;
  }

 private:
  bool fold_random_;
  uint64_t max_bytes_;
  bool keep_weight_dq_;
};

}  // namespace

std::unique_ptr<Pass> make_constant_folding_pass(bool fold_random, uint64_t max_bytes, bool keep_weight_dequantize) {
  return std::make_unique<ConstantFolding>(fold_random, max_bytes, keep_weight_dequantize);
}

}  // namespace kiln
