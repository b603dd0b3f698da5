// Reshape, Flatten, Squeeze, Unsqueeze: data is unchanged, dims follow the spec.
#include "tensorops_test_util.hpp"

namespace kiln::test {
namespace {

Tensor reshaped_copy(const Tensor& t, Dims d) { return t.clone().reshaped(std::move(d)); }

TEST(Reshape, ZeroCopiesDimAndMinusOneInfers) {
  Tensor x = random_tensor(DType::kFloat32, {2, 3, 4}, 1);
  EXPECT_TRUE(tensors_equal(run1({"Reshape", {x, i64v({0, -1})}}), reshaped_copy(x, {2, 12})));
  EXPECT_TRUE(tensors_equal(run1({"Reshape", {x, i64v({-1, 2, 2})}}), reshaped_copy(x, {6, 2, 2})));
  EXPECT_TRUE(tensors_equal(run1({"Reshape", {x, i64v({4, 0, 2})}, {false, true}}), reshaped_copy(x, {4, 3, 2})));
}

TEST(Reshape, AllowZeroMakesAnEmptyDim) {
  Tensor x(DType::kInt64, {0, 3});
  Attributes a;
  a.set("allowzero", int64_t{1});
  Tensor y = run1({"Reshape", {x, i64v({3, 0})}, {}, a});
  EXPECT_EQ(y.dims(), (Dims{3, 0}));
  // allowzero=0: the 0 copies input dim 0 (which is 0 here as well), -1 cannot be inferred from 0 elements.
  expect_error({"Reshape", {x, i64v({0, -1})}}, {"cannot reshape"});
  expect_error({"Reshape", {x, i64v({0, -1})}, {}, a}, {"both -1 and 0"});
}

TEST(Reshape, Float16AndInt64Data) {
  Tensor h = random_tensor(DType::kFloat16, {4, 5}, 2);
  EXPECT_TRUE(tensors_equal(run1({"Reshape", {h, i64v({5, 2, 2})}}), reshaped_copy(h, {5, 2, 2})));
  Tensor l = random_tensor(DType::kInt64, {4, 5}, 3, -100, 100);
  EXPECT_TRUE(tensors_equal(run1({"Reshape", {l, i64v({20})}}), reshaped_copy(l, {20})));
}

TEST(Reshape, IncompatibleSizeNamesNodeAndBothShapes) {
  Tensor x = random_tensor(DType::kFloat32, {2, 3}, 4);
  expect_error({"Reshape", {x, i64v({4, 2})}}, {"[2,3]", "[4,2]"});
  expect_error({"Reshape", {x, i64v({4, -1})}}, {"[2,3]", "[4,?]"});
  expect_error({"Reshape", {x, i64v({-1, -1})}}, {"more than one -1"});
  expect_error({"Reshape", {x, i64v({2, -2, 3})}}, {"invalid value -2"});
}

TEST(Reshape, SymbolicBatchAtImport) {
  // [batch,3,4] with a constant shape [0,-1]: the batch symbol is kept and 12 is inferred.
  auto r = infer_op("Reshape", {ttype(DType::kFloat32, {Dim::symbolic("batch"), 3, 4}), i64v({0, -1})});
  ASSERT_TRUE(r.status.ok()) << r.status.message();
  EXPECT_EQ(r.outputs[0].to_string(), "float32[batch,12]");
  // [batch,12] -> [-1,3,4]: -1 is the batch symbol.
  r = infer_op("Reshape", {ttype(DType::kFloat32, {Dim::symbolic("batch"), 12}), i64v({-1, 3, 4})});
  EXPECT_EQ(r.outputs[0].to_string(), "float32[batch,3,4]");
  // A computed shape of static length 3: rank known, dims not.
  r = infer_op("Reshape", {ttype(DType::kFloat32, {Dim::symbolic("batch"), 12}), ttype(DType::kInt64, {3})});
  EXPECT_EQ(r.outputs[0].to_string(), "float32[?,?,?]");
  r = infer_op("Reshape", {ttype(DType::kFloat32, {Dim::symbolic("b"), 12}), i64v({5, -1})});
  EXPECT_EQ(r.outputs[0].to_string(), "float32[5,?]");
}

TEST(Flatten, AxisRangeIncludingRankAndNegative) {
  Tensor x = random_tensor(DType::kFloat32, {2, 3, 4, 5}, 5);
  const std::vector<std::pair<int64_t, Dims>> cases = {
      {0, {1, 120}}, {1, {2, 60}}, {2, {6, 20}}, {4, {120, 1}}, {-1, {24, 5}}, {-4, {1, 120}}};
  for (const auto& [axis, dims] : cases) {
    Attributes a;
    a.set("axis", axis);
    EXPECT_TRUE(tensors_equal(run1({"Flatten", {x}, {}, a}), reshaped_copy(x, dims))) << axis;
  }
  Attributes bad;
  bad.set("axis", int64_t{5});
  expect_error({"Flatten", {x}, {}, bad}, {"axis 5"});
  auto r = infer_op("Flatten", {ttype(DType::kFloat32, {Dim::symbolic("n"), 3, 4})});
  EXPECT_EQ(r.outputs[0].to_string(), "float32[n,12]");
}

TEST(Squeeze, AxesInputNegativeAndDefault) {
  Tensor x = random_tensor(DType::kInt64, {1, 3, 1, 2}, 6, -50, 50);
  EXPECT_TRUE(tensors_equal(run1({"Squeeze", {x}}), reshaped_copy(x, {3, 2})));
  EXPECT_TRUE(tensors_equal(run1({"Squeeze", {x, i64v({-2})}}), reshaped_copy(x, {1, 3, 2})));
  EXPECT_TRUE(tensors_equal(run1({"Squeeze", {x, i64v({0, 2})}, {false, true}}), reshaped_copy(x, {3, 2})));
  EXPECT_TRUE(tensors_equal(run1({"Squeeze", {x, i64({0}, {})}}), reshaped_copy(x, {3, 2})));  // empty = all
  expect_error({"Squeeze", {x, i64v({1})}}, {"axis 1", "not 1"});
  expect_error({"Squeeze", {x, i64v({4})}}, {"out of range"});
  expect_error({"Squeeze", {x, i64v({0, -4})}}, {"repeat"});
  auto r = infer_op("Squeeze", {ttype(DType::kFloat32, {Dim::symbolic("n"), 1, 4}), i64v({1})});
  EXPECT_EQ(r.outputs[0].to_string(), "float32[n,4]");
}

TEST(Unsqueeze, UnsortedAndNegativeAxes) {
  Tensor x = random_tensor(DType::kFloat16, {3, 4}, 7);
  EXPECT_TRUE(tensors_equal(run1({"Unsqueeze", {x, i64v({3, 0})}}), reshaped_copy(x, {1, 3, 4, 1})));
  EXPECT_TRUE(tensors_equal(run1({"Unsqueeze", {x, i64v({-1})}}), reshaped_copy(x, {3, 4, 1})));
  EXPECT_TRUE(tensors_equal(run1({"Unsqueeze", {Tensor::scalar<float>(2.f), i64v({0})}}),
                            Tensor::from_vector<float>({1}, {2.f})));
  expect_error({"Unsqueeze", {x, i64v({1, 1})}}, {"repeat"});
  expect_error({"Unsqueeze", {x, i64v({3, 4})}}, {"out of range"});
}

TEST(Reshape, EmptyTensorsKeepTheirShape) {
  Tensor x(DType::kFloat32, {2, 0, 3});
  EXPECT_EQ(run1({"Reshape", {x, i64v({0, 3, -1})}}).dims(), (Dims{2, 3, 0}));
  EXPECT_EQ(run1({"Flatten", {x}}).dims(), (Dims{2, 0}));
  EXPECT_EQ(run1({"Unsqueeze", {x, i64v({1})}}).dims(), (Dims{2, 1, 0, 3}));
}

TEST(Reshape, FoldsShapeArithmetic) {
  // A small integer constant reshaped at import is itself a constant.
  auto r = infer_op("Unsqueeze", {Tensor::scalar<int64_t>(7), i64v({0})});
  ASSERT_TRUE(r.values[0].has_value());
  EXPECT_TRUE(tensors_equal(*r.values[0], i64v({7})));
}

}  // namespace
}  // namespace kiln::test
