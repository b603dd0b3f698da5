// BatchNormalization (inference) and InstanceNormalization against the CPU reference.
#include "tactic_test_util.hpp"

namespace kiln::test {
namespace {

OpCall batch_norm_call(DType t, DType param_t, Dims x, bool constant_params) {
  const int64_t c = x[1];
  OpCall call{.op_type = "BatchNormalization",
              .inputs = {random_tensor(t, x, 1), random_tensor(param_t, {c}, 2), random_tensor(param_t, {c}, 3),
                         random_tensor(param_t, {c}, 4), random_tensor(param_t, {c}, 5, 0.5, 2.0)}};
  call.constant_inputs = {false, constant_params, constant_params, constant_params, constant_params};
  call.attrs.set("epsilon", 1e-3f);
  return call;
}

TEST(CudaBatchNorm, ConstantStatisticsFoldedAtCreate) {
  KILN_REQUIRE_GPU();
  EXPECT_TRUE(matches_cpu(batch_norm_call(DType::kFloat32, DType::kFloat32, {2, 16, 9, 11}, true), 1e-5));
}

TEST(CudaBatchNorm, RuntimeStatisticsComputedOnDevice) {
  KILN_REQUIRE_GPU();
  EXPECT_TRUE(matches_cpu(batch_norm_call(DType::kFloat32, DType::kFloat32, {2, 16, 9, 11}, false), 1e-5));
}

TEST(CudaBatchNorm, RanksDtypesAndMixedParameterTypes) {
  KILN_REQUIRE_GPU();
  EXPECT_TRUE(matches_cpu(batch_norm_call(DType::kFloat32, DType::kFloat32, {5, 7}, true), 1e-5));
  EXPECT_TRUE(matches_cpu(batch_norm_call(DType::kFloat32, DType::kFloat32, {1, 3, 4, 5, 6}, false), 1e-5));
  EXPECT_TRUE(matches_cpu(batch_norm_call(DType::kFloat16, DType::kFloat16, {2, 8, 6, 6}, true), 2e-3));
  EXPECT_TRUE(matches_cpu(batch_norm_call(DType::kFloat16, DType::kFloat32, {2, 8, 6, 6}, false), 2e-3));
  EXPECT_TRUE(matches_cpu(batch_norm_call(DType::kBFloat16, DType::kBFloat16, {2, 8, 6, 6}, false), 2e-2));
}

TEST(CudaBatchNorm, TrainingModeIsLeftUnsupported) {
  KILN_REQUIRE_GPU();
  auto call = batch_norm_call(DType::kFloat32, DType::kFloat32, {2, 4, 3, 3}, true);
  call.attrs.set("training_mode", int64_t{1});
  EXPECT_FALSE(cuda_builds(call));
}

TEST(CudaInstanceNorm, Float32AndFloat16) {
  KILN_REQUIRE_GPU();
  OpCall call{.op_type = "InstanceNormalization",
              .inputs = {random_tensor(DType::kFloat32, {2, 6, 13, 17}, 1, 1.0, 3.0),
                         random_tensor(DType::kFloat32, {6}, 2), random_tensor(DType::kFloat32, {6}, 3)},
              .constant_inputs = {false, true, true}};
  EXPECT_TRUE(matches_cpu(call, 1e-5));
  call.inputs[0] = random_tensor(DType::kFloat32, {1, 6, 5000}, 4);  // longer rows than a block
  EXPECT_TRUE(matches_cpu(call, 1e-5));
  for (Tensor& t : call.inputs) t = t.cast(DType::kFloat16);
  call.inputs[0] = random_tensor(DType::kFloat16, {2, 6, 40}, 5);
  EXPECT_TRUE(matches_cpu(call, 3e-3));
}

}  // namespace
}  // namespace kiln::test
