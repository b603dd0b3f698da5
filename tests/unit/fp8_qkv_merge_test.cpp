// The fp8-qkv-merge pass: Q/K/V kiln.Fp8MatMul nodes of one float8 input feeding kiln.Attention
// become one wider Fp8MatMul that Attention reads through remapped views; CPU outputs before and
// after (exact: only GEMMs with equal weight scales merge).
#include "ops/attention.hpp"
#include "passes_test_util.hpp"

namespace kiln::passtest {
namespace {

// Float8 weights [n, k] (transposed, as Fp8MatMul takes them) of a random matrix, scale amax/448
// times `scale_mul`.
std::pair<Tensor, float> fp8_weight_nk(int64_t n, int64_t k, uint32_t seed, float scale_mul) {
  Tensor w = test::random_tensor(DType::kFloat32, {n, k}, seed, -0.5, 0.5);
  float amax = 0;
  for (int64_t i = 0; i < w.numel(); ++i) amax = std::max(amax, std::fabs(w.data<float>()[i]));
  const float s = amax / kFloat8E4M3Max * scale_mul;
  Tensor q(DType::kFloat8E4M3FN, w.dims());
  for (int64_t i = 0; i < w.numel(); ++i) q.data<Float8E4M3FN>()[i] = Float8E4M3FN(w.data<float>()[i] / s);
  return {q, s};
}

struct QkvCase {
  bool equal_scales = true;
  bool q_also_output = false;  // Q's projection is also a graph output: it stays separate
  bool bias = true;
};

// xq [B=2, S=8, 32] float8 -> three Fp8MatMul (N = 32: H=2 heads of d=16) -> kiln.Attention with
// the head split as views and the head merge in out_strides -> y [2, 8, 32].
G qkv_graph(const QkvCase& c) {
  G b;
  const int64_t B = 2, S = 8, H = 2, D = 16, N = H * D, K = 32;
  Value* xq = b.g->add_value("xq", {DType::kFloat8E4M3FN, Shape::from_dims({B, S, K})});
  b.g->inputs.push_back(xq);
  Tensor xf = test::random_tensor(DType::kFloat32, {B, S, K}, 3, -300, 300);
  b.feeds["xq"] = xf.cast(DType::kFloat8E4M3FN);
  Value* sx = b.scalar("sx", 2.f / 448);
  std::vector<Value*> proj;
  for (int j = 0; j < 3; ++j) {
    auto [w, ws] = fp8_weight_nk(N, K, 10 + j, c.equal_scales ? 1.f : 1.f + 0.37f * j);
    const std::string name = std::string(1, "qkv"[j]);
    std::vector<Value*> ins{xq, sx, b.constant(name + "_w", w),
                            b.scalar(name + "_sw", c.equal_scales ? 0.5f / 448 : ws)};
    if (c.equal_scales) {  // re-encode the weight at the common scale
      Tensor wq(DType::kFloat8E4M3FN, w.dims());
      for (int64_t i = 0; i < w.numel(); ++i)
        wq.data<Float8E4M3FN>()[i] = Float8E4M3FN(static_cast<float>(w.data<Float8E4M3FN>()[i]) * ws / (0.5f / 448));
      ins[2] = b.constant(name + "_w2", wq);
    }
    if (c.bias) ins.push_back(b.constant(name + "_b", test::random_tensor(DType::kFloat32, {N}, 20 + j)));
    Value* y = b.g->add_value(name);
    b.g->add_node("Fp8MatMul", ins, {y}, name, "kiln", 21);
    proj.push_back(y);
  }
  AttentionGeometry g;
  g.batch = B, g.heads = H, g.sq = S, g.sk = S, g.d = D, g.dv = D;
  const AttentionView split{0, {S * N, D, N, 1}};  // [B,S,H*D] seen as [B,H,S,D]
  g.q = g.k = g.v = split;
  g.out = AttentionView{0, {S * N, D, N, 1}};
  g.out_shape = {B, S, N};
  g.scale = 0.25f;
  Value* out = b.g->add_value("attn");
  Node* a = b.g->add_node("Attention", proj, {out}, "attn", "kiln", 21);
  set_attention_attrs(a->attrs, g);
  b.g->outputs = {out};
  if (c.q_also_output) b.g->outputs.push_back(proj[0]);
  return b;
}

std::function<void(PassManager&)> merge_passes() { return with_dce(make_fp8_qkv_merge_pass); }

TEST(Fp8QkvMerge, EqualScalesMergeExactly) {
  GraphPtr g = check_before_after([] { return qkv_graph({}); }, merge_passes(), 1e-6);
  ASSERT_EQ(ops(*g), (std::vector<std::string>{"Fp8MatMul", "Attention"}));
  const Node* mm = g->nodes()[0].get();
  EXPECT_EQ(mm->inputs[2]->constant->dims(), (Dims{96, 32}));
  EXPECT_EQ(mm->inputs[4]->constant->dims(), (Dims{96}));
  EXPECT_EQ(mm->outputs[0]->type.shape.to_dims(), (Dims{2, 8, 96}));
  EXPECT_EQ(mm->attrs.s(kFusedAttr, ""), "q:Fp8MatMul,k:Fp8MatMul,v:Fp8MatMul");
  const Node* a = g->nodes()[1].get();
  for (size_t i = 0; i < 3; ++i) EXPECT_EQ(a->inputs[i], mm->outputs[0]);
  // Rows of 96: Q at column 0, K at 32, V at 64.
  EXPECT_EQ(a->attrs.ints("q_view"), (std::vector<int64_t>{0, 8 * 96, 16, 96, 1}));
  EXPECT_EQ(a->attrs.ints("k_view"), (std::vector<int64_t>{32, 8 * 96, 16, 96, 1}));
  EXPECT_EQ(a->attrs.ints("v_view"), (std::vector<int64_t>{64, 8 * 96, 16, 96, 1}));
}

TEST(Fp8QkvMerge, DifferentWeightScalesStaySeparate) {
  // cuBLASLt takes one weight scale: merging would re-round two weights away from the model's Q/DQ.
  GraphPtr g = check_before_after([] { return qkv_graph({.equal_scales = false}); }, merge_passes(), 1e-6);
  EXPECT_EQ(count(*g, "Fp8MatMul"), 3);
  EXPECT_EQ(count(*g, "Attention"), 1);
}

TEST(Fp8QkvMerge, OtherReadersAndMismatchesStaySeparate) {
  // Q is also a graph output: K and V merge, Q stays.
  GraphPtr g = check_before_after([] { return qkv_graph({.q_also_output = true}); }, merge_passes(), 1e-6);
  EXPECT_EQ(count(*g, "Fp8MatMul"), 2);
  // A GEMM with a bias next to ones without: only those alike merge.
  auto mixed = [] {
    G b = qkv_graph({.bias = true});
    for (const auto& n : b.g->nodes())
      if (n->name == "k") n->inputs.resize(4);
    return b;
  };
  g = check_before_after(mixed, merge_passes(), 1e-6);
  EXPECT_EQ(count(*g, "Fp8MatMul"), 2);
  // No bias anywhere: all three alike.
  g = check_before_after([] { return qkv_graph({.bias = false}); }, merge_passes(), 1e-6);
  EXPECT_EQ(count(*g, "Fp8MatMul"), 1);
}

}  // namespace
}  // namespace kiln::passtest
