// Explicit-quantization (Q/DQ) fusion for the CUDA backend's INT8 layers (ops/qdq_layers.hpp):
//
//   Conv/Gemm/MatMul(DequantizeLinear(xq, s_x), DequantizeLinear(int8 constant W, s_w per channel))
//     [+ bias] [+ residual Add (float, or DequantizeLinear(zq, s_z))] [+ Relu] [-> QuantizeLinear(s_y)]
//   => kiln.QConv / kiln.QMatMul(xq, s_x, W, s_w, B, Z, s_z, s_y)
//
// With the trailing QuantizeLinear (the next layer's input quantization) the layer writes int8 and
// the chain stays int8 from layer to layer. Only symmetric int8 (zero points 0) is fused, and only
// nodes the CUDA INT8 kernels can run (qconv_int8_runnable / qmatmul_int8_runnable) and a Conv only
// where INT8 pays (qconv_int8_worthwhile: a 3-channel 3x3 conv runs faster in float16, a 7x7
// stride-2 stem does not); the rest keeps
// its Q/DQ nodes and runs as simulated quantization in float. QuantizeLinear(DequantizeLinear(q, s), s)
// is folded to q first, and QuantizeLinear(MaxPool/Concat(DequantizeLinear(q, s)...), s) to
// MaxPool/Concat(q...) on int8, and QuantizeLinear(Cast(float32 x -> float16)) reads x.
// Runs before conv-fusion and matmul-bias-fusion.
#include <algorithm>

#include "ops/fused_conv.hpp"
#include "ops/qdq_layers.hpp"
#include "passes/pass.hpp"
#include "passes/pass_util.hpp"

namespace kiln {
namespace {

using passes::is_graph_output;
using passes::other_input;
using passes::producer_of;
using passes::scalar_constant;
using passes::single_consumer;

bool is_op(const Node* n, const char* op) { return n && n->domain.empty() && n->op_type == op; }

// A zero point that is absent or an int8 constant of zeros.
bool zero_int8_zp(const Node& n, size_t i) {
  if (!n.has_input(i)) return true;
  const Value* zp = n.inputs[i];
  if (!zp->is_constant() || zp->constant->dtype() != DType::kInt8) return false;
  auto v = zp->constant->to_int64_vector();
  return v && std::all_of(v->begin(), v->end(), [](int64_t x) { return x == 0; });
}

// DequantizeLinear(q int8, scale, zero point 0) producing v.
struct Dq {
  Node* node = nullptr;
  Value* q = nullptr;
  Value* scale = nullptr;
  int64_t axis = 1;
  bool per_tensor() const { return scale->constant->numel() == 1; }
};

std::optional<Dq> match_dq(const Value* v) {
  Node* n = producer_of(v, "DequantizeLinear");
  if (!n || !n->has_input(0) || !n->has_input(1) || n->attrs.i("block_size", 0) != 0) return std::nullopt;
  if (n->inputs[0]->type.dtype != DType::kInt8 || !n->inputs[1]->is_constant() || !zero_int8_zp(*n, 2))
    return std::nullopt;
  Dq d{n, n->inputs[0], n->inputs[1], n->attrs.i("axis", 1)};
  const int64_t rank = static_cast<int64_t>(n->inputs[0]->type.shape.rank());
  if (d.axis < 0) d.axis += rank;
  return d;
}

// An activation DQ: one scale.
std::optional<Dq> match_act_dq(const Value* v) {
  auto d = match_dq(v);
  if (!d || !d->per_tensor()) return std::nullopt;
  return d;
}

// A weight DQ: constant int8 data, one scale or one per output channel along `out_axis`.
std::optional<Dq> match_weight_dq(const Value* v, int64_t out_axis) {
  auto d = match_dq(v);
  if (!d || !d->q->is_constant()) return std::nullopt;
  if (!d->per_tensor() && (d->axis != out_axis || d->scale->constant->rank() != 1)) return std::nullopt;
  return d;
}

bool same_static_type(const Value* a, const Value* b) {
  auto ad = a->type.shape.to_dims(), bd = b->type.shape.to_dims();
  return a->type.dtype == b->type.dtype && ad && bd && *ad == *bd;
}

// A constant bias of `n` values of dtype t, shaped [n] or [1, ..., n] (returned as [n]).
Value* bias_constant(Graph& g, Value* c, DType t, int64_t n) {
  if (!c || !c->is_constant() || c->type.dtype != t) return nullptr;
  const Dims& d = c->constant->dims();
  if (d.empty() || d.back() != n || !std::all_of(d.begin(), d.end() - 1, [](int64_t x) { return x == 1; }))
    return nullptr;
  if (d.size() == 1) return c;
  return g.add_constant(g.unique_name(c->name + "_row"), c->constant->reshaped({n}));
}

// The epilogue after the product: [residual Add] [Relu] [QuantizeLinear], gathered from `y` on.
struct Tail {
  std::vector<Node*> nodes;
  Value *z = nullptr, *z_scale = nullptr, *y_scale = nullptr;
  std::string activation;
  Value* out = nullptr;
};

Tail match_tail(const Graph& g, Value* y, bool allow_residual) {
  Tail t;
  t.out = y;
  Node* next = single_consumer(g, y);
  if (allow_residual && is_op(next, "Add") && next->has_output(0)) {
    Value* other = other_input(next, y);
    if (other && other != y && same_static_type(next->outputs[0], y)) {
      auto zdq = match_act_dq(other);
      if (zdq && same_static_type(other, y)) {
        t.z = zdq->q;
        t.z_scale = zdq->scale;
      } else if (same_static_type(other, y)) {
        t.z = other;
      }
      if (t.z) {
        t.nodes.push_back(next);
        t.out = next->outputs[0];
        next = single_consumer(g, t.out);
      }
    }
  }
  if (is_op(next, "Relu") && next->has_output(0)) {
    t.activation = "Relu";
    t.nodes.push_back(next);
    t.out = next->outputs[0];
    next = single_consumer(g, t.out);
  }
  if (is_op(next, "QuantizeLinear") && next->has_output(0) && next->has_input(1) &&
      next->outputs[0]->type.dtype == DType::kInt8 && scalar_constant(next->inputs[1]) && zero_int8_zp(*next, 2) &&
      next->attrs.i("block_size", 0) == 0 && *scalar_constant(next->inputs[1]) > 0) {
    t.y_scale = next->inputs[1];
    t.nodes.push_back(next);
    t.out = next->outputs[0];
  }
  return t;
}

// Replaces `head` and the tail's nodes by one kiln node.
void emit(Graph& g, Node* head, const char* op, std::vector<Value*> inputs, const Tail& t, Attributes attrs) {
  inputs.resize(5);
  inputs.push_back(t.z);
  inputs.push_back(t.z_scale);
  inputs.push_back(t.y_scale);
  while (!inputs.empty() && !inputs.back()) inputs.pop_back();
  std::vector<const Node*> fused{head};
  for (const Node* n : t.nodes) fused.push_back(n);
  attrs.set("activation", t.activation);
  attrs.set(kFusedAttr, passes::fused_names(fused));
  const std::string name = head->name;
  const int opset = head->opset;
  g.remove_node(head);
  for (Node* n : t.nodes) g.remove_node(n);
  Node* f = g.add_node(op, inputs, {t.out}, name, kKilnDomain, opset);
  f->attrs = std::move(attrs);
}

bool fuse_conv(Graph& g, Node* conv) {
  if (!conv->has_input(0) || !conv->has_input(1) || !conv->has_output(0) || !qconv_int8_runnable(*conv)) return false;
  auto x = match_act_dq(conv->inputs[0]);
  auto w = match_weight_dq(conv->inputs[1], 0);
  if (!x || !w) return false;
  const DType t = conv->outputs[0]->type.dtype;
  const int64_t m = w->q->constant->dim(0);
  if (x->scale->type.dtype != t) return false;
  // Too few input channels for the window (a 3x3 conv of an image): float16 runs it faster than
  // the int8 kernels, so it stays DequantizeLinear -> Conv.
  const Tensor& wq = *w->q->constant;
  if (wq.rank() < 3) return false;
  int64_t window = 1;
  for (int i = 2; i < wq.rank(); ++i) window *= wq.dim(i);
  const Dims strides = conv->attrs.ints("strides");
  const int64_t sh = strides.size() == 2 ? strides[0] : 1, sw = strides.size() == 2 ? strides[1] : 1;
  if (!qconv_int8_worthwhile(wq.dim(1), window, conv->attrs.i("group", 1), sh, sw)) return false;
  Value* bias = nullptr;
  if (conv->has_input(2) && !(bias = bias_constant(g, conv->inputs[2], t, m))) return false;
  Tail tail = match_tail(g, conv->outputs[0], true);
  Attributes attrs = conv->attrs;
  emit(g, conv, "QConv", {x->q, x->scale, w->q, w->scale, bias}, tail, std::move(attrs));
  return true;
}

// W (K, N) as (N, K): one row per output channel.
Value* transposed_weights(Graph& g, Value* w) {
  const Tensor& src = *w->constant;
  const int64_t k = src.dim(0), n = src.dim(1);
  Tensor t(DType::kInt8, {n, k});
  const int8_t* s = src.data<int8_t>();
  int8_t* d = t.data<int8_t>();
  for (int64_t i = 0; i < k; ++i)
    for (int64_t j = 0; j < n; ++j) d[j * k + i] = s[i * n + j];
  return g.add_constant(g.unique_name(w->name + "_nk"), std::move(t));
}

// MatMul(X, W (K, N)) [+ bias Add] or Gemm(X, W, C) with transA 0, alpha 1, beta 1.
bool fuse_matmul(Graph& g, Node* mm) {
  const bool gemm = mm->op_type == "Gemm";
  if (!mm->has_input(0) || !mm->has_input(1) || !mm->has_output(0)) return false;
  auto xd = mm->inputs[0]->type.shape.to_dims();
  auto wdims = mm->inputs[1]->type.shape.to_dims();
  if (!xd || !wdims || wdims->size() != 2 || xd->size() < 2 || (gemm && xd->size() != 2)) return false;
  const bool trans_b = gemm && mm->attrs.i("transB", 0) != 0;
  if (gemm && (mm->attrs.i("transA", 0) != 0 || mm->attrs.f("alpha", 1.f) != 1.f)) return false;
  auto x = match_act_dq(mm->inputs[0]);
  auto w = match_weight_dq(mm->inputs[1], trans_b ? 0 : 1);
  if (!x || !w) return false;
  const DType t = mm->outputs[0]->type.dtype;
  if (x->scale->type.dtype != t) return false;
  const int64_t k = trans_b ? (*wdims)[1] : (*wdims)[0], n = trans_b ? (*wdims)[0] : (*wdims)[1];
  if (!qmatmul_int8_runnable(k, n) || xd->back() != k) return false;
  Value* bias = nullptr;
  std::vector<Node*> bias_nodes;
  if (gemm && mm->has_input(2)) {
    if (mm->attrs.f("beta", 1.f) != 1.f || !(bias = bias_constant(g, mm->inputs[2], t, n))) return false;
  }
  Value* y = mm->outputs[0];
  if (!gemm) {
    Node* add = single_consumer(g, y);
    if (is_op(add, "Add") && add->has_output(0) && other_input(add, y) &&
        (bias = bias_constant(g, other_input(add, y), t, n)) && same_static_type(add->outputs[0], y)) {
      bias_nodes.push_back(add);
      y = add->outputs[0];
    }
  }
  Tail tail = match_tail(g, y, true);
  tail.nodes.insert(tail.nodes.begin(), bias_nodes.begin(), bias_nodes.end());
  Value* wt = trans_b ? w->q : transposed_weights(g, w->q);
  emit(g, mm, "QMatMul", {x->q, x->scale, wt, w->scale, bias}, tail, Attributes());
  return true;
}

// QuantizeLinear(DequantizeLinear(q, s), s) with int8 and zero points 0 is q.
bool fold_requantize(Graph& g, Node* q) {
  if (!q->has_input(0) || !q->has_input(1) || !q->has_output(0) || is_graph_output(g, q->outputs[0])) return false;
  auto d = match_act_dq(q->inputs[0]);
  if (!d || q->outputs[0]->type.dtype != DType::kInt8 || !zero_int8_zp(*q, 2)) return false;
  auto s1 = scalar_constant(d->scale), s2 = scalar_constant(q->inputs[1]);
  if (!s1 || !s2 || *s1 != *s2 || q->attrs.i("block_size", 0) != 0) return false;
  passes::replace_uses(g, q->outputs[0], d->q);
  g.remove_node(q);
  return true;
}

// QuantizeLinear(Cast(x float32 -> float16/bfloat16), s) to int8 reads x itself, with s as float32, when
// it is the Cast's only reader: the input Cast of an --int8 plan (for an image batch of 154 MB,
// 0.06 ms of ResNet-50 at batch 256 on an H200) goes. Quantizing the float32 value is what the
// calibrated float32 model does; rounding to float16 first could only move a value that lies
// within float16's rounding of a step's midpoint to the neighbouring step.
bool fold_cast_into_quantize(Graph& g, Node* q) {
  if (!q->has_input(0) || !q->has_input(1) || !q->has_output(0) || !q->inputs[1]->is_constant() ||
      q->outputs[0]->type.dtype != DType::kInt8)
    return false;
  Node* cast = producer_of(q->inputs[0], "Cast");
  if (!cast || !cast->has_input(0) || single_consumer(g, cast->outputs[0]) != q || is_graph_output(g, cast->outputs[0]))
    return false;
  Value* x = cast->inputs[0];
  const DType low = q->inputs[0]->type.dtype;
  if (x->type.dtype != DType::kFloat32 || (low != DType::kFloat16 && low != DType::kBFloat16) ||
      q->inputs[1]->type.dtype != low)
    return false;
  Value* scale = q->inputs[1];
  q->inputs[1] = g.add_constant(g.unique_name(scale->name + "_f32"), scale->constant->cast(DType::kFloat32));
  q->inputs[0] = x;
  g.remove_node(cast);
  return true;
}

// QuantizeLinear(op(DequantizeLinear(q, s)...), s) is op(q...) on int8 for MaxPool and Concat: the
// maximum and data movement commute with a monotonic quantization of one scale, and the op moves a
// quarter (float32) or half (float16) of the bytes.
bool fold_int8_data_op(Graph& g, Node* q) {
  if (!q->has_input(0) || !q->has_input(1) || !q->has_output(0) || q->outputs[0]->type.dtype != DType::kInt8 ||
      !zero_int8_zp(*q, 2) || q->attrs.i("block_size", 0) != 0)
    return false;
  Node* op = producer_of(q->inputs[0], "MaxPool");
  if (!op) op = producer_of(q->inputs[0], "Concat");
  if (!op || op->outputs.size() != 1 || op->inputs.empty() || single_consumer(g, op->outputs[0]) != q) return false;
  auto s2 = scalar_constant(q->inputs[1]);
  std::vector<Value*> inputs;
  for (Value* in : op->inputs) {
    auto d = in ? match_act_dq(in) : std::nullopt;
    auto s1 = d ? scalar_constant(d->scale) : std::nullopt;
    if (!s1 || !s2 || *s1 != *s2) return false;
    inputs.push_back(d->q);
  }
  Attributes attrs = op->attrs;
  std::vector<const Node*> fused{op, q};
  attrs.set(kFusedAttr, passes::fused_names(fused));
  const std::string name = op->name, type = op->op_type;
  const int opset = op->opset;
  Value* out = q->outputs[0];
  g.remove_node(q);
  g.remove_node(op);
  Node* n = g.add_node(type, inputs, {out}, name, "", opset);
  n->attrs = std::move(attrs);
  return true;
}

class QdqFusion : public Pass {
 public:
  std::string_view name() const override { return "qdq-fusion"; }

  Expected<bool> run(Graph& g) override {
    bool changed = false;
    std::vector<Node*> nodes;
    for (const auto& n : g.nodes()) nodes.push_back(n.get());
    for (Node* n : nodes)
      if (is_op(n, "QuantizeLinear"))
        changed |= fold_requantize(g, n) || fold_int8_data_op(g, n) || fold_cast_into_quantize(g, n);
    // Fusing removes nodes (a later candidate's Add/Relu/Q never is another candidate), so walk a
    // fresh list per kind.
    nodes.clear();
    for (const auto& n : g.nodes())
      if (is_op(n.get(), "Conv") || is_op(n.get(), "MatMul") || is_op(n.get(), "Gemm")) nodes.push_back(n.get());
    for (Node* n : nodes) changed |= n->op_type == "Conv" ? fuse_conv(g, n) : fuse_matmul(g, n);
    if (changed) KILN_RETURN_IF_ERROR(g.topological_sort());
    return changed;
  }
};

}  // namespace

std::unique_ptr<Pass> make_qdq_fusion_pass() { return std::make_unique<QdqFusion>(); }

}  // namespace kiln
