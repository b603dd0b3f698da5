#include "layer_cost.hpp"

#include "passes/pass.hpp"
#include "util/error.hpp"

namespace kiln::cli {

namespace {

int64_t numel(const Value* v) {
  if (!v || !v->type.shape.is_static()) return -1;
  return dims_numel(*v->type.shape.to_dims());
}

// Product of a value's dims from `from` on (-1 when not static).
int64_t tail_numel(const Value* v, size_t from) {
  if (!v || !v->type.shape.is_static()) return -1;
  Dims d = *v->type.shape.to_dims();
  int64_t p = 1;
  for (size_t i = from; i < d.size(); ++i) p *= d[i];
  return p;
}

}  // namespace

LayerCost layer_cost(const Node& n) {
  LayerCost c;
  int64_t bytes = 0;
  for (const auto* list : {&n.inputs, &n.outputs})
    for (const Value* v : *list) {
      if (!v) continue;
      int64_t e = numel(v);
      if (e < 0) { bytes = -1; break; }
      bytes += e * static_cast<int64_t>(dtype_size(v->type.dtype));
    }
  c.bytes = bytes;
  const Value* y = n.has_output(0) ? n.outputs[0] : nullptr;
  int64_t out = numel(y);
  // kiln's own ops with the same arithmetic: FusedConv (W (M, C/g, kh, kw) or, NHWC, (M, kh, kw,
  // C/g): either way its tail is one output's dot product; a head adds a 1x1 conv of K outputs
  // over the M channels), kiln.NHWC's ConvTranspose (W (C, kh, kw, M/g)), FusedMatMul and
  // Fp8MatMul (X [..., K] . W [K, N]).
  const bool kiln_op = n.domain == "kiln";
  std::string op = kiln_op ? "" : n.op_type;
  if (kiln_op && n.op_type == "FusedConv") op = "Conv";
  if (kiln_op && n.op_type == "NHWC" && n.attrs.s("op", "") == "ConvTranspose") op = "ConvTranspose";
  if (kiln_op && (n.op_type == "FusedMatMul" || n.op_type == "Fp8MatMul")) op = "MatMul";
  if ((!n.domain.empty() && op.empty()) || out < 0) {
    c.flops = out;
  } else if ((op == "Conv" || op == "ConvTranspose") && n.has_input(1)) {
    // Conv: every output element is a dot product over W's [C/group, k...]; ConvTranspose: every
    // input element scatters over W's [M/group, k...].
    int64_t per = tail_numel(n.inputs[1], 1);
    int64_t count = op == "Conv" ? out : numel(n.inputs[0]);
    if (op == "Conv" && n.op_type == "FusedConv" && n.has_input(4)) {
      // A head: Y holds the K classifier outputs per pixel of the M-channel conv; HW is (K, 1, 1, M).
      const int64_t m = numel(n.inputs[1]) < 0 || per <= 0 ? -1 : numel(n.inputs[1]) / per;
      const int64_t head = numel(n.inputs[4]), k = m > 0 && head >= 0 ? head / m : -1;
      count = k > 0 ? out / k * m : -1;  // the conv's outputs
      c.flops = per < 0 || count < 0 ? -1 : 2 * per * count + 2 * (count / m) * head;
      return c;
    }
    c.flops = per < 0 || count < 0 ? -1 : 2 * per * count;
  } else if ((op == "MatMul" || op == "Gemm") && n.has_input(0)) {
    const Shape& a = n.inputs[0]->type.shape;
    if (!a.has_rank() || a.rank() == 0 || !a[a.rank() - 1].known()) return c;
    int64_t k = a[a.rank() - 1].value;
    if (op == "Gemm" && n.attrs.i("transA", 0) && a.rank() == 2) k = a[0].known() ? a[0].value : -1;
    c.flops = k < 0 ? -1 : 2 * out * k;
  } else {
    c.flops = out;
  }
  return c;
}

std::string fused_ops(const Node& n) { return n.attrs.s(kFusedAttr, ""); }

std::string flops_text(int64_t f) {
  if (f < 0) return "-";
  if (f >= 1000000000) return fmt::format("{:.2f} GFLOP", f / 1e9);
  if (f >= 1000000) return fmt::format("{:.2f} MFLOP", f / 1e6);
  if (f >= 1000) return fmt::format("{:.1f} kFLOP", f / 1e3);
  return fmt::format("{} FLOP", f);
}

}  // namespace kiln::cli
