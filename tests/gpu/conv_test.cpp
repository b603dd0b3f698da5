// Conv and ConvTranspose on cuDNN against the CPU reference; every algorithm (tactic) cuDNN
// offers is run, not only the fastest.
#include "tactic_test_util.hpp"

namespace kiln::test {
namespace {

// Exact float32 (no TF32); Winograd/FFT algorithms round differently from a direct sum, hence
// a little more than 1e-5.
constexpr double kFp32Tol = 2e-5;

// These tests check the Conv/ConvTranspose layer itself: the CUDA backend's conv-fusion pass
// (every Conv becomes a kiln.FusedConv, fused_conv_test.cpp) and NHWC layout pass (a float16
// ConvTranspose becomes kiln.NHWC, nhwc_op_test.cpp) are off.
BuildOptions unfused() {
  BuildOptions o;
  o.disabled_passes = {"conv-fusion", "nhwc-layout"};
  return o;
}

BuildOptions no_tf32() {
  BuildOptions o = unfused();
  o.tf32 = false;
  return o;
}

OpCall conv_call(DType t, Dims x, Dims w, Attributes attrs, bool bias, bool const_weights = true) {
  OpCall call{.op_type = "Conv", .inputs = {random_tensor(t, x, 1), random_tensor(t, w, 2, -1.0, 1.0)}};
  call.constant_inputs = {false, const_weights, const_weights};
  if (bias) call.inputs.push_back(random_tensor(t, {w[0]}, 3));
  call.attrs = std::move(attrs);
  return call;
}

Attributes attrs_of(std::initializer_list<std::pair<const char*, Dims>> ints, int64_t group = 1) {
  Attributes a;
  for (const auto& [name, v] : ints) a.set(name, v);
  if (group != 1) a.set("group", group);
  return a;
}

TEST(CudaConv, Conv2dPadded3x3AllAlgorithms) {
  KILN_REQUIRE_GPU();
  auto call = conv_call(DType::kFloat32, {2, 8, 17, 19}, {16, 8, 3, 3}, attrs_of({{"pads", {1, 1, 1, 1}}}), true);
  EXPECT_TRUE(all_tactics_match_cpu(call, kFp32Tol, no_tf32(), 2));
}

TEST(CudaConv, Conv2dTf32) {
  KILN_REQUIRE_GPU();
  auto call = conv_call(DType::kFloat32, {1, 32, 28, 28}, {64, 32, 3, 3}, attrs_of({{"pads", {1, 1, 1, 1}}}), true);
  EXPECT_TRUE(all_tactics_match_cpu(call, 2e-3, unfused()));
}

TEST(CudaConv, StridesDilationsNoBias) {
  KILN_REQUIRE_GPU();
  auto call = conv_call(DType::kFloat32, {2, 4, 23, 20}, {6, 4, 3, 5},
                        attrs_of({{"strides", {2, 3}}, {"dilations", {2, 1}}, {"pads", {2, 2, 2, 2}}}), false);
  EXPECT_TRUE(all_tactics_match_cpu(call, kFp32Tol, no_tf32()));
}

TEST(CudaConv, GroupedAndDepthwise) {
  KILN_REQUIRE_GPU();
  auto grouped = conv_call(DType::kFloat32, {2, 8, 12, 12}, {12, 4, 3, 3}, attrs_of({{"pads", {1, 1, 1, 1}}}, 2), true);
  EXPECT_TRUE(all_tactics_match_cpu(grouped, kFp32Tol, no_tf32()));
  auto depthwise = conv_call(DType::kFloat32, {2, 16, 15, 15}, {16, 1, 3, 3},
                             attrs_of({{"pads", {1, 1, 1, 1}}, {"strides", {2, 2}}}, 16), true);
  EXPECT_TRUE(all_tactics_match_cpu(depthwise, kFp32Tol, no_tf32()));
}

TEST(CudaConv, NonConstantWeights) {
  KILN_REQUIRE_GPU();
  auto call = conv_call(DType::kFloat32, {1, 3, 9, 9}, {5, 3, 3, 3}, {}, true, /*const_weights=*/false);
  EXPECT_TRUE(matches_cpu(call, kFp32Tol, no_tf32()));
}

TEST(CudaConv, OneAndThreeDimensional) {
  KILN_REQUIRE_GPU();
  auto c1 = conv_call(DType::kFloat32, {2, 6, 50}, {4, 6, 5}, attrs_of({{"pads", {2, 2}}, {"strides", {2}}}), true);
  EXPECT_TRUE(all_tactics_match_cpu(c1, kFp32Tol, no_tf32()));
  auto c3 = conv_call(DType::kFloat32, {1, 3, 6, 7, 8}, {4, 3, 3, 3, 3}, attrs_of({{"pads", {1, 1, 1, 1, 1, 1}}}), true);
  EXPECT_TRUE(all_tactics_match_cpu(c3, kFp32Tol, no_tf32()));
}

TEST(CudaConv, AutoPadSameWithOddKernel) {
  KILN_REQUIRE_GPU();
  Attributes a;
  a.set("auto_pad", std::string("SAME_UPPER"));
  auto call = conv_call(DType::kFloat32, {1, 4, 10, 10}, {4, 4, 3, 3}, a, true);
  EXPECT_TRUE(matches_cpu(call, kFp32Tol, no_tf32()));
}

TEST(CudaConv, Float16AndBFloat16) {
  KILN_REQUIRE_GPU();
  auto h = conv_call(DType::kFloat16, {2, 16, 14, 14}, {32, 16, 3, 3}, attrs_of({{"pads", {1, 1, 1, 1}}}), true);
  EXPECT_TRUE(all_tactics_match_cpu(h, 5e-3, unfused()));
  auto b = conv_call(DType::kBFloat16, {2, 16, 14, 14}, {32, 16, 3, 3}, attrs_of({{"pads", {1, 1, 1, 1}}}), true);
  EXPECT_TRUE(all_tactics_match_cpu(b, 2e-2, unfused()));
}

TEST(CudaConv, UnequalPadsPrePadTheInput) {
  KILN_REQUIRE_GPU();
  // pads (0, 1): cuDNN's symmetric padding cannot express them; X is zero-padded first.
  auto explicit_pads = conv_call(DType::kFloat32, {1, 2, 9, 9}, {2, 2, 2, 2}, attrs_of({{"pads", {0, 0, 1, 1}}}), true);
  EXPECT_TRUE(all_tactics_match_cpu(explicit_pads, kFp32Tol, no_tf32()));
  Attributes same;  // TF-style SAME, stride 2 on an even size: one more pixel at the end
  same.set("auto_pad", std::string("SAME_UPPER"));
  same.set("strides", Dims{2, 2});
  auto tf = conv_call(DType::kFloat16, {2, 8, 16, 16}, {8, 8, 3, 3}, same, true);
  EXPECT_TRUE(all_tactics_match_cpu(tf, 5e-3, unfused()));
  auto one_d = conv_call(DType::kFloat32, {1, 3, 20}, {2, 3, 4}, attrs_of({{"pads", {2, 1}}}), false);
  EXPECT_TRUE(all_tactics_match_cpu(one_d, kFp32Tol, no_tf32()));
}

OpCall conv_transpose_call(DType t, Dims x, Dims w, Attributes attrs, bool bias) {
  OpCall call{.op_type = "ConvTranspose", .inputs = {random_tensor(t, x, 1), random_tensor(t, w, 2, -1.0, 1.0)}};
  call.constant_inputs = {false, true, true};
  if (bias) call.inputs.push_back(random_tensor(t, {w[1] * attrs.i("group", 1)}, 3));
  call.attrs = std::move(attrs);
  return call;
}

TEST(CudaConvTranspose, StrideTwoOutputPaddingAllAlgorithms) {
  KILN_REQUIRE_GPU();
  auto call = conv_transpose_call(DType::kFloat32, {2, 8, 7, 9}, {8, 6, 3, 3},
                                  attrs_of({{"strides", {2, 2}}, {"pads", {1, 1, 1, 1}}, {"output_padding", {1, 1}}}),
                                  true);
  EXPECT_TRUE(all_tactics_match_cpu(call, kFp32Tol, no_tf32()));
}

TEST(CudaConvTranspose, GroupsAndUnequalPadsThatFit) {
  KILN_REQUIRE_GPU();
  // W (C=4, M/group=3): 6 output channels in 2 groups; bias per output channel.
  OpCall call{.op_type = "ConvTranspose",
              .inputs = {random_tensor(DType::kFloat32, {1, 4, 6, 6}, 1), random_tensor(DType::kFloat32, {4, 3, 4, 4}, 2),
                         random_tensor(DType::kFloat32, {6}, 3)},
              .constant_inputs = {false, true, true}};
  // pads begin 2, end 1 with stride 2: cuDNN's padding 2 with one row of implicit output padding.
  call.attrs = attrs_of({{"strides", {2, 2}}, {"pads", {2, 2, 1, 1}}}, 2);
  EXPECT_TRUE(all_tactics_match_cpu(call, kFp32Tol, no_tf32()));
}

TEST(CudaConvTranspose, PadsCuDnnCannotExpressAreUnsupported) {
  KILN_REQUIRE_GPU();
  // End padding 2 more than the begin: not an implicit output padding cuDNN can give.
  auto call = conv_transpose_call(DType::kFloat32, {1, 2, 6, 6}, {2, 2, 3, 3}, attrs_of({{"pads", {0, 0, 2, 2}}}), false);
  EXPECT_FALSE(cuda_builds(call));
}

TEST(CudaConvTranspose, Float16) {
  KILN_REQUIRE_GPU();
  auto call = conv_transpose_call(DType::kFloat16, {1, 16, 8, 8}, {16, 8, 2, 2}, attrs_of({{"strides", {2, 2}}}), true);
  EXPECT_TRUE(all_tactics_match_cpu(call, 5e-3, unfused()));
}

}  // namespace
}  // namespace kiln::test
