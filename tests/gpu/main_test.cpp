// The GPU test binary's own checks of the CUDA engine (layers have their own files).
#include <cstdio>

#include "gpu_test_util.hpp"

namespace kiln::test {
namespace {

// ctest marks the whole binary "Skipped" when this line is printed (SKIP_REGULAR_EXPRESSION).
struct AnnounceSkip : ::testing::Environment {
  void SetUp() override {
    Status st = cuda::device_available();
    if (!st.ok()) std::printf("kiln-gpu-tests: skipped, %s\n", st.message().c_str());
  }
};
[[maybe_unused]] auto* const kAnnounce = ::testing::AddGlobalTestEnvironment(new AnnounceSkip);

TEST(CudaEngine, ViewOpsCopyOrAlias) {
  KILN_REQUIRE_GPU();
  OpCall call{.op_type = "Identity", .inputs = {random_tensor(DType::kFloat32, {3, 5})}};
  EXPECT_TRUE(matches_cpu(call, 0.0));
  call.constant_inputs = {true};  // a constant input: the layer must copy
  EXPECT_TRUE(matches_cpu(call, 0.0));
}

TEST(CudaEngine, PlanRoundTripAndCudaGraphReplay) {
  KILN_REQUIRE_GPU();
  OpCall call{.op_type = "Identity", .inputs = {random_tensor(DType::kFloat16, {64, 7})}};
  BuildOptions o;
  o.backend = "cuda";
  Model model;
  model.graph = make_op_graph(call);
  auto plan = build_plan(std::move(model), o);
  ASSERT_TRUE(plan.ok()) << plan.status().message();
  EXPECT_EQ(plan->target.backend, "cuda");
  EXPECT_GT(plan->target.compute_capability, 0);
  std::string path = ::testing::TempDir() + "/kiln_gpu_identity.kplan";
  ASSERT_TRUE(save_plan(*plan, path).ok());
  auto engine = Engine::load(path);
  ASSERT_TRUE(engine.ok()) << engine.status().message();
  auto ctx = (*engine)->create_context(ContextOptions{.cuda_graph = true});
  ASSERT_TRUE(ctx.ok()) << ctx.status().message();
  for (int i = 0; i < 3; ++i) {  // capture once, replay twice, with new inputs each time
    Tensor in = random_tensor(DType::kFloat16, {64, 7}, 100 + i);
    auto out = (*ctx)->run({{"in0", in}});
    ASSERT_TRUE(out.ok()) << out.status().message();
    EXPECT_TRUE(tensors_close(out->at(0), in, 0, 0));
  }
}

}  // namespace
}  // namespace kiln::test
