// Expand and Tile.
#include "tensorops_test_util.hpp"

namespace kiln::test {
namespace {

TEST(Expand, BidirectionalBroadcast) {
  for (DType t : {DType::kFloat32, DType::kFloat16, DType::kInt64, DType::kBool}) {
    Tensor x = random_tensor(t, {3, 1}, 1);
    Tensor y = run1({"Expand", {x, i64v({2, 1, 4})}});
    EXPECT_TRUE(tensors_equal(y, map_tensor(x, {2, 3, 4}, [](const std::vector<int64_t>& o) {
                                return std::optional(std::vector<int64_t>{o[1], 0});
                              }))) << dtype_name(t);
  }
  Tensor x = random_tensor(DType::kFloat32, {2, 3}, 2);
  EXPECT_TRUE(tensors_equal(run1({"Expand", {x, i64v({1, 1})}}), x));  // shape smaller than the input
  EXPECT_EQ(run1({"Expand", {x, i64v({0, 1, 3})}}).dims(), (Dims{0, 2, 3}));
  expect_error({"Expand", {x, i64v({4, 3})}}, {"cannot expand", "[2,3]"});
  auto r = infer_op("Expand", {ttype(DType::kFloat32, {Dim::symbolic("n"), 1}), i64v({1, 5})});
  EXPECT_EQ(r.outputs[0].to_string(), "float32[n,5]");
  r = infer_op("Expand", {ttype(DType::kFloat32, {3, 1}), ttype(DType::kInt64, {3})});
  EXPECT_EQ(r.outputs[0].to_string(), "float32[?,3,?]");
}

TEST(Tile, RepeatsPerAxis) {
  Tensor x = random_tensor(DType::kInt64, {2, 3}, 3, -9, 9);
  Tensor y = run1({"Tile", {x, i64v({3, 2})}});
  EXPECT_TRUE(tensors_equal(y, map_tensor(x, {6, 6}, [](const std::vector<int64_t>& o) {
                              return std::optional(std::vector<int64_t>{o[0] % 2, o[1] % 3});
                            })));
  EXPECT_EQ(run1({"Tile", {x, i64v({0, 2})}}).dims(), (Dims{0, 6}));
  Tensor h = random_tensor(DType::kFloat16, {2, 1, 2}, 4);
  EXPECT_TRUE(tensors_equal(run1({"Tile", {h, i64v({1, 3, 1})}}), map_tensor(h, {2, 3, 2}, [](const std::vector<int64_t>& o) {
                              return std::optional(std::vector<int64_t>{o[0], 0, o[2]});
                            })));
  expect_error({"Tile", {x, i64v({2})}}, {"repeats has 1 values"});
  expect_error({"Tile", {x, i64v({2, -1})}}, {"negative"});
}

}  // namespace
}  // namespace kiln::test
