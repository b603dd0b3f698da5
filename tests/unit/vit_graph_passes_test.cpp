// The ViT/BERT graph passes: patchify-conv, mha-transpose and the Gemm / late-residual forms of
// matmul-bias-fusion. Each runs on a small graph on the CPU before and after (equal outputs) and
// the structure after is checked.
#include "passes_test_util.hpp"

namespace kiln {
namespace {

using passtest::attrs;
using passtest::check_before_after;
using passtest::count;
using passtest::G;
using passtest::with_dce;

Attributes conv_attrs(int64_t k, int64_t s, std::vector<int64_t> pads = {0, 0, 0, 0}, int64_t group = 1) {
  return attrs({{"kernel_shape", std::vector<int64_t>{k, k}},
                {"strides", std::vector<int64_t>{s, s}},
                {"pads", std::move(pads)},
                {"group", group}});
}

// ViT's patch embedding: Conv(k = stride) -> Reshape [N, O, P] -> Transpose [0, 2, 1].
G patch_embedding(bool with_bias, bool flatten_transpose, DType t = DType::kFloat32) {
  G m;
  Value* x = m.input("x", {2, 3, 8, 12}, t);
  Value* w = m.constant("w", test::random_tensor(t, {5, 3, 4, 4}, 11));
  std::vector<Value*> ins{x, w};
  if (with_bias) ins.push_back(m.constant("b", test::random_tensor(t, {5}, 12)));
  Value* y = m.op("Conv", ins, "conv", conv_attrs(4, 4));
  if (flatten_transpose) {
    Value* r = m.op("Reshape", {y, m.ints("shape", {2, 5, 6})}, "flat");
    y = m.op("Transpose", {r}, "tokens", attrs({{"perm", std::vector<int64_t>{0, 2, 1}}}));
  }
  m.g->outputs = {y};
  return m;
}

TEST(PatchifyConv, PatchEmbeddingBecomesOneGemmWritingTheTokens) {
  for (bool bias : {true, false}) {
    SCOPED_TRACE(bias ? "bias" : "no bias");
    auto g = check_before_after([&] { return patch_embedding(bias, true); }, with_dce(make_patchify_conv_pass));
    EXPECT_EQ(count(*g, "Conv"), 0);
    EXPECT_EQ(count(*g, "FusedMatMul"), 1);
    EXPECT_EQ(count(*g, "Transpose"), 1);  // the space-to-depth copy of the input only
    EXPECT_EQ(g->outputs[0]->producer->op_type, "FusedMatMul");
  }
}

TEST(PatchifyConv, AConvAloneGetsItsNchwOutputBack) {
  auto g = check_before_after([] { return patch_embedding(true, false); }, with_dce(make_patchify_conv_pass));
  EXPECT_EQ(count(*g, "Conv"), 0);
  EXPECT_EQ(count(*g, "FusedMatMul"), 1);
  EXPECT_EQ(count(*g, "Transpose"), 2);  // space-to-depth, and the tokens back to NCHW
  ASSERT_TRUE(g->outputs[0]->type.shape.to_dims());
  EXPECT_EQ(*g->outputs[0]->type.shape.to_dims(), (Dims{2, 5, 2, 3}));
}

TEST(PatchifyConv, Float16) {
  auto g = check_before_after([] { return patch_embedding(true, true, DType::kFloat16); },
                              with_dce(make_patchify_conv_pass), 2e-3);
  EXPECT_EQ(count(*g, "FusedMatMul"), 1);
}

TEST(PatchifyConv, LeavesOtherConvolutions) {
  struct Case {
    const char* what;
    Attributes a;
    Dims x, w;
  };
  const std::vector<Case> cases = {
      {"stride != kernel", conv_attrs(4, 2), {1, 3, 8, 8}, {5, 3, 4, 4}},
      {"padding", conv_attrs(4, 4, {1, 1, 1, 1}), {1, 3, 8, 8}, {5, 3, 4, 4}},
      {"groups", conv_attrs(4, 4, {0, 0, 0, 0}, 3), {1, 3, 8, 8}, {6, 1, 4, 4}},
      {"size not a multiple of the kernel", conv_attrs(4, 4), {1, 3, 9, 8}, {5, 3, 4, 4}},
      {"1x1", conv_attrs(1, 1), {1, 3, 8, 8}, {5, 3, 1, 1}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    auto g = check_before_after(
        [&] {
          G m;
          Value* x = m.input("x", c.x);
          m.g->outputs = {m.op("Conv", {x, m.random_const("w", c.w)}, "conv", c.a)};
          return m;
        },
        with_dce(make_patchify_conv_pass));
    EXPECT_EQ(count(*g, "Conv"), 1);
    EXPECT_EQ(count(*g, "FusedMatMul"), 0);
  }
}

TEST(MatMulBiasFusion, GemmWithConstantWeightsAndBias) {
  for (int64_t trans_b : {0, 1}) {
    SCOPED_TRACE(trans_b ? "transB" : "B as [K, N]");
    auto g = check_before_after(
        [&] {
          G m;
          Value* a = m.input("a", {6, 8});
          Value* w = m.random_const("w", trans_b ? Dims{5, 8} : Dims{8, 5});
          Value* y = m.op("Gemm", {a, w, m.random_const("c", {5})}, "gemm", attrs({{"transB", trans_b}}));
          m.g->outputs = {m.op("Add", {y, m.input("r", {6, 5})}, "residual")};
          return m;
        },
        with_dce(make_matmul_bias_fusion_pass));
    EXPECT_EQ(count(*g, "Gemm"), 0);
    EXPECT_EQ(count(*g, "Add"), 0);
    ASSERT_EQ(count(*g, "FusedMatMul"), 1);
    EXPECT_EQ(g->outputs[0]->producer->num_inputs(), 4u);  // the residual too
  }
}

TEST(MatMulBiasFusion, LeavesGemmsItCannotFuse) {
  struct Case {
    const char* what;
    Attributes a;
    bool const_b;
    Dims c;
  };
  const std::vector<Case> cases = {{"transA", attrs({{"transA", int64_t{1}}}), true, {5}},
                                   {"alpha", attrs({{"alpha", 2.f}}), true, {5}},
                                   {"beta", attrs({{"beta", 0.5f}}), true, {5}},
                                   {"B an input", {}, false, {5}},
                                   {"full C", {}, true, {6, 5}}};
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    auto g = check_before_after(
        [&] {
          G m;
          Value* a = m.input("a", c.a.has("transA") ? Dims{8, 6} : Dims{6, 8});
          Value* w = c.const_b ? m.random_const("w", {8, 5}) : m.input("w", {8, 5});
          m.g->outputs = {m.op("Gemm", {a, w, m.random_const("c", c.c)}, "gemm", c.a)};
          return m;
        },
        with_dce(make_matmul_bias_fusion_pass));
    EXPECT_EQ(count(*g, "Gemm"), 1);
    EXPECT_EQ(count(*g, "FusedMatMul"), 0);
  }
}

// nn.MultiheadAttention(batch_first=True) as exported: x [B,S,E] -> Transpose [S,B,E] -> in_proj
// (packed QKV) -> head split views -> attention -> Transpose/Reshape [S*B,E] -> out_proj (Gemm) ->
// Reshape [S,B,E] -> Transpose [B,S,E] -> + x.
G batch_first_mha(DType t) {
  const int64_t b = 2, s = 5, h = 2, d = 4, e = h * d;
  G m;
  Value* x = m.input("x", {b, s, e}, t);
  auto w = [&](const std::string& name, Dims dims) { return m.constant(name, test::random_tensor(t, dims, m.seed++, -0.5, 0.5)); };
  auto perm = [](std::vector<int64_t> p) { return attrs({{"perm", std::move(p)}}); };
  Value* xt = m.op("Transpose", {x}, "to_sbe", perm({1, 0, 2}));
  Value* qkv = m.op("MatMul", {xt, w("w_in", {e, 3 * e})}, "in_proj");
  qkv = m.op("Add", {qkv, w("b_in", {3 * e})}, "in_proj_bias");
  // [S,B,3E] -> [S,B,3,E] -> [3,S,B,E] -> q/k/v [S,B,E] -> [S,B*H,d] -> [B*H,S,d]
  Value* split = m.op("Reshape", {qkv, m.ints("split_shape", {s, b, 3, e})}, "split");
  Value* moved = m.op("Transpose", {split}, "qkv_first", perm({2, 0, 1, 3}));
  Value* heads[3];
  for (int i = 0; i < 3; ++i) {
    const std::string n = "qkv" + std::to_string(i);
    Value* one = m.op("Gather", {moved, m.constant(n + "_index", Tensor::scalar<int64_t>(i))}, n);
    Value* r = m.op("Reshape", {one, m.ints(n + "_heads", {s, b * h, d})}, n + "_heads_view");
    heads[i] = m.op("Transpose", {r}, n + "_bh_first", perm({1, 0, 2}));
  }
  Value* kt = m.op("Transpose", {heads[1]}, "k_t", perm({0, 2, 1}));
  Value* scores = m.op("MatMul", {heads[0], kt}, "scores");
  scores = m.op("Mul", {scores, m.constant("scale", Tensor::scalar<float>(0.5f).cast(t))}, "scale_scores");
  Value* p = m.op("Softmax", {scores}, "softmax", attrs({{"axis", int64_t{-1}}}));
  Value* o = m.op("MatMul", {p, heads[2]}, "context");                 // [B*H, S, d]
  o = m.op("Transpose", {o}, "context_sbh", perm({1, 0, 2}));         // [S, B*H, d]
  o = m.op("Reshape", {o, m.ints("rows_shape", {s * b, e})}, "rows");  // [S*B, E]
  o = m.op("Gemm", {o, w("w_out", {e, e}), w("b_out", {e})}, "out_proj", attrs({{"transB", int64_t{1}}}));
  o = m.op("Reshape", {o, m.ints("sbe_shape", {s, b, e})}, "sbe");
  o = m.op("Transpose", {o}, "to_bse", perm({1, 0, 2}));
  m.g->outputs = {m.op("Add", {o, x}, "residual")};
  return m;
}

void cuda_attention_passes(PassManager& pm) {
  pm.add(make_matmul_bias_fusion_pass());
  pm.add(make_attention_fusion_pass());
  pm.add(make_dead_code_pass());
  pm.add(make_mha_transpose_pass());
  pm.add(make_dead_code_pass());
}

TEST(MhaTranspose, BatchFirstMultiheadAttentionLosesItsTransposes) {
  auto g = check_before_after([] { return batch_first_mha(DType::kFloat16); }, cuda_attention_passes, 2e-3);
  EXPECT_EQ(count(*g, "Attention"), 1);
  EXPECT_EQ(count(*g, "Transpose"), 0) << graph_to_text(*g);
  EXPECT_EQ(count(*g, "Reshape"), 0) << graph_to_text(*g);
  EXPECT_EQ(count(*g, "Add"), 0);  // the residual joined the out_proj GEMM
  EXPECT_EQ(count(*g, "FusedMatMul"), 2);
}

TEST(MhaTranspose, WithoutThePassTheTransposesStay) {
  auto g = check_before_after(
      [] { return batch_first_mha(DType::kFloat16); },
      [](PassManager& pm) {
        pm.add(make_matmul_bias_fusion_pass());
        pm.add(make_attention_fusion_pass());
        pm.add(make_dead_code_pass());
      },
      2e-3);
  EXPECT_EQ(count(*g, "Attention"), 1);
  EXPECT_EQ(count(*g, "Transpose"), 2);
}

TEST(MhaTranspose, LeavesATransposedProjectionOthersRead) {
  // The in_proj output is also a graph output: its layout must stay.
  auto g = check_before_after(
      [] {
        G m = batch_first_mha(DType::kFloat16);
        for (const auto& n : m.g->nodes())
          if (n->name == "in_proj_bias") m.g->outputs.push_back(n->outputs[0]);
        return m;
      },
      cuda_attention_passes, 2e-3);
  EXPECT_EQ(count(*g, "Transpose"), 1);  // only the output side went
}

// BERT's self-attention: separate query/key/value projections of one input, head split
// Reshape [B,S,H,d] + Transpose, scaled scores, Softmax, context, head merge.
// `k_is_output`: the key projection is also a graph output (it cannot be merged).
G bert_attention(DType t, bool k_is_output) {
  const int64_t b = 2, s = 5, h = 2, d = 4, e = h * d;
  G m;
  Value* x = m.input("x", {b, s, e}, t);
  auto w = [&](const std::string& name, Dims dims) { return m.constant(name, test::random_tensor(t, dims, m.seed++, -0.5, 0.5)); };
  auto perm = [](std::vector<int64_t> p) { return attrs({{"perm", std::move(p)}}); };
  Value* proj[3];
  const char* names[3] = {"q", "k", "v"};
  for (int i = 0; i < 3; ++i) {
    const std::string n = names[i];
    Value* y = m.op("MatMul", {x, w(n + "_w", {e, e})}, n + "_mm");
    proj[i] = m.op("Add", {y, w(n + "_b", {e})}, n);
    Value* r = m.op("Reshape", {proj[i], m.ints(n + "_shape", {b, s, h, d})}, n + "_heads");
    proj[i] = m.op("Transpose", {r}, n + "_bhsd", perm(i == 1 ? std::vector<int64_t>{0, 2, 3, 1} : std::vector<int64_t>{0, 2, 1, 3}));
  }
  Value* scores = m.op("MatMul", {proj[0], proj[1]}, "scores");
  scores = m.op("Div", {scores, m.constant("scale", Tensor::scalar<float>(2.f).cast(t))}, "scale_scores");
  Value* p = m.op("Softmax", {scores}, "softmax", attrs({{"axis", int64_t{-1}}}));
  Value* o = m.op("MatMul", {p, proj[2]}, "context");
  o = m.op("Transpose", {o}, "context_bshd", perm({0, 2, 1, 3}));
  m.g->outputs = {m.op("Reshape", {o, m.ints("merge_shape", {b, s, e})}, "merged")};
  if (k_is_output)
    for (const auto& n : m.g->nodes())
      if (n->name == "k") m.g->outputs.push_back(n->outputs[0]);
  return m;
}

void qkv_passes(PassManager& pm) {
  pm.add(make_matmul_bias_fusion_pass());
  pm.add(make_attention_fusion_pass());
  pm.add(make_dead_code_pass());
  pm.add(make_qkv_merge_pass());
  pm.add(make_dead_code_pass());
}

TEST(QkvMerge, ThreeProjectionsBecomeOneGemmTheAttentionSlices) {
  for (DType t : {DType::kFloat16, DType::kBFloat16}) {
    SCOPED_TRACE(dtype_name(t));
    auto g = check_before_after([&] { return bert_attention(t, false); }, qkv_passes,
                                t == DType::kFloat16 ? 2e-3 : 2e-2);
    ASSERT_EQ(count(*g, "FusedMatMul"), 1);
    EXPECT_EQ(count(*g, "Attention"), 1);
    for (const auto& n : g->nodes())
      if (n->op_type == "FusedMatMul") EXPECT_EQ(*n->outputs[0]->type.shape.to_dims(), (Dims{2, 5, 24}));
  }
}

TEST(QkvMerge, AProjectionReadElsewhereStaysSeparate) {
  auto g = check_before_after([] { return bert_attention(DType::kFloat16, true); }, qkv_passes, 2e-3);
  EXPECT_EQ(count(*g, "FusedMatMul"), 2);  // q and v merged, k alone
  EXPECT_EQ(count(*g, "Attention"), 1);
}

TEST(QkvMerge, WithoutAttentionNothingMerges) {
  // Two projections of one input read by plain ops: their layouts are not views to re-stride.
  auto g = check_before_after(
      [] {
        G m;
        Value* x = m.input("x", {3, 8}, DType::kFloat16);
        Value* a = m.op("MatMul", {x, m.constant("wa", test::random_tensor(DType::kFloat16, {8, 4}, 5))}, "a_mm");
        a = m.op("Add", {a, m.constant("ba", test::random_tensor(DType::kFloat16, {4}, 6))}, "a");
        Value* b = m.op("MatMul", {x, m.constant("wb", test::random_tensor(DType::kFloat16, {8, 4}, 7))}, "b_mm");
        b = m.op("Add", {b, m.constant("bb", test::random_tensor(DType::kFloat16, {4}, 8))}, "b");
        m.g->outputs = {m.op("Mul", {a, b}, "y")};
        return m;
      },
      qkv_passes, 2e-3);
  EXPECT_EQ(count(*g, "FusedMatMul"), 2);
}

}  // namespace
}  // namespace kiln
