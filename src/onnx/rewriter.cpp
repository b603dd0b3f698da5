#include "onnx/rewriter.hpp"

#include "ops/op_registry.hpp"

namespace kiln::onnx_import {

Tensor int64_vector(const std::vector<int64_t>& v) {
  return Tensor::from_vector<int64_t>({static_cast<int64_t>(v.size())}, v);
}

Tensor float_vector(const std::vector<float>& v) {
  return Tensor::from_vector<float>({static_cast<int64_t>(v.size())}, v);
}

Tensor scalar_of(DType dtype, double value) {
  Tensor t;
  dispatch_dtype(dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    if constexpr (std::is_same_v<T, bool>) {
      t = Tensor::scalar<bool>(value != 0);
    } else if constexpr (std::is_same_v<T, Half> || std::is_same_v<T, BFloat16>) {
      t = Tensor::scalar<T>(T(static_cast<float>(value)));
    } else {
      t = Tensor::scalar<T>(static_cast<T>(value));
    }
  });
  return t;
}

TensorType Rewriter::type(const Value* v) const {
  if (!v) return {};
  if (v->constant) return {v->constant->dtype(), Shape::from_dims(v->constant->dims())};
  auto it = inferred_.find(v);
  if (it == inferred_.end()) return v->type;
  // Inferred wins; declared fills what inference left unknown.
  TensorType t = it->second;
  if (t.dtype == DType::kUndefined) t.dtype = v->type.dtype;
  if (!t.shape.has_rank()) t.shape = v->type.shape;
  return t;
}

std::string Rewriter::unique_name(const std::string& base) const {
  std::string name = base;
  for (int i = 1; g_.find_value(name); ++i) name = base + "_" + std::to_string(i);
  return name;
}

Value* Rewriter::new_value(const Node& origin, const std::string& suffix) {
  return g_.add_value(unique_name(origin.name + "/" + suffix));
}

Value* Rewriter::new_constant(const Node& origin, const std::string& suffix, Tensor t) {
  return g_.add_constant(unique_name(origin.name + "/" + suffix), std::move(t));
}

Value* Rewriter::scalar_like(Node& origin, const std::string& suffix, double value, const Value* like) {
  DType dt = type(like).dtype;
  if (dt != DType::kUndefined && dt != DType::kString) return new_constant(origin, suffix, scalar_of(dt, value));
  Value* f = new_constant(origin, suffix + "_f32", Tensor::scalar<float>(static_cast<float>(value)));
  Value* out = new_value(origin, suffix);
  add_before(origin, "CastLike", {f, const_cast<Value*>(like)}, {out});
  return out;
}

Node* Rewriter::add(Node& origin, const std::string& op, std::vector<Value*> in, std::vector<Value*> out,
                    Attributes attrs) {
  // Named after the node it comes from, so errors point at the model's node.
  std::string name = origin.name + "/" + op + "_" + std::to_string(counter_++);
  Node* n = g_.add_node(op, std::move(in), std::move(out), name, "", origin.opset);
  n->attrs = std::move(attrs);
  return n;
}

Node* Rewriter::add_before(Node& origin, const std::string& op, std::vector<Value*> in,
                           std::vector<Value*> out, Attributes attrs) {
  Node* n = add(origin, op, std::move(in), std::move(out), std::move(attrs));
  before_.push_back(n);
  return n;
}

Node* Rewriter::add_after(Node& origin, const std::string& op, std::vector<Value*> in,
                          std::vector<Value*> out, Attributes attrs) {
  Node* n = add(origin, op, std::move(in), std::move(out), std::move(attrs));
  after_.push_back(n);
  return n;
}

void Rewriter::set_input(Node& n, size_t i, Value* v) {
  if (n.inputs.size() <= i) n.inputs.resize(i + 1, nullptr);
  n.inputs[i] = v;
  while (!n.inputs.empty() && !n.inputs.back()) n.inputs.pop_back();
}

void Rewriter::set_output(Node& n, size_t i, Value* v) {
  if (n.outputs.size() <= i) n.outputs.resize(i + 1, nullptr);
  n.outputs[i] = v;
  if (v) v->producer = &n;
}

void Rewriter::ints_attr_to_input(Node& n, const std::string& attr, size_t i) {
  const auto* v = n.attrs.get_ptr<std::vector<int64_t>>(attr);
  if (!v) {
    n.attrs.erase(attr);  // present with another type: dropped, inference reports the missing input
    return;
  }
  Value* c = new_constant(n, attr, int64_vector(*v));
  n.attrs.erase(attr);
  set_input(n, i, c);
}

void Rewriter::infer(const Node& n) {
  const OpSchema* schema = OpRegistry::instance().schema(n.domain, n.op_type);
  if (!schema) return;
  std::vector<TensorType> types;
  std::vector<const Tensor*> values;
  for (const Value* v : n.inputs) {
    TensorType t = type(v);
    if (v && t.dtype == DType::kUndefined) return;  // an upstream type is unknown
    types.push_back(std::move(t));
    values.push_back(constant(v));
  }
  InferContext ctx(n, std::move(types), std::move(values));
  if (!infer_node(*schema, ctx).ok()) return;  // reported by infer_shapes, with the whole graph
  for (size_t i = 0; i < n.outputs.size() && i < ctx.outputs().size(); ++i)
    if (n.outputs[i]) inferred_[n.outputs[i]] = ctx.outputs()[i];
}

}  // namespace kiln::onnx_import
