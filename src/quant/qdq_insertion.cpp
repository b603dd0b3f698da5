#include "quant/qdq_insertion.hpp"

#include <algorithm>
#include <cmath>
#include <map>

#include "ops/qdq_layers.hpp"
#include "passes/precision.hpp"

namespace kiln {

float quantized_max(DType qtype) {
  switch (qtype) {
    case DType::kInt8: return 127.0f;  // symmetric: -127..127, zero point 0
    case DType::kFloat8E4M3FN: return kFloat8E4M3Max;  // 448: scale = amax / 448
    default: return 0.0f;
  }
}

namespace {

constexpr int kQdqOpset = 21;

// Which inputs of a quantized op carry the data that the quantized kernel reads.
std::vector<size_t> quantized_inputs(const Node& n) {
  if (n.op_type == "Conv" || n.op_type == "ConvTranspose" || n.op_type == "MatMul" || n.op_type == "Gemm")
    return {0, 1};
  std::vector<size_t> all;
  for (size_t i = 0; i < n.inputs.size(); ++i) all.push_back(i);
  return all;
}

// The per-channel axis of a constant weight input (-1: per tensor).
int64_t weight_axis(const Node& n, size_t input, const Tensor& w) {
  if (input != 1 || w.rank() < 2) return -1;
  if (n.op_type == "Conv") return 0;                                     // [M, C/group, k...]
  if (n.op_type == "ConvTranspose") return n.attrs.i("group", 1) == 1 ? 1 : -1;  // [C, M/group, k...]
  if (n.op_type == "Gemm") return n.attrs.i("transB", 0) ? 0 : 1;        // [N, K] or [K, N]
  if (n.op_type == "MatMul") return w.rank() - 1;                       // [..., K, N]
  return -1;
}

class Inserter {
 public:
  Inserter(Graph& g, const QuantizationSpec& spec) : g_(g), spec_(spec), qmax_(quantized_max(spec.qtype)) {}

  // QuantizeLinear -> DequantizeLinear on an activation, shared by every reader.
  Value* activation(Value* v, float amax) {
    auto it = act_.find(v);
    if (it != act_.end()) return it->second;
    Value* scale = g_.add_constant(g_.unique_name(v->name + "_scale"), Tensor::scalar<float>(amax / qmax_));
    Value* zp = g_.add_constant(g_.unique_name(v->name + "_zero_point"), Tensor::zeros(spec_.qtype, {}));
    Value* q = g_.add_value(g_.unique_name(v->name + "_quantized"), TensorType{spec_.qtype, v->type.shape});
    Value* dq = g_.add_value(g_.unique_name(v->name + "_dequantized"), TensorType{v->type.dtype, v->type.shape});
    g_.add_node("QuantizeLinear", {v, scale, zp}, {q}, g_.unique_name(v->name + "_quantize"), "", kQdqOpset);
    g_.add_node("DequantizeLinear", {q, scale, zp}, {dq}, g_.unique_name(v->name + "_dequantize"), "", kQdqOpset);
    act_[v] = dq;
    return dq;
  }

  // v's activation Q/DQ output when some quantized node reads v through one, else null.
  Value* existing_activation(const Value* v) const {
    auto it = act_.find(v);
    return it == act_.end() ? nullptr : it->second;
  }

  // A constant weight quantized here (symmetric, per channel along `axis`, or per tensor), read
  // through a DequantizeLinear: the plan stores the quantized values.
  // `shared_amax` (per tensor only): the scale's amax when several weights must share one scale.
  Value* weight(Value* v, int64_t axis, float shared_amax = 0) {
    auto key = std::make_pair(v, axis);
    auto it = weights_.find(key);
    if (it != weights_.end()) return it->second;
    const Tensor& w = *v->constant;
    const Dims& d = w.dims();
    const int64_t channels = axis < 0 ? 1 : d[axis];
    int64_t inner = 1;
    for (int64_t i = axis + 1; axis >= 0 && i < w.rank(); ++i) inner *= d[i];
    const int64_t n = w.numel();
    const float* src = w.data<float>();
    auto channel_of = [&](int64_t i) { return axis < 0 ? 0 : (i / inner) % channels; };
    std::vector<float> scale(channels, 0.0f);
    for (int64_t i = 0; i < n; ++i) {
      float a = std::fabs(src[i]);
      if (std::isfinite(a)) scale[channel_of(i)] = std::max(scale[channel_of(i)], a);
    }
    if (axis < 0 && shared_amax > 0) scale[0] = std::max(scale[0], shared_amax);
    for (float& s : scale) s = s > 0 ? s / qmax_ : 1.0f;  // an all-zero channel: any scale gives 0
    Tensor q(spec_.qtype, d);
    if (spec_.qtype == DType::kFloat8E4M3FN) {  // round to nearest even, saturating, as QuantizeLinear
      for (int64_t i = 0; i < n; ++i) q.data<Float8E4M3FN>()[i] = Float8E4M3FN(src[i] / scale[channel_of(i)]);
    }
    int8_t* dst = spec_.qtype == DType::kInt8 ? q.data<int8_t>() : nullptr;
    for (int64_t i = 0; i < n; ++i) {
      if (!dst) break;
      float r = std::nearbyint(src[i] / scale[channel_of(i)]);  // round half to even, as QuantizeLinear
      dst[i] = static_cast<int8_t>(std::clamp(std::isnan(r) ? 0.0f : r, -qmax_, qmax_));
    }
    const Dims sdims = axis < 0 ? Dims{} : Dims{channels};
    Value* qv = g_.add_constant(g_.unique_name(v->name + "_quantized"), q);
    Value* sv = g_.add_constant(g_.unique_name(v->name + "_scale"), Tensor::from_vector<float>(sdims, scale));
    Value* zv = g_.add_constant(g_.unique_name(v->name + "_zero_point"), Tensor::zeros(spec_.qtype, sdims));
    Value* dq = g_.add_value(g_.unique_name(v->name + "_dequantized"), v->type);
    Node* node = g_.add_node("DequantizeLinear", {qv, sv, zv}, {dq}, g_.unique_name(v->name + "_dequantize"), "",
                             kQdqOpset);
    if (axis >= 0) node->attrs.set("axis", axis);
    weights_[key] = dq;
    return dq;
  }

 private:
  Graph& g_;
  const QuantizationSpec& spec_;
  float qmax_;
  std::map<const Value*, Value*> act_;
  std::map<std::pair<Value*, int64_t>, Value*> weights_;
};

// Why node `n` cannot be quantized, or "" when every quantized input can be.
std::string blocker(const Node& n, const RangeTable& ranges, DType qtype) {
  // FP8 (cuBLASLt's FP8 GEMM): products with a constant weight only; attention's activation x
  // activation MatMuls stay in 16-bit floats.
  if (qtype == DType::kFloat8E4M3FN && (n.inputs.size() < 2 || !n.inputs[1] || !n.inputs[1]->constant))
    return "FP8 quantizes GEMMs with constant weights only";
  for (size_t i : quantized_inputs(n)) {
    const Value* v = i < n.inputs.size() ? n.inputs[i] : nullptr;
    if (!v) continue;
    if (v->producer && v->producer->op_type == "DequantizeLinear")
      return fmt::format("input '{}' comes from a DequantizeLinear already (a Q/DQ model)", v->name);
    if (v->type.dtype != DType::kFloat32 || !v->type.is_tensor())
      return fmt::format("input '{}' is {}, not float32", v->name, v->type.to_string());
    if (!v->constant && !ranges.amax.count(v->name))
      return fmt::format("no calibrated range for input '{}'", v->name);
  }
  return "";
}

// INT8 only: why a Conv whose input channels per group are too few for the INT8 kernels stays
// float (qconv_int8_worthwhile).
std::string small_conv_reason(const Node& n, DType qtype) {
  if (qtype != DType::kInt8 || n.op_type != "Conv" || !n.has_input(1)) return "";
  const Shape& w = n.inputs[1]->type.shape;  // (M, C/group, k...)
  if (!w.has_rank() || w.rank() < 3) return "";
  int64_t window = 1;
  for (size_t i = 1; i < w.rank(); ++i)
    if (!w[i].known()) return "";
  for (size_t i = 2; i < w.rank(); ++i) window *= w[i].value;
  const int64_t c = w[1].value, group = n.attrs.i("group", 1);
  const Dims strides = n.attrs.ints("strides");
  const int64_t sh = strides.size() == 2 ? strides[0] : 1, sw = strides.size() == 2 ? strides[1] : 1;
  if (qconv_int8_worthwhile(c, window, group, sh, sw)) return "";
  if (group > 1)
    return fmt::format("{} input channels per group: the INT8 kernels need >= {}, float16 is faster", c,
                       kQConvMinChannels);
  return fmt::format("{} input channels x {} window taps, stride {}: the INT8 kernels need >= {} channels, or "
                     "{}-{} values per window and a stride s >= 2 with s*s*C <= {}; float16 is faster",
                     c, window, sh, kQConvMinChannels, kQConvIm2colMinDepth, kQConvIm2colMaxDepth,
                     kQConvSpaceToDepthMaxChannels);
}

// A residual Add of a quantized Conv's output and a value that has an activation Q/DQ pair (it
// feeds another quantized node) reads the pair's output instead: the value's producer can then
// fuse the quantization and write int8, and the Conv reads the residual as int8.
// An Add of two quantized Convs' outputs (a projection block: the main path's last Conv and the
// shortcut's) gets a Q/DQ pair on the first one's output, when the Add is its only reader and it
// has a calibrated range: that Conv then writes int8 and the other reads it as an int8 residual,
// instead of a float16 tensor of twice the bytes written and read.
bool quantize_residual_adds(Graph& g, const std::set<const Node*>& quantized, Inserter& ins, const RangeTable& ranges) {
  bool changed = false;
  std::map<const Node*, size_t> order;
  for (const auto& n : g.nodes()) order.emplace(n.get(), order.size());
  auto quantized_conv = [&](const Value* v) {
    return v->producer && v->producer->op_type == "Conv" && quantized.count(v->producer) &&
           v->type.shape.has_rank();
  };
  std::vector<Node*> adds;  // collected first: ins.activation adds nodes to the graph
  for (const auto& n : g.nodes())
    if (n->domain.empty() && n->op_type == "Add" && n->inputs.size() == 2 && n->inputs[0] && n->inputs[1])
      adds.push_back(n.get());
  for (Node* n : adds) {
    bool done = false;
    for (size_t i = 0; i < 2 && !done; ++i) {
      const Value* conv_out = n->inputs[1 - i];
      Value* v = n->inputs[i];
      Value* dq = ins.existing_activation(v);
      if (!dq || v == conv_out || !quantized_conv(conv_out) || !(v->type.shape == conv_out->type.shape)) continue;
      n->inputs[i] = dq;
      changed = done = true;
    }
    Value *a = n->inputs[0], *b = n->inputs[1];
    if (done || a == b || !quantized_conv(a) || !quantized_conv(b) || !(a->type.shape == b->type.shape)) continue;
    const size_t first = order.at(a->producer) < order.at(b->producer) ? 0 : 1;
    Value* v = n->inputs[first];
    const auto range = ranges.amax.find(v->name);
    if (range == ranges.amax.end() || g.consumers(v).size() != 1 ||
        std::find(g.outputs.begin(), g.outputs.end(), v) != g.outputs.end())
      continue;
    n->inputs[first] = ins.activation(v, range->second);
    changed = true;
  }
  return changed;
}

// A MaxPool whose output has an activation Q/DQ pair (it feeds quantized nodes) gets a pair of the
// same scale on its input: max commutes with the monotonic quantization, so every value stays
// the same, and the CUDA backend then pools int8 (qdq-fusion) while the input's producer writes
// int8 (a ResNet stem: Conv + Relu writes int8 for an int8 MaxPool, instead of float16 pooled and
// quantized after). Only where the MaxPool is the input's single reader.
bool quantize_max_pool_inputs(Graph& g, Inserter& ins, const RangeTable& ranges) {
  std::vector<Node*> pools;  // collected first: ins.activation adds nodes to the graph
  for (const auto& n : g.nodes())
    if (n->domain.empty() && n->op_type == "MaxPool" && n->has_input(0) && n->has_output(0) && !n->has_output(1))
      pools.push_back(n.get());
  bool changed = false;
  for (Node* n : pools) {
    Value *x = n->inputs[0], *y = n->outputs[0];
    const auto range = ranges.amax.find(y->name);
    if (!ins.existing_activation(y) || range == ranges.amax.end() || x->is_constant() ||
        x->type.dtype != DType::kFloat32 || g.consumers(x).size() != 1 ||
        std::find(g.outputs.begin(), g.outputs.end(), x) != g.outputs.end() ||
        (x->producer && x->producer->op_type == "DequantizeLinear"))
      continue;
    n->inputs[0] = ins.activation(x, range->second);
    changed = true;
  }
  return changed;
}

}  // namespace

Expected<bool> insert_qdq(Graph& g, const RangeTable& ranges, const QuantizationSpec& spec) {
  if (quantized_max(spec.qtype) == 0)
    return unsupported("insert_qdq: quantizing to {} is not supported (int8 and float8e4m3fn are)",
                       dtype_name(spec.qtype));
  Inserter ins(g, spec);
  bool changed = false;
  std::vector<Node*> nodes;
  for (const auto& n : g.nodes())
    if (n->domain.empty() && spec.op_types.count(n->op_type)) nodes.push_back(n.get());
  std::map<const Node*, std::string> why_float;
  std::set<const Node*> quantized;
  for (Node* n : nodes) {
    const std::string key = precision_key(*n);
    std::string& why = why_float[n];
    why = spec.keep_float.count(key) ? "kept float by request" : blocker(*n, ranges, spec.qtype);
    if (why.empty() && !spec.quantize.count(key)) why = small_conv_reason(*n, spec.qtype);
  }
  // FP8: the weights of GEMMs that read one activation (a transformer's Q, K and V projections)
  // share one per-tensor scale, so that the CUDA backend can run them as one GEMM exactly
  // (cuBLASLt takes one weight scale; passes/fp8_qkv_merge.cpp).
  std::map<const Value*, float> shared_amax;
  if (spec.qtype == DType::kFloat8E4M3FN)
    for (Node* n : nodes)
      if (why_float[n].empty() && n->inputs.size() > 1 && n->inputs[0] && n->inputs[1] && n->inputs[1]->constant) {
        const Tensor& w = *n->inputs[1]->constant;
        float amax = 0;
        for (int64_t i = 0; i < w.numel(); ++i)
          if (std::isfinite(w.data<float>()[i])) amax = std::max(amax, std::fabs(w.data<float>()[i]));
        float& shared = shared_amax[n->inputs[0]];
        shared = std::max(shared, amax);
      }
  for (Node* n : nodes) {
    const std::string& why = why_float[n];
    if (!why.empty()) {
      if (spec.report) spec.report->kept_float.emplace_back(n->describe(), why);
      continue;
    }
    const Value* activation = n->inputs.empty() ? nullptr : n->inputs[0];  // before it is replaced below
    for (size_t i : quantized_inputs(*n)) {
      Value* v = i < n->inputs.size() ? n->inputs[i] : nullptr;
      if (!v) continue;
      // FP8: per-tensor weight scales (cuBLASLt's FP8 GEMM takes scalar scales).
      const bool per_tensor = spec.qtype == DType::kFloat8E4M3FN;
      const float shared = per_tensor && i == 1 && activation ? shared_amax[activation] : 0.0f;
      n->inputs[i] = v->constant ? ins.weight(v, per_tensor ? -1 : weight_axis(*n, i, *v->constant), shared)
                                 : ins.activation(v, ranges.amax.at(v->name));
    }
    if (spec.report) spec.report->quantized.push_back(n->describe());
    quantized.insert(n);
    changed = true;
  }
  if (spec.qtype == DType::kInt8 && spec.quantize_residuals) changed |= quantize_residual_adds(g, quantized, ins, ranges);
  if (spec.qtype == DType::kInt8) changed |= quantize_max_pool_inputs(g, ins, ranges);
  if (changed) {
    KILN_RETURN_IF_ERROR(g.topological_sort());
    g.remove_unused_values();  // the float weights replaced by quantized ones
  }
  return changed;
}

}  // namespace kiln
