// Reduced precision: float32 activations and weights become float16 (or bfloat16). Graph inputs
// and outputs keep their float32 bindings, with Casts at the boundary, as TensorRT does.
#include <algorithm>
#include <functional>
#include <map>
#include <set>

#include "ops/shape_inference.hpp"
#include "passes/pass.hpp"

namespace kiln {

namespace {

// Inputs that must stay float32 whatever the data type (ONNX gives them a fixed type).
bool fixed_float_input(const Node& n, size_t i) {
  if (n.op_type == "Resize") return i == 1 || i == 2;  // roi, scales
  if (n.op_type == "Upsample") return i == 1;
  return false;
}

// Attributes that name the float32 type of a produced value.
const char* dtype_attribute(const Node& n) {
  if (n.op_type == "Cast") return "to";
  if (n.op_type == "RandomNormal" || n.op_type == "RandomUniform" || n.op_type == "RandomNormalLike" ||
      n.op_type == "RandomUniformLike" || n.op_type == "EyeLike")
    return "dtype";
  return nullptr;
}

class Precision : public Pass {
 public:
  explicit Precision(DType low) : low_(low) {}
  std::string_view name() const override { return "precision"; }

  // Not idempotent (it adds boundary casts each time): run it once, outside the fixed-point loop.
  Expected<bool> run(Graph& g) override {
    bool changed = false;
    std::set<const Node*> boundary;
    // Graph inputs: x (float32) -> Cast -> x_low, and every reader uses x_low.
    for (Value* in : std::vector<Value*>(g.inputs)) {
      if (in->type.dtype != DType::kFloat32) continue;
      Value* low = g.add_value(g.unique_name(in->name + "_" + std::string(dtype_name(low_))),
                               TensorType{low_, in->type.shape});
      replace_uses(g, in, low);
      Node* cast = g.add_node("Cast", {in}, {low}, in->name + "_to_" + std::string(dtype_name(low_)), "", 21);
      cast->attrs.set("to", dtype_code(low_));
      boundary.insert(cast);
      changed = true;
    }
    // Graph outputs produced by nodes: the node writes y_low, a Cast makes float32 y.
    for (Value* out : g.outputs) {
      if (out->type.dtype != DType::kFloat32 || !out->producer) continue;
      Node* prod = out->producer;
      Value* low = g.add_value(g.unique_name(out->name + "_" + std::string(dtype_name(low_))),
                               TensorType{low_, out->type.shape});
      for (Value*& o : prod->outputs)
        if (o == out) o = low;
      low->producer = prod;
      replace_uses(g, out, low);  // other readers of y inside the graph read the low value too
      Node* cast = g.add_node("Cast", {low}, {out}, out->name + "_to_float32", "", 21);
      cast->attrs.set("to", dtype_code(DType::kFloat32));
      boundary.insert(cast);
      changed = true;
    }
    // Weights, dtype attributes and the remaining activations.
    std::map<const Value*, Value*> low_copy;  // a float32 constant -> its low-precision twin
    for (const auto& n : g.nodes()) {
      if (boundary.count(n.get())) continue;
      for (size_t i = 0; i < n->inputs.size(); ++i) {
        Value* v = n->inputs[i];
        if (!v || !v->constant || v->constant->dtype() != DType::kFloat32 || fixed_float_input(*n, i)) continue;
        auto it = low_copy.find(v);
        if (it == low_copy.end()) {
          Value* c = g.add_constant(g.unique_name(v->name + "_" + std::string(dtype_name(low_))),
                                    v->constant->cast(low_));
          it = low_copy.emplace(v, c).first;
        }
        n->inputs[i] = it->second;
        changed = true;
      }
      if (const char* attr = dtype_attribute(*n); attr && n->attrs.i(attr, 1) == dtype_code(DType::kFloat32)) {
        n->attrs.set(attr, dtype_code(low_));
        changed = true;
      }
      if (n->op_type == "ConstantOfShape") {
        const Tensor* value = n->attrs.tensor("value");
        if (!value || value->dtype() == DType::kFloat32) {
          n->attrs.set("value", value ? value->cast(low_) : Tensor::zeros(low_, {1}));
          changed = true;
        }
      }
      for (Value* o : n->outputs)
        if (o && o->type.dtype == DType::kFloat32 && std::find(g.outputs.begin(), g.outputs.end(), o) == g.outputs.end()) {
          o->type.dtype = low_;
          changed = true;
        }
    }
    return changed;
  }

 private:
  // ONNX TensorProto codes, as the Cast `to` attribute holds them after import.
  static int64_t dtype_code(DType t) {
    switch (t) {
      case DType::kFloat32: return 1;
      case DType::kFloat16: return 10;
      case DType::kBFloat16: return 16;
      default: return 0;
    }
  }

  static void replace_uses(Graph& g, Value* from, Value* to) {
    std::function<void(const Graph&)> visit = [&](const Graph& sg) {
      for (const auto& n : sg.nodes()) {
        for (Value*& v : n->inputs)
          if (v == from) v = to;
        for (const Graph* sub : n->subgraphs()) visit(*sub);
      }
    };
    visit(g);
  }

  DType low_;
};

}  // namespace

std::unique_ptr<Pass> make_precision_pass(DType low) { return std::make_unique<Precision>(low); }

}  // namespace kiln
