// The attention fusion on the committed BERT/ViT test models (PyTorch 1.13 and 2.x exports): after
// the clean-up and CUDA pass pipelines every attention is one kiln.Attention, the head-split
// Transposes are gone, and the fused graph run on the CPU still gives expected_0.npy.
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "io/npy.hpp"
#include "onnx/importer.hpp"
#include "passes_test_util.hpp"

namespace kiln {
namespace {

namespace fs = std::filesystem;

struct ModelCase {
  std::string dir;
  int layers;      // attention blocks in the model
  int transposes;  // Transposes left after fusion (none belong to attention)
};

class AttentionModels : public ::testing::TestWithParam<ModelCase> {};

TEST_P(AttentionModels, FusedGraphKeepsExpectedOutputs) {
  const ModelCase& c = GetParam();
  fs::path dir = fs::path(KILN_SOURCE_DIR) / "tests/models/data" / c.dir;
  std::ifstream io_file(dir / "io.json");
  auto io = nlohmann::json::parse(io_file, nullptr, false);
  ASSERT_FALSE(io.is_discarded());
  auto model = import_onnx_file((dir / "model.onnx").string());
  ASSERT_TRUE(model.ok()) << model.status().message();
  Graph& g = *model->graph;
  std::map<std::string, Tensor> feeds;
  for (const auto& in : io["inputs"]) {
    auto t = load_npy((dir / in["file"].get<std::string>()).string());
    ASSERT_TRUE(t.ok()) << t.status().message();
    for (Value* v : g.inputs)
      if (v->name == in["name"].get<std::string>()) v->type.shape = Shape::from_dims(t->dims());
    feeds.emplace(in["name"].get<std::string>(), std::move(*t));
  }
  ASSERT_TRUE(infer_shapes(g).ok());
  // As the builder does: the clean-up pipeline to a fixed point, then the CUDA passes.
  PassManager cleanup, cuda;
  add_cleanup_passes(cleanup, false);
  add_cuda_passes(cuda);
  Status st = cleanup.run(g);
  ASSERT_TRUE(st.ok()) << st.message();
  st = cuda.run(g);
  ASSERT_TRUE(st.ok()) << st.message();
  EXPECT_EQ(passtest::count(g, "Attention"), c.layers) << graph_to_text(g);
  EXPECT_EQ(passtest::count(g, "Softmax"), 0);
  EXPECT_EQ(passtest::count(g, "MaskedSoftmax"), 0);
  EXPECT_EQ(passtest::count(g, "Slice"), 0);  // vit_tiny: Q/K/V read from the packed in_proj output
  EXPECT_EQ(passtest::count(g, "Transpose"), c.transposes) << graph_to_text(g);
  for (const auto& n : g.nodes())
    if (n->op_type == "Attention") std::printf("  %s: %s\n", n->name.c_str(), n->attrs.s(kFusedAttr).c_str());
  auto got = passtest::run_graph(model->graph, feeds);
  ASSERT_TRUE(got.ok()) << got.status().message();
  auto want = load_npy((dir / "expected_0.npy").string());
  ASSERT_TRUE(want.ok());
  ASSERT_EQ((*got)[0].dims(), want->dims());
  EXPECT_LE(test::rel_l2((*got)[0], *want), 1e-5);
}

INSTANTIATE_TEST_SUITE_P(All, AttentionModels,
                         ::testing::Values(ModelCase{"bert_hf_tiny", 2, 0}, ModelCase{"vit_torch2_tiny", 2, 5},
                                           ModelCase{"bert_tiny", 2, 0}, ModelCase{"vit_tiny", 2, 5}),
                         [](const auto& info) { return info.param.dir; });

}  // namespace
}  // namespace kiln
