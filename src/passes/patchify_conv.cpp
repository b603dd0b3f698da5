// Conv whose kernel equals its stride (no padding, dilation 1, one group): ViT's patch embedding,
// a 16x16 stride-16 conv from 3 channels. cuDNN runs it as a real convolution (0.53 ms for
// ViT-B/16 batch 64 in float16 on an H200) though it is one GEMM over non-overlapping patches:
//
//   x [N,C,H,W] -> Reshape [N,C,Ho,kh,Wo,kw] -> Transpose [N,Ho,Wo,C,kh,kw] (space-to-depth, one
//   copy of the input) -> Reshape [N,Ho*Wo,C*kh*kw] -> kiln.FusedMatMul(W as [C*kh*kw, O], bias)
//
// which yields the tokens [N, Ho*Wo, O] directly: the flatten(2).transpose(1,2) that follows the
// conv in ViT (Reshape [N,O,Ho*Wo] -> Transpose [0,2,1]) is absorbed. Without that pattern the
// tokens are transposed back to NCHW (one copy of the output, still far cheaper than the conv).
// Kernels of 1x1 are left to the convolution (a 1x1 conv is already a GEMM for cuDNN).
#include "passes/pass.hpp"
#include "passes/pass_util.hpp"

namespace kiln {
namespace {

using passes::is_op;
using passes::sole_reader_once;

class PatchifyConv : public Pass {
 public:
  std::string_view name() const override { return "patchify-conv"; }

  Expected<bool> run(Graph& g) override {
    bool changed = false;
    std::vector<Node*> convs;
    for (const auto& n : g.nodes())
      if (is_op(n.get(), "Conv")) convs.push_back(n.get());
    for (Node* c : convs) changed |= rewrite(g, c);
    if (changed) KILN_RETURN_IF_ERROR(g.topological_sort());
    return changed;
  }

 private:
  static bool all_equal(const std::vector<int64_t>& v, int64_t want, size_t n) {
    if (v.empty()) return true;  // the default
    if (v.size() != n) return false;
    for (int64_t x : v)
      if (x != want) return false;
    return true;
  }

  static bool rewrite(Graph& g, Node* conv) {
    if (!conv->has_input(0) || !conv->has_input(1) || !conv->has_output(0) || conv->outputs.size() != 1) return false;
    Value *x = conv->inputs[0], *w = conv->inputs[1], *y = conv->outputs[0];
    const DType t = x->type.dtype;
    if (!(t == DType::kFloat32 || t == DType::kFloat16 || t == DType::kBFloat16)) return false;
    if (!w->is_constant() || w->constant->dtype() != t || w->constant->rank() != 4) return false;
    Value* bias = conv->has_input(2) ? conv->inputs[2] : nullptr;
    if (bias && (!bias->is_constant() || bias->constant->dtype() != t || bias->constant->numel() != w->constant->dim(0)))
      return false;
    auto xd = x->type.shape.to_dims();
    if (!xd || xd->size() != 4) return false;
    const int64_t n = (*xd)[0], c = (*xd)[1], h = (*xd)[2], wd = (*xd)[3];
    const int64_t o = w->constant->dim(0), kh = w->constant->dim(2), kw = w->constant->dim(3);
    if (w->constant->dim(1) != c || kh * kw < 2 || h % kh != 0 || wd % kw != 0 || n < 1) return false;
    const std::string pad = conv->attrs.s("auto_pad", "NOTSET");
    if (pad != "NOTSET" && pad != "VALID") return false;
    if (conv->attrs.i("group", 1) != 1 || !all_equal(conv->attrs.ints("dilations"), 1, 2) ||
        !all_equal(conv->attrs.ints("pads"), 0, 4))
      return false;
    const std::vector<int64_t> ks = conv->attrs.ints("kernel_shape"), st = conv->attrs.ints("strides");
    if (!ks.empty() && ks != std::vector<int64_t>{kh, kw}) return false;
    if (st != std::vector<int64_t>{kh, kw}) return false;
    const int64_t ho = h / kh, wo = wd / kw, k = c * kh * kw;

    // ViT's flatten(2).transpose(1, 2) after the conv: the GEMM writes its output directly.
    Value* tokens = nullptr;
    std::vector<Node*> absorbed;
    if (Node* rs = sole_reader_once(g, y); is_op(rs, "Reshape") && rs->has_output(0)) {
      auto rd = rs->outputs[0]->type.shape.to_dims();
      Node* tr = sole_reader_once(g, rs->outputs[0]);
      if (rd && *rd == Dims{n, o, ho * wo} && is_op(tr, "Transpose") && tr->has_output(0) &&
          tr->attrs.ints("perm") == std::vector<int64_t>{0, 2, 1}) {
        tokens = tr->outputs[0];
        absorbed = {rs, tr};
      }
    }

    const std::string base = conv->name.empty() ? g.unique_name("patchify") : conv->name;
    auto shape_const = [&](const std::string& suffix, const Dims& d) {
      return g.add_constant(g.unique_name(base + suffix), Tensor::from_vector<int64_t>({static_cast<int64_t>(d.size())}, d));
    };
    auto value = [&](const std::string& suffix) { return g.add_value(g.unique_name(base + suffix)); };
    const int opset = conv->opset > 0 ? conv->opset : 21;
    Value* b = g.add_constant(g.unique_name(base + "/patch_weight"), passes::transpose_2d(w->constant->reshaped({o, k})));
    Value* bias_row = g.add_constant(g.unique_name(base + "/patch_bias"),
                                     bias ? bias->constant->reshaped({o}) : Tensor::zeros(t, {o}));
    std::string names = passes::fused_names({conv});
    for (const Node* a : absorbed) names += "," + passes::fused_names({a});
    g.remove_node(conv);
    for (Node* a : absorbed) g.remove_node(a);

    Value* split = value("/patches6d");
    g.add_node("Reshape", {x, shape_const("/patches6d_shape", {n, c, ho, kh, wo, kw})}, {split},
               g.unique_name(base + "/split_patches"), "", opset);
    Value* moved = value("/patches_moved");
    Node* tr = g.add_node("Transpose", {split}, {moved}, g.unique_name(base + "/space_to_depth"), "", opset);
    tr->attrs.set("perm", std::vector<int64_t>{0, 2, 4, 1, 3, 5});
    Value* rows = value("/patch_rows");
    g.add_node("Reshape", {moved, shape_const("/patch_rows_shape", {n, ho * wo, k})}, {rows},
               g.unique_name(base + "/patch_rows"), "", opset);
    Value* out = tokens ? tokens : value("/tokens");
    Node* mm = g.add_node("FusedMatMul", {rows, b, bias_row}, {out}, base, "kiln", opset);
    mm->attrs.set("activation", std::string());
    mm->attrs.set(kFusedAttr, names);
    if (!tokens) {  // back to the conv's NCHW output
      Value* grid = value("/tokens_grid");
      g.add_node("Reshape", {out, shape_const("/tokens_grid_shape", {n, ho, wo, o})}, {grid},
                 g.unique_name(base + "/tokens_grid"), "", opset);
      Node* back = g.add_node("Transpose", {grid}, {y}, g.unique_name(base + "/to_nchw"), "", opset);
      back->attrs.set("perm", std::vector<int64_t>{0, 3, 1, 2});
    }
    return true;
  }
};

}  // namespace

std::unique_ptr<Pass> make_patchify_conv_pass() { return std::make_unique<PatchifyConv>(); }

}  // namespace kiln
