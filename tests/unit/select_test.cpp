// Compress, NonZero, Unique: data-dependent output shapes.
#include "tensorops_test_util.hpp"

namespace kiln::test {
namespace {

Tensor bools(std::vector<bool> v) {
  Tensor t(DType::kBool, {static_cast<int64_t>(v.size())});
  for (size_t i = 0; i < v.size(); ++i) t.data<bool>()[i] = v[i];
  return t;
}

TEST(Compress, AxisShortConditionAndFlattened) {
  Tensor x = random_tensor(DType::kFloat16, {3, 4}, 1);
  OpCall c{"Compress", {x, bools({true, false, true})}};
  c.attrs.set("axis", int64_t{-1});  // condition shorter than the axis: the rest is dropped
  Tensor want = map_tensor(x, {3, 2}, [](const std::vector<int64_t>& o) {
    return std::optional(std::vector<int64_t>{o[0], o[1] == 0 ? 0 : 2});
  });
  EXPECT_TRUE(tensors_equal(run1(c), want));
  Tensor y = run1({"Compress", {x, bools({false, false, false, false, false, true, true})}});
  EXPECT_TRUE(tensors_equal(y, map_tensor(x, {2}, [](const std::vector<int64_t>& o) {
                              return std::optional(std::vector<int64_t>{1, 1 + o[0]});
                            })));
  EXPECT_EQ(run1({"Compress", {x, bools({false})}}).dims(), (Dims{0}));
  expect_error({"Compress", {x, bools(std::vector<bool>(13, true))}}, {"13 values"});
}

TEST(NonZero, RowMajorCoordinates) {
  Tensor x = Tensor::from_vector<float>({2, 3}, {0.f, 1.5f, 0.f, -2.f, 0.f, 3.f});
  EXPECT_TRUE(tensors_equal(run1({"NonZero", {x}}), i64({2, 3}, {0, 1, 1, 1, 0, 2})));
  Tensor h = Tensor::from_vector<int64_t>({4}, {0, 0, 0, 0});
  EXPECT_EQ(run1({"NonZero", {h}}).dims(), (Dims{1, 0}));
  EXPECT_TRUE(tensors_equal(run1({"NonZero", {Tensor::scalar<int32_t>(5)}}), i64({1, 1}, {0})));
  auto r = infer_op("NonZero", {ttype(DType::kFloat32, {Dim::symbolic("n"), 3})});
  EXPECT_EQ(r.outputs[0].to_string(), "int64[2,?]");
}

TEST(Unique, SortedAndUnsortedElements) {
  Tensor x = Tensor::from_vector<float>({6}, {2.f, 1.f, 1.f, 3.f, 4.f, 3.f});
  OpCall c{"Unique", {x}};
  c.num_outputs = 4;
  auto r = run_op(c);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_TRUE(tensors_equal((*r)[0], Tensor::from_vector<float>({4}, {1.f, 2.f, 3.f, 4.f})));
  EXPECT_TRUE(tensors_equal((*r)[1], i64v({1, 0, 3, 4})));
  EXPECT_TRUE(tensors_equal((*r)[2], i64v({1, 0, 0, 2, 3, 2})));
  EXPECT_TRUE(tensors_equal((*r)[3], i64v({2, 1, 2, 1})));
  c.attrs.set("sorted", int64_t{0});
  r = run_op(c);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(tensors_equal((*r)[0], Tensor::from_vector<float>({4}, {2.f, 1.f, 3.f, 4.f})));
  EXPECT_TRUE(tensors_equal((*r)[2], i64v({0, 1, 1, 2, 3, 2})));
}

TEST(Unique, SlicesAlongAxis) {
  // Columns [1,0], [0,1], [1,0], [2,2] along axis -1.
  Tensor x = i64({2, 4}, {1, 0, 1, 2, 0, 1, 0, 2});
  OpCall c{"Unique", {x}};
  c.num_outputs = 4;
  c.attrs.set("axis", int64_t{-1});
  auto r = run_op(c);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_TRUE(tensors_equal((*r)[0], i64({2, 3}, {0, 1, 2, 1, 0, 2})));
  EXPECT_TRUE(tensors_equal((*r)[1], i64v({1, 0, 3})));
  EXPECT_TRUE(tensors_equal((*r)[2], i64v({1, 0, 1, 2})));
  EXPECT_TRUE(tensors_equal((*r)[3], i64v({1, 2, 1})));
  // Only Y requested.
  EXPECT_TRUE(tensors_equal(run1({"Unique", {i64v({5, 5, -1})}}), i64v({-1, 5})));
}

}  // namespace
}  // namespace kiln::test
