// The attention fusion on the committed BERT/ViT test models (PyTorch 1.13 and 2.x exports): after
// the clean-up and CUDA pass pipelines every attention is one kiln.Attention, the head-split
// Transposes are gone, and the fused graph run on the CPU still gives expected_0.npy.

#include "passes_test_util.hpp"
#include "test_model_util.hpp"

namespace kiln {
namespace {

struct ModelCase {
  std::string dir;
  int layers;      // attention blocks in the model
  int transposes;  // Transposes left after fusion (none belong to attention)
};

class AttentionModels : public ::testing::TestWithParam<ModelCase> {};

// The model imported with its inputs' shapes fixed, and the feeds; then, as the builder does, the
// clean-up pipeline to a fixed point before the backend's passes.
void load(const std::string& name, std::shared_ptr<Graph>& graph, std::map<std::string, Tensor>& feeds, Tensor& want) {
  ASSERT_NO_FATAL_FAILURE(test::load_test_model(name, graph, feeds, want));
  PassManager cleanup;
  add_cleanup_passes(cleanup, false);
  Status st = cleanup.run(*graph);
  ASSERT_TRUE(st.ok()) << st.message();
}

// `transposes`: whether to count the Transposes left (float16 adds NHWC ones around the patch Conv).
void check_fused(const Graph& g, const ModelCase& c, bool transposes = true) {
  EXPECT_EQ(passtest::count(g, "Attention"), c.layers) << graph_to_text(g);
  EXPECT_EQ(passtest::count(g, "Softmax"), 0);
  EXPECT_EQ(passtest::count(g, "MaskedSoftmax"), 0);
  EXPECT_EQ(passtest::count(g, "Slice"), 0);  // vit_tiny: Q/K/V read from the packed in_proj output
  if (transposes) {
    EXPECT_EQ(passtest::count(g, "Transpose"), c.transposes) << graph_to_text(g);
  }
  for (const auto& n : g.nodes()) {  // no head split/merge Transpose next to an attention
    if (n->op_type != "Attention") continue;
    for (const Value* in : n->inputs) EXPECT_FALSE(in->producer && in->producer->op_type == "Transpose") << n->name;
    for (const Node* r : g.consumers(n->outputs[0])) EXPECT_NE(r->op_type, "Transpose") << n->name;
  }
}

// float32, the pass alone (asked to fuse float32): the CPU result equals the export's.
TEST_P(AttentionModels, Float32FusedKeepsExpectedOutputs) {
  const ModelCase& c = GetParam();
  std::shared_ptr<Graph> g;
  std::map<std::string, Tensor> feeds;
  Tensor want;
  ASSERT_NO_FATAL_FAILURE(load(c.dir, g, feeds, want));
  PassManager pm;
  pm.add(make_attention_fusion_pass(true));
  pm.add(make_dead_code_pass());
  ASSERT_TRUE(pm.run(*g).ok());
  check_fused(*g, c);
  for (const auto& n : g->nodes())
    if (n->op_type == "Attention") std::printf("  %s: %s\n", n->name.c_str(), n->attrs.s(kFusedAttr).c_str());
  auto got = passtest::run_graph(g, feeds);
  ASSERT_TRUE(got.ok()) << got.status().message();
  ASSERT_EQ((*got)[0].dims(), want.dims());
  EXPECT_LE(test::rel_l2((*got)[0], want), 1e-5);
}

// float16 (as `kiln build --fp16`), the whole CUDA pipeline, run on the CPU.
TEST_P(AttentionModels, Float16CudaPipelineKeepsExpectedOutputs) {
  const ModelCase& c = GetParam();
  std::shared_ptr<Graph> g;
  std::map<std::string, Tensor> feeds;
  Tensor want;
  ASSERT_NO_FATAL_FAILURE(load(c.dir, g, feeds, want));
  ASSERT_TRUE(make_precision_pass(DType::kFloat16)->run(*g).ok());
  ASSERT_TRUE(infer_shapes(*g).ok());
  PassManager cuda;
  add_cuda_passes(cuda);
  Status st = cuda.run(*g);
  ASSERT_TRUE(st.ok()) << st.message();
  check_fused(*g, c, false);
  if (c.dir.rfind("vit", 0) == 0) {
    // patchify-conv: the patch embedding is a GEMM after one space-to-depth Transpose (the only
    // Transpose left: mha-transpose moved the batch-first ones into the attentions' strides);
    // out_proj and the head Gemms are FusedMatMuls, out_proj with the residual.
    EXPECT_EQ(passtest::count(*g, "Conv") + passtest::count(*g, "FusedConv"), 0) << graph_to_text(*g);
    EXPECT_EQ(passtest::count(*g, "Transpose"), 1) << graph_to_text(*g);
    EXPECT_EQ(passtest::count(*g, "Gemm"), 0);
    EXPECT_EQ(passtest::count(*g, "Add"), 1);  // the position embedding
  } else {
    // common-subexpression: HF BERT's per-layer mask Where once.
    EXPECT_LE(passtest::count(*g, "Where"), 1);
    // qkv-merge: each attention reads Q, K and V from one GEMM's output.
    for (const auto& n : g->nodes())
      if (n->op_type == "Attention") {
        EXPECT_EQ(n->inputs[0], n->inputs[1]) << n->name;
        EXPECT_EQ(n->inputs[0], n->inputs[2]) << n->name;
      }
  }
  auto got = passtest::run_graph(g, feeds);
  ASSERT_TRUE(got.ok()) << got.status().message();
  ASSERT_EQ((*got)[0].dims(), want.dims());
  EXPECT_LE(test::rel_l2((*got)[0].cast(DType::kFloat32), want), 1e-2);
}

INSTANTIATE_TEST_SUITE_P(All, AttentionModels,
                         ::testing::Values(ModelCase{"bert_hf_tiny", 2, 0}, ModelCase{"vit_torch2_tiny", 2, 5},
                                           ModelCase{"bert_tiny", 2, 0}, ModelCase{"vit_tiny", 2, 5}),
                         [](const auto& info) { return info.param.dir; });

}  // namespace
}  // namespace kiln
