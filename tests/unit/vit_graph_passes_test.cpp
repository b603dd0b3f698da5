// The ViT/BERT graph passes: patchify-conv, mha-transpose and the Gemm / late-residual forms of
// matmul-bias-fusion. Each runs on a small graph on the CPU before and after (equal outputs) and
// the structure after is checked.
#include "xformer_graphs.hpp"

namespace kiln {
namespace {

using passtest::attrs;
using passtest::check_before_after;
using passtest::count;
using passtest::G;
using passtest::with_dce;
using xformer_graphs::batch_first_mha;
using xformer_graphs::bert_attention;
using xformer_graphs::conv_attrs;
using xformer_graphs::patch_embedding;

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
      if (n->op_type == "FusedMatMul") { EXPECT_EQ(*n->outputs[0]->type.shape.to_dims(), (Dims{2, 5, 24})); }
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

// HF BERT's per-layer mask: Where(mask, 0, -inf) repeated with equal (but separate) constants.
TEST(CommonSubexpression, RepeatedMaskWheresBecomeOne) {
  auto make = [](bool differ) {
    G m;
    Value* mask = m.input("mask", {2, 1, 4, 4}, DType::kBool);
    Value* x = m.input("x", {2, 3, 4, 4});
    Value* y = x;
    for (int i = 0; i < 3; ++i) {
      const std::string n = std::to_string(i);
      const float fill = differ && i == 2 ? -5.f : -1e4f;
      Value* w = m.op("Where", {mask, m.scalar("zero" + n, 0.f), m.scalar("fill" + n, fill)}, "where" + n);
      y = m.op("Add", {y, w}, "add" + n);
    }
    m.g->outputs = {y};
    return m;
  };
  auto g = check_before_after([&] { return make(false); }, with_dce(make_common_subexpression_pass));
  EXPECT_EQ(count(*g, "Where"), 1);
  EXPECT_EQ(count(*g, "Add"), 3);  // each reads a different x
  g = check_before_after([&] { return make(true); }, with_dce(make_common_subexpression_pass));
  EXPECT_EQ(count(*g, "Where"), 2);  // the third fills with another value
}

TEST(CommonSubexpression, AttributesInputsAndOutputsMustMatch) {
  auto g = check_before_after(
      [] {
        G m;
        Value* x = m.input("x", {2, 3, 4});
        Value* z = m.input("z", {2, 3, 4});
        auto softmax = [&](Value* in, int64_t axis, const std::string& name) {
          return m.op("Softmax", {in}, name, attrs({{"axis", axis}}));
        };
        Value* a = softmax(x, -1, "a");
        Value* b = softmax(x, -1, "b");  // a duplicate of a
        Value* c = softmax(x, 1, "c");   // another axis
        Value* d = softmax(z, -1, "d");  // another input
        Value* e = softmax(x, -1, "e");  // a duplicate, but a graph output: kept
        Value* s = m.op("Add", {m.op("Add", {a, b}, "ab"), m.op("Add", {c, d}, "cd")}, "sum");
        m.g->outputs = {s, e};
        return m;
      },
      with_dce(make_common_subexpression_pass));
  EXPECT_EQ(count(*g, "Softmax"), 4);  // a (b merged into it), c, d, e
}

TEST(CommonSubexpression, LeavesRandomAndQuantizeNodes) {
  auto g = check_before_after(
      [] {
        G m;
        Value* x = m.input("x", {8});
        Value* q1 = m.op("QuantizeLinear", {x, m.scalar("s1", 0.1f)}, "q1");
        Value* q2 = m.op("QuantizeLinear", {x, m.scalar("s2", 0.1f)}, "q2");
        Value* d1 = m.op("DequantizeLinear", {q1, m.scalar("s3", 0.1f)}, "d1");
        Value* d2 = m.op("DequantizeLinear", {q2, m.scalar("s4", 0.1f)}, "d2");
        m.g->outputs = {m.op("Add", {d1, d2}, "y")};
        return m;
      },
      with_dce(make_common_subexpression_pass));
  EXPECT_EQ(count(*g, "QuantizeLinear"), 2);
  EXPECT_EQ(count(*g, "DequantizeLinear"), 2);
}

}  // namespace
}  // namespace kiln
