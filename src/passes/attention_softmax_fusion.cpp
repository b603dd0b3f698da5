// [Mul or Div by a constant scalar] [-> Add(mask)] -> Softmax(last axis)  =>  kiln.MaskedSoftmax
// (ops/masked_softmax.cpp), for attention scores: one read and one write of the scores instead of
// one per op. At least one of the scale and the mask must be there.
#include <algorithm>

#include "ops/masked_softmax.hpp"
#include "passes/pass.hpp"
#include "passes/pass_util.hpp"

namespace kiln {
namespace {

using passes::is_op;


// The producer of v when v feeds only `reader` (once) and is not a graph output.
Node* sole_producer(const Graph& g, const Value* v, const Node* reader) {
  if (!v || !v->producer || std::find(g.outputs.begin(), g.outputs.end(), v) != g.outputs.end()) return nullptr;
  auto readers = g.consumers(v);
  if (readers.size() != 1 || readers[0] != reader) return nullptr;
  if (std::count(reader->inputs.begin(), reader->inputs.end(), v) != 1) return nullptr;
  return v->producer;
}

std::optional<double> scalar_constant(const Value* v, DType t) {
  if (!v || !v->is_constant() || v->type.dtype != t || v->constant->numel() != 1) return std::nullopt;
  return v->constant->scalar_as_double();
}

class AttentionSoftmaxFusion : public Pass {
 public:
  std::string_view name() const override { return "attention-softmax-fusion"; }

  Expected<bool> run(Graph& g) override {
    bool changed = false;
    std::vector<Node*> softmaxes;
    for (const auto& n : g.nodes())
      if (is_op(n.get(), "Softmax")) softmaxes.push_back(n.get());
    for (Node* sm : softmaxes) changed |= fuse(g, sm);
    if (changed) KILN_RETURN_IF_ERROR(g.topological_sort());
    return changed;
  }

 private:
  static bool fuse(Graph& g, Node* sm) {
    if (!sm->has_input(0) || !sm->has_output(0)) return false;
    Value* s = sm->inputs[0];
    const DType t = s->type.dtype;
    auto dims = s->type.shape.to_dims();
    if (!(t == DType::kFloat32 || t == DType::kFloat16 || t == DType::kBFloat16) || !dims || dims->empty()) return false;
    const int64_t rank = static_cast<int64_t>(dims->size());
    int64_t axis = sm->attrs.i("axis", -1);
    if (axis != -1 && axis != rank - 1) return false;
    if (dims->back() > 1024) return false;  // the CUDA layer keeps a row in one warp's registers
    std::vector<Node*> fused;
    Value* mask = nullptr;
    Value* scores = s;
    if (Node* add = sole_producer(g, s, sm); is_op(add, "Add") && add->num_inputs() == 2) {
      // The mask is the operand that broadcasts to the scores; the scores have the Add's shape.
      for (int i = 0; i < 2 && !mask; ++i) {
        Value *x = add->inputs[static_cast<size_t>(i)], *m = add->inputs[static_cast<size_t>(1 - i)];
        auto xd = x->type.shape.to_dims(), md = m->type.shape.to_dims();
        // The CUDA layer reads a mask row contiguously: its last dim must be the scores'.
        if (x->type.dtype == t && m->type.dtype == t && xd && md && *xd == *dims && !md->empty() &&
            md->back() == dims->back() && masked_softmax_mask_strides(*xd, *md)) {
          mask = m;
          scores = x;
        }
      }
      if (mask) fused.push_back(add);
    }
    double scale = 1.0;
    if (Node* sc = sole_producer(g, scores, fused.empty() ? sm : fused.back()); sc && sc->num_inputs() == 2) {
      std::optional<double> c;
      Value* x = nullptr;
      if (is_op(sc, "Mul")) {
        if ((c = scalar_constant(sc->inputs[1], t))) x = sc->inputs[0];
        else if ((c = scalar_constant(sc->inputs[0], t))) x = sc->inputs[1];
        if (c) scale = *c;
      } else if (is_op(sc, "Div") && (c = scalar_constant(sc->inputs[1], t)) && *c != 0.0) {
        x = sc->inputs[0];
        scale = 1.0 / *c;
      }
      if (x && x->type.shape.to_dims() == dims) {
        fused.push_back(sc);
        scores = x;
      } else {
        scale = 1.0;
      }
    }
    if (fused.empty()) return false;  // a plain Softmax stays one
    // Names in graph order: fused holds the Add, then the scale node (walking up from the Softmax).
    std::string names;
    for (auto it = fused.rbegin(); it != fused.rend(); ++it) names += (*it)->name + ",";
    names += sm->name;
    fused.push_back(sm);
    Value* out = sm->outputs[0];
    const std::string node_name = sm->name;
    const int opset = sm->opset;
    for (Node* f : fused) g.remove_node(f);
    std::vector<Value*> inputs{scores};
    if (mask) inputs.push_back(mask);
    Node* fn = g.add_node("MaskedSoftmax", inputs, {out}, node_name, "kiln", opset);
    fn->attrs.set("scale", static_cast<float>(scale));
    fn->attrs.set("kiln_fused", names);
    return true;
  }
};

}  // namespace

std::unique_ptr<Pass> make_attention_softmax_fusion_pass() { return std::make_unique<AttentionSoftmaxFusion>(); }

}  // namespace kiln
