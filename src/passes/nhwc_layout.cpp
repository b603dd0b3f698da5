// NHWC layout for the CUDA backend: cuDNN's fast float16/bfloat16 convolution kernels work in
// NHWC, and on NCHW tensors it transposes internally around every call. 2-D kiln.FusedConv nodes
// in float16/bfloat16 become NHWC, and ConvTransposes kiln.NHWC, with Transposes at their inputs
// and output; the transpose-cancellation pass then removes the pairs between consecutive
// convolutions, leaving Transposes only where a region of NHWC convolutions meets other ops.
// Where NHWC is known to lose, convolutions stay NCHW (the CUDA layers run both layouts):
//  - a convolution with no other convolution near it (ViT's patch embedding: NHWC only adds a
//    Transpose of its input, 0.25 ms of ViT-B/16 at batch 64 for a 3-channel image);
//  - every convolution of a depthwise-heavy graph (MobileNetV3 batch 1 float16 ran 0.82 ms in
//    NCHW and 1.59 ms in NHWC: depthwise NHWC kernels and Transposes around squeeze-excite).
#include <deque>
#include <map>
#include <set>

#include "ops/fused_conv.hpp"
#include "ops/qdq_layers.hpp"
#include "passes/pass.hpp"
#include "passes/pass_util.hpp"

namespace kiln {

namespace {

using passes::is_graph_output;

bool is_conv_transpose(const Node& n) { return n.domain.empty() && n.op_type == "ConvTranspose"; }

bool is_qconv(const Node& n) { return n.domain == kKilnDomain && n.op_type == "QConv"; }

// kiln.QConv runs NHWC without a channel-padding copy when C is a multiple of 4 (the int8
// kernels' vector width), so int8 chains pass NHWC tensors directly; and with fewer channels where
// the CUDA layer repacks X (qconv_window_fits_rows: an RGB 7x7 stem, whose
// int8 NHWC output then feeds the next layers; its input's Transpose moves 3 bytes a pixel), when
// it writes NHWC int8 or float16 itself (M a multiple of 16).
bool qconv_wants_nhwc(const Node& n) {
  if (!is_qconv(n) || n.attrs.s("layout", "NCHW") != "NCHW" || !n.has_input(0) || !n.has_input(2) || !n.has_output(0))
    return false;
  auto x = n.inputs[0]->type.shape.to_dims();
  auto w = n.inputs[2]->type.shape.to_dims();
  auto y = n.outputs[0]->type.shape.to_dims();
  if (n.inputs[0]->type.dtype != DType::kInt8 || !x || x->size() != 4 || !w || w->size() != 4 || !y ||
      y->size() != 4 || n.attrs.i("group", 1) != 1)
    return false;
  const int64_t c = (*x)[1];
  if (c % 4 == 0) return true;
  const DType yt = n.outputs[0]->type.dtype;
  return c < kQConvMinChannels && qconv_window_fits_rows(c, (*w)[2] * (*w)[3]) && (*w)[0] % 16 == 0 &&
         (yt == DType::kInt8 || yt == DType::kFloat16);
}

// A small-channel QConv (C not a multiple of 4) with stride s >= 2 in both dims and s*s*C within
// a space-to-depth copy's channels: its CUDA layer copies X space-to-depth, reading NCHW as cheaply
// as NHWC, so X keeps its layout (no Transpose of the image: 0.07 ms of ResNet-50 at batch 256).
bool qconv_reads_nchw_x(const Node& n) {
  auto x = n.inputs[0]->type.shape.to_dims();
  const Dims strides = n.attrs.ints("strides");
  if (!x || x->size() != 4 || (*x)[1] % 4 == 0 || strides.size() != 2 || strides[0] != strides[1] || strides[0] < 2)
    return false;
  return strides[0] * strides[0] * (*x)[1] <= kQConvSpaceToDepthMaxChannels;
}

bool wants_nhwc(const Node& n) {
  if (qconv_wants_nhwc(n)) return true;
  const bool fused = n.domain == kKilnDomain && n.op_type == "FusedConv" && n.attrs.s("layout", "NCHW") == "NCHW";
  if (!fused && !is_conv_transpose(n)) return false;
  if (!n.has_input(0) || !n.has_input(1) || !n.has_output(0) || n.outputs.size() != 1) return false;
  const TensorType& t = n.outputs[0]->type;
  if (t.dtype != DType::kFloat16 && t.dtype != DType::kBFloat16) return false;
  // auto_pad SAME_* resolve from spatial sizes alone, unaffected by the layout; only 2-D convs.
  return t.shape.has_rank() && t.shape.rank() == 4 && n.inputs[0]->type.shape.has_rank() &&
         n.inputs[1]->type.shape.has_rank() && n.inputs[1]->type.shape.rank() == 4;
}

bool is_depthwise(const Node& n) {
  const int64_t group = n.attrs.i("group", 1);
  auto w = n.inputs[1]->type.shape.to_dims();
  return group > 1 && w && w->size() == 4 && (*w)[1] == 1;
}

bool is_4d(const Value* v) { return v && v->type.shape.has_rank() && v->type.shape.rank() == 4; }

// Whether another candidate is within `depth` nodes of n, up or down the graph, through 4-D
// tensors only (a Reshape/Flatten to tokens or a MatMul ends the search): the Transposes between
// two such convolutions cancel or sink, so converting pays.
bool has_candidate_near(const Graph& g, const Node* n, const std::set<const Node*>& candidates, int depth) {
  std::set<const Node*> seen{n};
  std::deque<std::pair<const Node*, int>> work{{n, 0}};
  while (!work.empty()) {
    auto [cur, d] = work.front();
    work.pop_front();
    if (cur != n && candidates.count(cur)) return true;
    if (d >= depth) continue;
    std::vector<const Node*> next;
    for (const Value* v : cur->outputs)
      if (is_4d(v))
        for (const Node* c : g.consumers(v)) next.push_back(c);
    for (const Value* v : cur->inputs)
      if (is_4d(v) && !v->is_constant() && v->producer) next.push_back(v->producer);
    for (const Node* m : next)
      if (seen.insert(m).second) work.emplace_back(m, d + 1);
  }
  return false;
}

class NhwcLayout : public Pass {
 public:
  std::string_view name() const override { return "nhwc-layout"; }

  Expected<bool> run(Graph& g) override {
    std::vector<Node*> candidates;
    for (const auto& n : g.nodes())
      if (wants_nhwc(*n)) candidates.push_back(n.get());
    size_t depthwise = 0;
    for (const Node* n : candidates) depthwise += !is_conv_transpose(*n) && is_depthwise(*n);
    if (depthwise * 4 >= candidates.size() && depthwise > 0) return false;
    const std::set<const Node*> all(candidates.begin(), candidates.end());
    std::vector<Node*> to_convert;
    for (Node* n : candidates)
      if (has_candidate_near(g, n, all, 4)) to_convert.push_back(n);
    for (Node* n : to_convert) convert(g, n);
    if (!to_convert.empty()) KILN_RETURN_IF_ERROR(g.topological_sort());
    return !to_convert.empty();
  }

 private:
  static Value* transposed(Graph& g, Value* v, const std::vector<int64_t>& perm, const std::string& base, int opset) {
    Value* out = g.add_value(g.unique_name(base));
    Node* t = g.add_node("Transpose", {v}, {out}, g.unique_name(base), "", opset);
    t->attrs.set("perm", perm);
    return out;
  }

  static void convert(Graph& g, Node* n) {
    const auto to_nhwc = nchw_to_nhwc_perm(4), to_nchw = nhwc_to_nchw_perm(4);
    const int opset = n->opset > 0 ? n->opset : 21;
    // W (M, C/g, kh, kw) -> (M, kh, kw, C/g) is the same permutation as the data's; constant
    // folding turns it into transformed weights.
    // A ConvTranspose's W (C, M/g, kh, kw) -> (C, kh, kw, M/g) likewise.
    const bool conv_transpose = is_conv_transpose(*n), qconv = is_qconv(*n);
    // kiln.QConv: X and Z (inputs 0 and 5); its W stays (M, C, kh, kw). A stem the CUDA layer
    // copies space-to-depth reads its NCHW X directly (x_layout).
    const bool x_stays = qconv && qconv_reads_nchw_x(*n);
    if (x_stays) n->attrs.set("x_layout", std::string("NCHW"));
    const std::vector<size_t> data = qconv ? (x_stays ? std::vector<size_t>{5} : std::vector<size_t>{0, 5})
                                           : std::vector<size_t>{0, 1, 3};
    for (size_t i : data)
      if (n->has_input(i) && !(conv_transpose && i == 3))
        n->inputs[i] = transposed(g, n->inputs[i], to_nhwc, n->name + "/to_nhwc", opset);
    Value* y = n->outputs[0];
    Value* y_nhwc = g.add_value(g.unique_name(n->name + "/nhwc"));
    n->outputs[0] = y_nhwc;
    y_nhwc->producer = n;
    y->producer = nullptr;
    if (conv_transpose) {
      n->attrs.set("op", n->op_type);
      n->op_type = "NHWC";
      n->domain = kKilnDomain;
    } else {
      n->attrs.set("layout", std::string("NHWC"));
    }
    Node* back = g.add_node("Transpose", {y_nhwc}, {y}, g.unique_name(n->name + "/to_nchw"), "", opset);
    back->attrs.set("perm", to_nchw);
  }
};

// Transpose(Transpose(a, p1), p2) with p1[p2[i]] == i is `a`: readers of the second Transpose's
// output read `a` instead (the first Transpose is left to dead-code removal if now unused).
// Transposes of one value by one perm (a region entered at one value by several convolutions)
// are merged into the first.
class TransposeCancellation : public Pass {
 public:
  std::string_view name() const override { return "transpose-cancellation"; }

  Expected<bool> run(Graph& g) override {
    bool changed = false;
    auto redirect = [&](Value* from, Value* to) {
      for (Node* c : g.consumers(from))
        for (Value*& v : c->inputs)
          if (v == from) {
            v = to;
            changed = true;
          }
    };
    std::map<std::pair<const Value*, std::vector<int64_t>>, Value*> first;
    for (const auto& n : g.nodes()) {
      if (!is_transpose(n.get()) || is_graph_output(g, n->outputs[0])) continue;
      auto [it, inserted] = first.try_emplace({n->inputs[0], n->attrs.ints("perm")}, n->outputs[0]);
      if (!inserted) redirect(n->outputs[0], it->second);
    }
    for (const auto& n : g.nodes()) {
      Node* t2 = n.get();
      if (!is_transpose(t2) || is_graph_output(g, t2->outputs[0])) continue;
      Node* t1 = t2->inputs[0]->producer;
      if (!is_transpose(t1)) continue;
      const auto p1 = t1->attrs.ints("perm"), p2 = t2->attrs.ints("perm");
      if (p1.empty() || p1.size() != p2.size()) continue;
      bool identity = true;
      for (size_t i = 0; i < p2.size() && identity; ++i)
        identity = p2[i] >= 0 && static_cast<size_t>(p2[i]) < p1.size() && p1[static_cast<size_t>(p2[i])] == int64_t(i);
      if (!identity) continue;
      redirect(t2->outputs[0], t1->inputs[0]);
    }
    if (changed) KILN_RETURN_IF_ERROR(g.topological_sort());
    return changed;
  }

 private:
  static bool is_transpose(const Node* n) {
    return n && n->domain.empty() && n->op_type == "Transpose" && n->has_input(0) && n->has_output(0) &&
           n->attrs.has("perm");
  }
};

}  // namespace

std::unique_ptr<Pass> make_nhwc_layout_pass() { return std::make_unique<NhwcLayout>(); }
std::unique_ptr<Pass> make_transpose_cancellation_pass() { return std::make_unique<TransposeCancellation>(); }

}  // namespace kiln
