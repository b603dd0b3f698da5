// CUDA LayerNormalization against the CPU reference: warp/block per row, axes, Scale/B shapes,
// optional outputs, dtypes.
#include "gpu_test_util.hpp"

namespace kiln::test {
namespace {

double tolerance(DType t) { return t == DType::kFloat32 ? 1e-5 : t == DType::kFloat16 ? 5e-3 : 2e-2; }

struct LnCase {
  Dims x;
  int64_t axis;
  Dims param;
};
const LnCase kCases[] = {
    {{4, 16, 64}, -1, {64}},        // warp per row
    {{2, 5, 768}, 2, {768}},        // warp per row, BERT width
    {{3, 1000}, -1, {1000}},        // warp per row in registers, 16-byte vectors, longest
    {{2, 1023}, -1, {1023}},        // warp per row in registers, scalar
    {{3, 4096}, -1, {4096}},        // block of 256
    {{2, 10000}, 1, {10000}},       // block of 1024
    {{2, 3, 8, 5}, 1, {3, 8, 5}},   // several normalized dims
    {{2, 3, 8, 5}, -2, {1, 8, 5}},  // a leading 1 in Scale
    {{6, 7}, 0, {6, 7}},            // everything normalized: one row
};

TEST(CudaLayerNorm, ShapesAxesDtypes) {
  KILN_REQUIRE_GPU();
  for (DType t : {DType::kFloat32, DType::kFloat16, DType::kBFloat16})
    for (const auto& c : kCases)
      for (bool with_bias : {true, false}) {
        SCOPED_TRACE(std::string(dtype_name(t)) + " " + dims_to_string(c.x) + " axis " + std::to_string(c.axis) +
                     (with_bias ? " with B" : " no B"));
        Attributes a;
        a.set("axis", c.axis);
        a.set("epsilon", 1e-3f);
        // A large mean: the variance must not cancel.
        OpCall call{.op_type = "LayerNormalization",
                    .inputs = {random_tensor(t, c.x, 1, 3, 7), random_tensor(t, c.param, 2, 0.5, 1.5)},
                    .constant_inputs = {false, true, true},
                    .attrs = a};
        if (with_bias) call.inputs.push_back(random_tensor(t, c.param, 3));
        EXPECT_TRUE(matches_cpu(call, tolerance(t)));
      }
}

TEST(CudaLayerNorm, MeanAndInvStdDevOutputs) {
  KILN_REQUIRE_GPU();
  for (DType t : {DType::kFloat32, DType::kFloat16}) {
    OpCall call{.op_type = "LayerNormalization",
                .inputs = {random_tensor(t, {3, 4, 50}), random_tensor(t, {50}, 2), random_tensor(t, {50}, 3)},
                .num_outputs = 3};
    EXPECT_TRUE(matches_cpu(call, t == DType::kFloat32 ? 1e-5 : 5e-3));
  }
}

TEST(CudaLayerNorm, RuntimeScaleAndBias) {
  KILN_REQUIRE_GPU();
  OpCall call{.op_type = "LayerNormalization",
              .inputs = {random_tensor(DType::kFloat32, {5, 96}), random_tensor(DType::kFloat32, {96}, 2),
                         random_tensor(DType::kFloat32, {96}, 3)}};
  EXPECT_TRUE(matches_cpu(call, 1e-5));
}

}  // namespace
}  // namespace kiln::test
