// Dynamic shapes on the CUDA backend: one plan with an optimization profile runs a small conv
// model at three image sizes x two batch sizes (with and without CUDA graphs) against the CPU
// reference, refuses shapes outside the profile, and runs the two dynamic models of
// tests/data/dynamic at 3 sizes x 2 batches against PyTorch's outputs.
#include "gpu_test_util.hpp"
#include "io/npy.hpp"
#include "onnx/importer.hpp"

namespace kiln::test {
namespace {

// x[N,3,H,W] -> Conv 3->8 (3x3, pad 1) -> Relu -> Conv 8->4 (3x3, stride 2, pad 1) -> Sigmoid.
Model conv_model() {
  Model m;
  m.graph = std::make_shared<Graph>();
  Graph& g = *m.graph;
  Value* x = g.add_value("x", {DType::kFloat32, Shape({Dim::symbolic("N"), Dim(3), Dim::symbolic("H"),
                                                       Dim::symbolic("W")})});
  Value* w1 = g.add_constant("w1", random_tensor(DType::kFloat32, {8, 3, 3, 3}, 11));
  Value* b1 = g.add_constant("b1", random_tensor(DType::kFloat32, {8}, 12));
  Value* w2 = g.add_constant("w2", random_tensor(DType::kFloat32, {4, 8, 3, 3}, 13));
  Value* c1 = g.add_value("c1");
  Value* r1 = g.add_value("r1");
  Value* c2 = g.add_value("c2");
  Value* y = g.add_value("y");
  g.inputs = {x};
  Node* n1 = g.add_node("Conv", {x, w1, b1}, {c1}, "conv1");
  n1->attrs.set("pads", std::vector<int64_t>{1, 1, 1, 1});
  g.add_node("Relu", {c1}, {r1}, "relu");
  Node* n2 = g.add_node("Conv", {r1, w2}, {c2}, "conv2");
  n2->attrs.set("pads", std::vector<int64_t>{1, 1, 1, 1});
  n2->attrs.set("strides", std::vector<int64_t>{2, 2});
  g.add_node("Sigmoid", {c2}, {y}, "sigmoid");
  g.outputs = {y};
  return m;
}

OptimizationProfile range(Dims min, Dims opt, Dims max) {
  OptimizationProfile p;
  p.inputs["x"] = {std::move(min), std::move(opt), std::move(max)};
  return p;
}

TEST(CudaDynamicShapes, OnePlanThreeSizesTwoBatchesMatchesCpu) {
  KILN_REQUIRE_GPU();
  BuildOptions o;
  o.backend = "cuda";
  o.tf32 = false;
  o.profiles = {range({1, 3, 16, 16}, {2, 3, 32, 32}, {4, 3, 64, 64})};
  auto plan = build_plan(conv_model(), o);
  ASSERT_TRUE(plan.ok()) << plan.status().message();
  std::string path = ::testing::TempDir() + "/kiln_gpu_dynamic.kplan";
  ASSERT_TRUE(save_plan(*plan, path).ok());
  auto engine = Engine::load(path);
  ASSERT_TRUE(engine.ok()) << engine.status().message();
  BuildOptions cpu_options;
  auto cpu_plan = build_plan(conv_model(), cpu_options);
  ASSERT_TRUE(cpu_plan.ok());
  auto cpu_engine = Engine::from_plan(std::move(*cpu_plan));
  ASSERT_TRUE(cpu_engine.ok());
  auto cpu = (*cpu_engine)->create_context();
  ASSERT_TRUE(cpu.ok());
  for (bool graphs : {false, true}) {
    auto ctx = (*engine)->create_context(ContextOptions{.cuda_graph = graphs});
    ASSERT_TRUE(ctx.ok()) << ctx.status().message();
    // Twice round, so shape sets and captured graphs are reused after switching.
    for (int round = 0; round < 2; ++round)
      for (Dims hw : {Dims{16, 16}, Dims{40, 24}, Dims{64, 64}})
        for (int64_t n : {1, 4}) {
          Tensor x = random_tensor(DType::kFloat32, {n, 3, hw[0], hw[1]}, 100 + n + hw[0] + round);
          auto want = (*cpu)->run({{"x", x}});
          ASSERT_TRUE(want.ok()) << want.status().message();
          auto got = (*ctx)->run({{"x", x}});
          ASSERT_TRUE(got.ok()) << dims_to_string(x.dims()) << ": " << got.status().message();
          ASSERT_EQ(got->at(0).dims(), want->at(0).dims());
          EXPECT_LE(rel_l2(got->at(0), want->at(0)), 1e-5) << dims_to_string(x.dims()) << " graphs " << graphs;
        }
    auto outside = (*ctx)->run({{"x", random_tensor(DType::kFloat32, {5, 3, 16, 16}, 7)}});
    ASSERT_FALSE(outside.ok());
    EXPECT_NE(outside.status().message().find("input 'x'"), std::string::npos) << outside.status().message();
    EXPECT_NE(outside.status().message().find("1x3x16x16 .. 4x3x64x64"), std::string::npos)
        << outside.status().message();
  }
}

std::string data_path(const std::string& file) {
  return std::string(KILN_SOURCE_DIR) + "/tests/data/dynamic/" + file;
}

void run_model(const std::string& name, const OptimizationProfile& prof) {
  auto model = import_onnx_file(data_path(name + ".onnx"));
  ASSERT_TRUE(model.ok()) << model.status().message();
  BuildOptions o;
  o.backend = "cuda";
  o.tf32 = false;
  o.profiles = {prof};
  auto plan = build_plan(std::move(*model), o);
  ASSERT_TRUE(plan.ok()) << plan.status().message();
  auto engine = Engine::from_plan(std::move(*plan));
  ASSERT_TRUE(engine.ok()) << engine.status().message();
  auto ctx = (*engine)->create_context(ContextOptions{.cuda_graph = true});
  ASSERT_TRUE(ctx.ok()) << ctx.status().message();
  for (int i = 0; i < 6; ++i) {
    auto x = load_npy(data_path(name + "_" + std::to_string(i) + "_input.npy"));
    auto want = load_npy(data_path(name + "_" + std::to_string(i) + "_output.npy"));
    ASSERT_TRUE(x.ok() && want.ok());
    auto out = (*ctx)->run({{"x", *x}});
    ASSERT_TRUE(out.ok()) << name << " case " << i << ": " << out.status().message();
    ASSERT_EQ(out->at(0).dims(), want->dims()) << name << " case " << i;
    EXPECT_LE(rel_l2(out->at(0), *want), 1e-4) << name << " case " << i << " " << dims_to_string(x->dims());
  }
}

TEST(CudaDynamicShapes, DetectorThreeSizesTwoBatchesMatchesPyTorch) {
  KILN_REQUIRE_GPU();
  run_model("detector", range({1, 3, 32, 32}, {1, 3, 48, 64}, {3, 3, 64, 96}));
}

TEST(CudaDynamicShapes, RecognizerThreeWidthsTwoBatchesMatchesPyTorch) {
  KILN_REQUIRE_GPU();
  run_model("recognizer", range({1, 3, 32, 32}, {1, 3, 32, 64}, {2, 3, 32, 100}));
}

}  // namespace
}  // namespace kiln::test
