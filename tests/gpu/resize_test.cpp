// Resize (nearest, linear, cubic; the coordinate modes PyTorch exports) against the CPU reference.
#include "tactic_test_util.hpp"

namespace kiln::test {
namespace {

OpCall resize_call(DType t, Dims x, const char* mode, const char* coord, std::vector<float> scales,
                   std::vector<int64_t> sizes = {}) {
  OpCall call{.op_type = "Resize", .inputs = {random_tensor(t, std::move(x), 1), Tensor()},
              .constant_inputs = {false, true, true, true}};
  const int64_t n = static_cast<int64_t>(scales.empty() ? sizes.size() : scales.size());
  call.inputs.push_back(scales.empty() ? Tensor() : Tensor::from_vector<float>({n}, scales));
  if (!sizes.empty()) call.inputs.push_back(Tensor::from_vector<int64_t>({n}, sizes));
  call.attrs.set("mode", std::string(mode));
  call.attrs.set("coordinate_transformation_mode", std::string(coord));
  return call;
}

TEST(CudaResize, NearestUpAndDownEveryNearestMode) {
  KILN_REQUIRE_GPU();
  for (const char* nm : {"round_prefer_floor", "round_prefer_ceil", "floor", "ceil"}) {
    auto up = resize_call(DType::kFloat32, {1, 2, 5, 6}, "nearest", "asymmetric", {1, 1, 2, 2});
    up.attrs.set("nearest_mode", std::string(nm));
    EXPECT_TRUE(matches_cpu(up, 0.0)) << nm;
    auto down = resize_call(DType::kFloat16, {1, 2, 9, 7}, "nearest", "half_pixel", {}, {1, 2, 4, 3});
    down.attrs.set("nearest_mode", std::string(nm));
    EXPECT_TRUE(matches_cpu(down, 0.0)) << nm;
  }
  auto i8 = resize_call(DType::kInt8, {1, 1, 3, 3}, "nearest", "align_corners", {1, 1, 2.5f, 1.5f});
  EXPECT_TRUE(matches_cpu(i8, 0.0));
}

TEST(CudaResize, LinearCoordinateModes) {
  KILN_REQUIRE_GPU();
  for (const char* coord : {"half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric", "half_pixel_symmetric"}) {
    auto up = resize_call(DType::kFloat32, {2, 3, 7, 5}, "linear", coord, {1, 1, 2, 3});
    EXPECT_TRUE(matches_cpu(up, 1e-6)) << coord;
    auto sizes = resize_call(DType::kFloat32, {1, 2, 10, 9}, "linear", coord, {}, {1, 2, 4, 1});
    EXPECT_TRUE(matches_cpu(sizes, 1e-6)) << coord;
  }
}

TEST(CudaResize, CubicExcludeOutsideAxesAndHalf) {
  KILN_REQUIRE_GPU();
  auto cubic = resize_call(DType::kFloat32, {1, 2, 6, 8}, "cubic", "half_pixel", {1, 1, 1.5f, 0.75f});
  EXPECT_TRUE(matches_cpu(cubic, 1e-6));
  cubic.attrs.set("exclude_outside", int64_t{1});
  cubic.attrs.set("cubic_coeff_a", -0.5f);
  EXPECT_TRUE(matches_cpu(cubic, 1e-6));
  auto axes = resize_call(DType::kFloat32, {2, 3, 4, 5}, "linear", "align_corners", {}, {8, 9});
  axes.attrs.set("axes", Dims{-2, -1});
  EXPECT_TRUE(matches_cpu(axes, 1e-6));
  auto half = resize_call(DType::kFloat16, {1, 4, 8, 8}, "linear", "pytorch_half_pixel", {1, 1, 2, 2});
  EXPECT_TRUE(matches_cpu(half, 2e-3));
  auto bf = resize_call(DType::kBFloat16, {1, 4, 8, 8}, "linear", "half_pixel", {1, 1, 0.5f, 0.5f});
  EXPECT_TRUE(matches_cpu(bf, 2e-2));
}

TEST(CudaResize, AntialiasIsLeftUnsupported) {
  KILN_REQUIRE_GPU();
  auto call = resize_call(DType::kFloat32, {1, 1, 8, 8}, "linear", "half_pixel", {1, 1, 0.5f, 0.5f});
  call.attrs.set("antialias", int64_t{1});
  EXPECT_FALSE(cuda_builds(call));
}

}  // namespace
}  // namespace kiln::test
