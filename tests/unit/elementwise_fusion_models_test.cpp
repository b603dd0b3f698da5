// elementwise-fusion on the committed test models: the CUDA pipeline as `kiln build --fp16` runs it
// (clean-up, precision, CUDA fusions, then elementwise-fusion), executed on the CPU: the fused
// graph still gives expected_0.npy, and the groups found are printed.
#include <cstdio>

#include "passes_test_util.hpp"
#include "test_model_util.hpp"

namespace kiln {
namespace {

struct ModelCase {
  std::string dir;
  int min_groups;  // kiln.FusedElementwise nodes expected at least
};

class ElementwiseFusionModels : public ::testing::TestWithParam<ModelCase> {};

TEST_P(ElementwiseFusionModels, Float16CudaPipelineKeepsExpectedOutputs) {
  const ModelCase& c = GetParam();
  std::shared_ptr<Graph> g;
  std::map<std::string, Tensor> feeds;
  Tensor want;
  ASSERT_NO_FATAL_FAILURE(test::load_test_model(c.dir, g, feeds, want));
  PassManager cleanup;
  add_cleanup_passes(cleanup, false);
  ASSERT_TRUE(cleanup.run(*g).ok());
  ASSERT_TRUE(make_precision_pass(DType::kFloat16)->run(*g).ok());
  ASSERT_TRUE(infer_shapes(*g).ok());
  ASSERT_TRUE(cleanup.run(*g).ok());
  PassManager cuda;
  add_cuda_passes(cuda);
  cuda.add(make_dead_code_pass());
  ASSERT_TRUE(cuda.run(*g).ok());
  PassManager last;
  add_cuda_final_passes(last);
  Status st = last.run(*g);
  ASSERT_TRUE(st.ok()) << st.message();
  int groups = 0;
  for (const auto& n : g->nodes()) {
    if (n->op_type != "FusedElementwise") continue;
    ++groups;
    std::printf("  %s: %s\n", n->name.c_str(), n->attrs.s(kFusedAttr).c_str());
  }
  std::map<std::string, int> ops;
  for (const auto& n : g->nodes()) ++ops[n->op_type];
  std::string list;
  for (const auto& [op, k] : ops) list += " " + op + "=" + std::to_string(k);
  std::printf("  %s: %d fused groups, %zu nodes:%s\n", c.dir.c_str(), groups, g->nodes().size(), list.c_str());
  EXPECT_GE(groups, c.min_groups);
  auto got = passtest::run_graph(g, feeds);
  ASSERT_TRUE(got.ok()) << got.status().message();
  ASSERT_EQ((*got)[0].dims(), want.dims());
  EXPECT_LE(test::rel_l2((*got)[0].cast(DType::kFloat32), want), 1e-2);
}

INSTANTIATE_TEST_SUITE_P(All, ElementwiseFusionModels,
                         ::testing::Values(ModelCase{"bert_hf_tiny", 1}, ModelCase{"mobilenetv3_small", 9},
                                           ModelCase{"vit_torch2_tiny", 0}, ModelCase{"unet_small", 0}),
                         [](const auto& info) { return info.param.dir; });

}  // namespace
}  // namespace kiln
