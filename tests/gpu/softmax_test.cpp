// CUDA Softmax/LogSoftmax/Hardmax against the CPU reference: every kernel variant (warp per row,
// block per row, large rows, non-last axis) and dtype.
#include "gpu_test_util.hpp"

namespace kiln::test {
namespace {

double tolerance(DType t) { return t == DType::kFloat32 ? 1e-5 : t == DType::kFloat16 ? 5e-3 : 2e-2; }

struct SoftmaxShape {
  Dims dims;
  int64_t axis;
};
const SoftmaxShape kShapes[] = {
    {{8, 10}, -1},         // short rows: warp per row
    {{2, 3, 7, 128}, -1},  // attention rows (BERT s128): registers, 16-byte vectors
    {{2, 3, 5, 197}, 3},   // attention rows (ViT): registers, scalar loads
    {{3, 4, 1024}, -1},    // the longest row kept in registers
    {{3, 5, 1000}, 2},     // warp per row, long
    {{4, 3000}, 1},        // block of 256 per row
    {{2, 20000}, -1},      // block of 1024 per row
    {{2, 7, 5, 3}, 1},     // axis in the middle: a thread per column
    {{6, 33}, 0},          // first axis
    {{2, 3, 4}, -2},       // negative, not last
    {{1}, 0},
};

class CudaSoftmax : public ::testing::TestWithParam<const char*> {};

TEST_P(CudaSoftmax, ShapesAxesDtypes) {
  KILN_REQUIRE_GPU();
  for (DType t : {DType::kFloat32, DType::kFloat16, DType::kBFloat16})
    for (const auto& s : kShapes) {
      SCOPED_TRACE(std::string(dtype_name(t)) + " " + dims_to_string(s.dims) + " axis " + std::to_string(s.axis));
      Attributes a;
      a.set("axis", s.axis);
      // Large magnitudes: the max subtraction must keep exp finite.
      OpCall call{.op_type = GetParam(), .inputs = {random_tensor(t, s.dims, 5, -30, 30)}, .attrs = a};
      EXPECT_TRUE(matches_cpu(call, tolerance(t)));
    }
}

INSTANTIATE_TEST_SUITE_P(All, CudaSoftmax, ::testing::Values("Softmax", "LogSoftmax", "Hardmax"),
                         [](const auto& info) { return std::string(info.param); });

TEST(CudaSoftmax, DefaultAxisIsLast) {
  KILN_REQUIRE_GPU();
  EXPECT_TRUE(matches_cpu(OpCall{.op_type = "Softmax", .inputs = {random_tensor(DType::kFloat32, {4, 6, 50})}}, 1e-5));
}

TEST(CudaSoftmax, HardmaxTiesTakeTheFirst) {
  KILN_REQUIRE_GPU();
  Tensor x = Tensor::from_vector<float>({2, 4}, {1, 3, 3, 0, -1, -1, -1, -1});
  Attributes a;
  a.set("axis", int64_t{1});
  EXPECT_TRUE(matches_cpu(OpCall{.op_type = "Hardmax", .inputs = {x}, .attrs = a}, 0.0));
  a.set("axis", int64_t{0});
  EXPECT_TRUE(matches_cpu(OpCall{.op_type = "Hardmax", .inputs = {x}, .attrs = a}, 0.0));
}

}  // namespace
}  // namespace kiln::test
