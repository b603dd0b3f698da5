// Slice, Gather, Expand, Tile and Pad (element moves by size) against the CPU reference: the
// results must be bit-exact.
#include "tactic_test_util.hpp"

namespace kiln::test {
namespace {

Tensor ints(std::vector<int64_t> v) {
  const int64_t n = static_cast<int64_t>(v.size());
  return Tensor::from_vector<int64_t>({n}, v);
}

OpCall slice_call(DType t, Dims x, std::vector<int64_t> starts, std::vector<int64_t> ends, std::vector<int64_t> axes,
                  std::vector<int64_t> steps) {
  OpCall call{.op_type = "Slice", .inputs = {random_tensor(t, std::move(x), 1, -100, 100), ints(starts), ints(ends)},
              .constant_inputs = {false, true, true, true, true}};
  call.inputs.push_back(axes.empty() ? Tensor() : ints(axes));
  call.inputs.push_back(steps.empty() ? Tensor() : ints(steps));
  return call;
}

TEST(CudaSlice, StepsNegativeAxesClampingAndDefaults) {
  KILN_REQUIRE_GPU();
  EXPECT_TRUE(matches_cpu(slice_call(DType::kFloat32, {5, 6, 7}, {1, 0}, {4, 5}, {}, {}), 0.0));
  EXPECT_TRUE(matches_cpu(slice_call(DType::kFloat32, {5, 6, 7}, {-5, 1}, {INT64_MAX, -1}, {-1, 1}, {2, 3}), 0.0));
  EXPECT_TRUE(matches_cpu(slice_call(DType::kFloat16, {5, 6, 7}, {-1}, {INT64_MIN}, {0}, {-2}), 0.0));  // reversed
  EXPECT_TRUE(matches_cpu(slice_call(DType::kInt64, {4, 9}, {100, -100}, {-100, 100}, {0, 1}, {-1, 4}), 0.0));
  EXPECT_TRUE(matches_cpu(slice_call(DType::kUInt8, {2, 3, 4, 5}, {1}, {3}, {2}, {}), 0.0));
}

TEST(CudaGather, AxesIndexTypesAndNegativeIndices) {
  KILN_REQUIRE_GPU();
  Tensor idx64 = Tensor::from_vector<int64_t>({2, 3}, {0, -1, 2, 3, -4, 1});
  OpCall a0{.op_type = "Gather", .inputs = {random_tensor(DType::kFloat32, {4, 5}, 1), idx64}};
  EXPECT_TRUE(matches_cpu(a0, 0.0));
  OpCall a1{.op_type = "Gather", .inputs = {random_tensor(DType::kBFloat16, {3, 4, 6}, 2), idx64}};
  a1.attrs.set("axis", int64_t{1});
  EXPECT_TRUE(matches_cpu(a1, 0.0));
  Tensor idx32 = Tensor::from_vector<int32_t>({4}, {5, 0, -6, 2});
  OpCall last{.op_type = "Gather", .inputs = {random_tensor(DType::kInt64, {2, 3, 6}, 3, -50, 50), idx32}};
  last.attrs.set("axis", int64_t{-1});
  EXPECT_TRUE(matches_cpu(last, 0.0));
  // A scalar index drops the axis; a constant table gathered by runtime ids (an embedding).
  OpCall scalar{.op_type = "Gather", .inputs = {random_tensor(DType::kFloat32, {3, 4}, 4), Tensor::scalar<int64_t>(2)}};
  scalar.attrs.set("axis", int64_t{1});
  EXPECT_TRUE(matches_cpu(scalar, 0.0));
  OpCall embed{.op_type = "Gather",
               .inputs = {random_tensor(DType::kFloat16, {10, 8}, 5), Tensor::from_vector<int64_t>({2, 2}, {9, 0, 3, 3})},
               .constant_inputs = {true, false}};
  EXPECT_TRUE(matches_cpu(embed, 0.0));
}

TEST(CudaExpandTile, BroadcastAndRepeat) {
  KILN_REQUIRE_GPU();
  OpCall expand{.op_type = "Expand", .inputs = {random_tensor(DType::kFloat32, {3, 1}, 1), ints({2, 3, 4})},
                .constant_inputs = {false, true}};
  EXPECT_TRUE(matches_cpu(expand, 0.0));
  OpCall same{.op_type = "Expand", .inputs = {random_tensor(DType::kInt8, {1, 5}, 2, -100, 100), ints({4, 1})},
              .constant_inputs = {false, true}};
  EXPECT_TRUE(matches_cpu(same, 0.0));
  OpCall tile{.op_type = "Tile", .inputs = {random_tensor(DType::kFloat16, {2, 3, 2}, 3), ints({2, 1, 3})},
              .constant_inputs = {false, true}};
  EXPECT_TRUE(matches_cpu(tile, 0.0));
}

OpCall pad_call(const char* mode, DType t, Dims x, std::vector<int64_t> pads) {
  OpCall call{.op_type = "Pad", .inputs = {random_tensor(t, std::move(x), 1, -100, 100), ints(pads)},
              .constant_inputs = {false, true, true, true}};
  call.attrs.set("mode", std::string(mode));
  return call;
}

TEST(CudaPad, ModesAndNegativePads) {
  KILN_REQUIRE_GPU();
  for (const char* mode : {"constant", "reflect", "edge", "wrap"}) {
    EXPECT_TRUE(matches_cpu(pad_call(mode, DType::kFloat32, {2, 3, 5, 6}, {0, 0, 2, 3, 0, 0, 3, 2}), 0.0)) << mode;
    EXPECT_TRUE(matches_cpu(pad_call(mode, DType::kInt64, {4, 5}, {-1, 2, 2, -2}), 0.0)) << mode;  // crop + pad
  }
}

TEST(CudaPad, ConstantValueAndAxes) {
  KILN_REQUIRE_GPU();
  auto call = pad_call("constant", DType::kFloat16, {2, 3, 4}, {1, 2, 3, 0});
  call.inputs.push_back(Tensor::scalar<Half>(Half(2.5f)));
  call.inputs.push_back(ints({0, -1}));  // axes: pads apply to dims 0 and 2
  EXPECT_TRUE(matches_cpu(call, 0.0));
  call.constant_inputs = {false, true, false, true};  // a fill value fed at run time
  EXPECT_TRUE(matches_cpu(call, 0.0));
}

}  // namespace
}  // namespace kiln::test
