// Reduced precision: float32 activations and weights become float16 (or bfloat16), node by node as
// a PrecisionAssignment says (all of them for a plain --fp16 build). Graph inputs and outputs keep
// their float32 bindings, with Casts at the boundary, as TensorRT does; a float32 value read by a
// node of another precision goes through one Cast per (value, precision).
#include "passes/precision.hpp"

#include <algorithm>
#include <functional>
#include <map>
#include <set>

#include "ops/onnx_dtype.hpp"
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

bool is_float32_tensor(const Value* v) {
  return v && v->type.is_tensor() && v->type.dtype == DType::kFloat32;
}

void replace_uses(const Graph& g, Value* from, Value* to) {
  for (const auto& n : g.nodes()) {
    for (Value*& v : n->inputs)
      if (v == from) v = to;
    for (const Graph* sub : n->subgraphs()) replace_uses(*sub, from, to);
  }
}

class MixedPrecision : public Pass {
 public:
  explicit MixedPrecision(PrecisionAssignment a) : a_(std::move(a)) {}
  std::string_view name() const override { return "precision"; }

  // Not idempotent (it adds boundary casts each time): run it once, outside the fixed-point loop.
  Expected<bool> run(Graph& g) override {
    KILN_RETURN_IF_ERROR(g.topological_sort());
    // The float32 activations this pass may retype (constants are converted per reader instead).
    for (const auto& v : g.values())
      if (!v->constant && is_float32_tensor(v.get())) f32_.insert(v.get());
    std::vector<Node*> order;
    for (const auto& n : g.nodes()) order.push_back(n.get());
    bool changed = false;
    std::map<std::pair<const Value*, DType>, Value*> low_consts;
    for (Node* n : order) {
      const DType t = target(*n);
      for (size_t i = 0; i < n->inputs.size(); ++i) {
        Value* v = n->inputs[i];
        if (!v || fixed_float_input(*n, i)) continue;
        if (v->constant) {
          if (t == DType::kFloat32 || v->constant->dtype() != DType::kFloat32) continue;
          auto key = std::make_pair(static_cast<const Value*>(v), t);
          auto it = low_consts.find(key);
          if (it == low_consts.end())
            it = low_consts
                     .emplace(key, g.add_constant(g.unique_name(v->name + "_" + std::string(dtype_name(t))),
                                                  v->constant->cast(t)))
                     .first;
          n->inputs[i] = it->second;
          changed = true;
        } else if (f32_.count(v) && v->type.dtype != t) {
          n->inputs[i] = convert(g, v, t);
          changed = true;
        }
      }
      // Values of this graph that the node's subgraphs read (captured, not passed as inputs).
      for (const Graph* sg : n->subgraphs())
        for (Value* v : sg->outer_scope_values())
          if (f32_.count(v) && v->type.dtype != t) {
            replace_uses(*sg, v, convert(g, v, t));
            changed = true;
          }
      if (t == DType::kFloat32) continue;
      if (const char* attr = dtype_attribute(*n); attr && n->attrs.i(attr, 1) == onnx_code_of(DType::kFloat32)) {
        n->attrs.set(attr, onnx_code_of(t));
        changed = true;
      }
      if (n->op_type == "ConstantOfShape") {
        const Tensor* value = n->attrs.tensor("value");
        if (!value || value->dtype() == DType::kFloat32) {
          n->attrs.set("value", value ? value->cast(t) : Tensor::zeros(t, {1}));
          changed = true;
        }
      }
      for (Value* o : n->outputs)
        if (o && f32_.count(o)) {
          o->type.dtype = t;
          changed = true;
        }
      for (const Graph* sg : n->subgraphs()) changed |= lower(const_cast<Graph&>(*sg), t);
    }
    changed |= restore_outputs(g);
    if (changed) KILN_RETURN_IF_ERROR(g.topological_sort());  // the Casts were appended
    return changed;
  }

 private:
  DType target(const Node& n) const {
    if (auto it = a_.nodes.find(precision_key(n)); it != a_.nodes.end()) return it->second;
    bool float_out = false;
    for (const Value* o : n.outputs) float_out |= o && f32_.count(o) > 0;
    const bool follow = moves_data(n) || (!float_out && n.subgraphs().empty() && !dtype_attribute(n));
    // Its first float activation's current precision; graph inputs count as `fallback` (their
    // float32 binding is only the interface).
    if (follow)
      for (const Value* v : n.inputs)
        if (v && f32_.count(v)) return v->producer ? v->type.dtype : a_.fallback;
    return a_.fallback;
  }

  // `v` in precision `to`, through a Cast made once per (value, precision).
  Value* convert(Graph& g, Value* v, DType to) {
    auto key = std::make_pair(static_cast<const Value*>(v), to);
    if (auto it = casts_.find(key); it != casts_.end()) return it->second->outputs[0];
    std::string suffix(dtype_name(to));
    Value* c = g.add_value(g.unique_name(v->name + "_" + suffix), TensorType{to, v->type.shape});
    Node* cast = g.add_node("Cast", {v}, {c}, v->name + "_to_" + suffix, "", 21);
    cast->attrs.set("to", onnx_code_of(to));
    casts_[key] = cast;
    return c;
  }

  // Graph outputs computed in reduced precision: the producer writes y_low, a Cast makes float32 y
  // (the binding keeps its name and type); readers of y inside the graph read y_low.
  bool restore_outputs(Graph& g) {
    bool changed = false;
    for (Value* out : std::vector<Value*>(g.outputs)) {
      if (!f32_.count(out) || out->type.dtype == DType::kFloat32 || !out->producer) continue;
      const DType t = out->type.dtype;
      Node* prod = out->producer;
      Value* low = g.add_value(g.unique_name(out->name + "_" + std::string(dtype_name(t))),
                               TensorType{t, out->type.shape});
      for (Value*& o : prod->outputs)
        if (o == out) o = low;
      low->producer = prod;
      // A Cast back to float32 made for a float32 reader is this output now.
      if (auto it = casts_.find({out, DType::kFloat32}); it != casts_.end()) {
        replace_uses(g, it->second->outputs[0], out);
        g.remove_node(it->second);
        casts_.erase(it);
      }
      replace_uses(g, out, low);
      out->type.dtype = DType::kFloat32;
      Node* cast = g.add_node("Cast", {low}, {out}, out->name + "_to_float32", "", 21);
      cast->attrs.set("to", onnx_code_of(DType::kFloat32));
      changed = true;
    }
    return changed;
  }

  // Lowers a subgraph (If branch, Loop/Scan body) whole to `low`, its inputs and outputs included:
  // they bind to values of the enclosing node, which runs in `low`.
  static bool lower(Graph& g, DType low) {
    bool changed = false;
    for (Value* in : g.inputs)
      if (is_float32_tensor(in)) {
        in->type.dtype = low;
        changed = true;
      }
    std::map<const Value*, Value*> low_copy;  // a float32 constant -> its low-precision twin
    for (const auto& n : g.nodes()) {
      for (size_t i = 0; i < n->inputs.size(); ++i) {
        Value* v = n->inputs[i];
        if (!v || !v->constant || v->constant->dtype() != DType::kFloat32 || fixed_float_input(*n, i)) continue;
        auto it = low_copy.find(v);
        if (it == low_copy.end())
          it = low_copy
                   .emplace(v, g.add_constant(g.unique_name(v->name + "_" + std::string(dtype_name(low))),
                                              v->constant->cast(low)))
                   .first;
        n->inputs[i] = it->second;
        changed = true;
      }
      if (const char* attr = dtype_attribute(*n); attr && n->attrs.i(attr, 1) == onnx_code_of(DType::kFloat32)) {
        n->attrs.set(attr, onnx_code_of(low));
        changed = true;
      }
      if (n->op_type == "ConstantOfShape") {
        const Tensor* value = n->attrs.tensor("value");
        if (!value || value->dtype() == DType::kFloat32) {
          n->attrs.set("value", value ? value->cast(low) : Tensor::zeros(low, {1}));
          changed = true;
        }
      }
      for (Value* o : n->outputs)
        if (o && !o->constant && is_float32_tensor(o)) {
          o->type.dtype = low;
          changed = true;
        }
      for (const Graph* sg : n->subgraphs()) changed |= lower(const_cast<Graph&>(*sg), low);
    }
    for (Value*& out : g.outputs)  // a subgraph output may be one of its float32 constants
      if (out->constant && out->constant->dtype() == DType::kFloat32) {
        out = g.add_constant(g.unique_name(out->name + "_" + std::string(dtype_name(low))),
                             out->constant->cast(low));
        changed = true;
      }
    return changed;
  }

  PrecisionAssignment a_;
  std::set<const Value*> f32_;
  std::map<std::pair<const Value*, DType>, Node*> casts_;
};

}  // namespace

DType PrecisionAssignment::of(const Node& n) const {
  auto it = nodes.find(precision_key(n));
  return it == nodes.end() ? fallback : it->second;
}

std::string precision_key(const Node& n) {
  if (!n.name.empty()) return n.name;
  for (const Value* v : n.outputs)
    if (v) return v->name;
  return "";
}

bool computes_float(const Node& n) {
  for (const Value* v : n.inputs)
    if (is_float32_tensor(v)) return true;
  for (const Value* v : n.outputs)
    if (is_float32_tensor(v)) return true;
  return false;
}

bool moves_data(const Node& n) {
  static const std::set<std::string> kOps{"Reshape", "Flatten", "Squeeze", "Unsqueeze", "Transpose", "Identity"};
  return n.domain.empty() && kOps.count(n.op_type) > 0;
}

std::unique_ptr<Pass> make_mixed_precision_pass(PrecisionAssignment assignment) {
  return std::make_unique<MixedPrecision>(std::move(assignment));
}

std::unique_ptr<Pass> make_precision_pass(DType low) {
  PrecisionAssignment a;
  a.fallback = low;
  return make_mixed_precision_pass(std::move(a));
}

}  // namespace kiln
