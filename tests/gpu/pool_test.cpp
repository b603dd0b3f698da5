// MaxPool, AveragePool, LpPool and the global pools against the CPU reference; both tactics
// (cuDNN and the direct kernel) where cuDNN applies.
#include "tactic_test_util.hpp"

namespace kiln::test {
namespace {

OpCall pool_call(const char* op, DType t, Dims x, std::initializer_list<std::pair<const char*, Dims>> ints,
                 int64_t ceil_mode = 0, int64_t count_include_pad = 0) {
  OpCall call{.op_type = op, .inputs = {random_tensor(t, std::move(x), 7)}};
  for (const auto& [name, v] : ints) call.attrs.set(name, v);
  if (ceil_mode) call.attrs.set("ceil_mode", ceil_mode);
  if (count_include_pad) call.attrs.set("count_include_pad", count_include_pad);
  return call;
}

TEST(CudaPool, MaxPoolBothTactics) {
  KILN_REQUIRE_GPU();
  auto call = pool_call("MaxPool", DType::kFloat32, {2, 8, 17, 18},
                        {{"kernel_shape", {3, 3}}, {"strides", {2, 2}}, {"pads", {1, 1, 1, 1}}});
  EXPECT_TRUE(all_tactics_match_cpu(call, 0.0, {}, 2));
}

TEST(CudaPool, AveragePoolBothTacticsWithAndWithoutPadCount) {
  KILN_REQUIRE_GPU();
  auto exclude = pool_call("AveragePool", DType::kFloat32, {2, 5, 13, 11},
                           {{"kernel_shape", {3, 2}}, {"strides", {2, 1}}, {"pads", {1, 1, 1, 1}}});
  EXPECT_TRUE(all_tactics_match_cpu(exclude, 1e-6, {}, 2));
  auto include = exclude;
  include.attrs.set("count_include_pad", int64_t{1});
  EXPECT_TRUE(all_tactics_match_cpu(include, 1e-6, {}, 2));
}

TEST(CudaPool, CeilModeAsymmetricPadsAndDilationUseTheDirectKernel) {
  KILN_REQUIRE_GPU();
  auto max = pool_call("MaxPool", DType::kFloat32, {1, 3, 16, 15},
                       {{"kernel_shape", {3, 3}}, {"strides", {2, 2}}, {"pads", {0, 1, 2, 0}}, {"dilations", {2, 1}}},
                       /*ceil_mode=*/1);
  EXPECT_TRUE(all_tactics_match_cpu(max, 0.0));
  auto avg = pool_call("AveragePool", DType::kFloat32, {1, 3, 16, 15},
                       {{"kernel_shape", {3, 3}}, {"strides", {2, 2}}, {"pads", {1, 1, 1, 1}}}, 1, 1);
  EXPECT_TRUE(all_tactics_match_cpu(avg, 1e-6));
}

TEST(CudaPool, MaxPoolIndicesBothStorageOrders) {
  KILN_REQUIRE_GPU();
  auto call = pool_call("MaxPool", DType::kFloat32, {2, 3, 9, 10}, {{"kernel_shape", {2, 3}}, {"strides", {2, 2}}});
  call.num_outputs = 2;
  EXPECT_TRUE(all_tactics_match_cpu(call, 0.0));
  call.attrs.set("storage_order", int64_t{1});
  EXPECT_TRUE(all_tactics_match_cpu(call, 0.0));
}

TEST(CudaPool, OneAndThreeDimensional) {
  KILN_REQUIRE_GPU();
  auto p1 = pool_call("AveragePool", DType::kFloat32, {2, 4, 31}, {{"kernel_shape", {4}}, {"strides", {3}}, {"pads", {1, 1}}});
  EXPECT_TRUE(all_tactics_match_cpu(p1, 1e-6));
  auto p3 = pool_call("MaxPool", DType::kFloat32, {1, 2, 7, 8, 9}, {{"kernel_shape", {2, 2, 2}}, {"strides", {2, 2, 2}}});
  EXPECT_TRUE(all_tactics_match_cpu(p3, 0.0));
}

TEST(CudaPool, HalfBFloat16AndInt8) {
  KILN_REQUIRE_GPU();
  auto h = pool_call("AveragePool", DType::kFloat16, {2, 8, 14, 14}, {{"kernel_shape", {2, 2}}, {"strides", {2, 2}}});
  EXPECT_TRUE(all_tactics_match_cpu(h, 2e-3));
  auto b = pool_call("MaxPool", DType::kBFloat16, {2, 8, 14, 14}, {{"kernel_shape", {3, 3}}, {"pads", {1, 1, 1, 1}}});
  EXPECT_TRUE(all_tactics_match_cpu(b, 0.0));
  OpCall i8{.op_type = "MaxPool", .inputs = {random_tensor(DType::kInt8, {1, 4, 9, 9}, 3, -100, 100)}};
  i8.attrs.set("kernel_shape", Dims{3, 3});
  i8.attrs.set("strides", Dims{2, 2});
  EXPECT_TRUE(all_tactics_match_cpu(i8, 0.0));
}

TEST(CudaPool, LpPool) {
  KILN_REQUIRE_GPU();
  auto call = pool_call("LpPool", DType::kFloat32, {1, 3, 10, 10}, {{"kernel_shape", {3, 3}}, {"pads", {1, 1, 1, 1}}});
  EXPECT_TRUE(matches_cpu(call, 1e-5));
  call.attrs.set("p", int64_t{3});
  EXPECT_TRUE(matches_cpu(call, 1e-5));
}

TEST(CudaGlobalPool, AverageAndMaxSmallAndLargePlanes) {
  KILN_REQUIRE_GPU();
  for (const char* op : {"GlobalAveragePool", "GlobalMaxPool"}) {
    // 7x7 planes: a warp per plane; 64x64 planes: a block per plane.
    OpCall small{.op_type = op, .inputs = {random_tensor(DType::kFloat32, {4, 96, 7, 7}, 5)}};
    EXPECT_TRUE(matches_cpu(small, 1e-6)) << op;
    OpCall large{.op_type = op, .inputs = {random_tensor(DType::kFloat32, {2, 3, 64, 64}, 6)}};
    EXPECT_TRUE(matches_cpu(large, 1e-6)) << op;
    OpCall half{.op_type = op, .inputs = {random_tensor(DType::kFloat16, {2, 32, 5, 9, 3}, 8)}};
    EXPECT_TRUE(matches_cpu(half, 2e-3)) << op;
    OpCall bf{.op_type = op, .inputs = {random_tensor(DType::kBFloat16, {2, 8, 33}, 9)}};
    EXPECT_TRUE(matches_cpu(bf, 1e-2)) << op;
  }
}

}  // namespace
}  // namespace kiln::test
