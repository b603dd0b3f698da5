// Shape, Size, Constant, ConstantOfShape, Range, EyeLike.
#include "tensorops_test_util.hpp"

namespace kiln::test {
namespace {

TEST(ShapeOp, StartEndClampAndNegative) {
  Tensor x = random_tensor(DType::kFloat16, {2, 3, 4, 5}, 1);
  EXPECT_TRUE(tensors_equal(run1({"Shape", {x}}), i64v({2, 3, 4, 5})));
  const std::vector<std::tuple<int64_t, int64_t, std::vector<int64_t>>> cases = {
      {1, 3, {3, 4}}, {-1, 4, {5}}, {-10, 2, {2, 3}}, {2, 10, {4, 5}}, {3, 1, {}}, {0, -1, {2, 3, 4}}};
  for (const auto& [s, e, want] : cases) {
    Attributes a;
    a.set("start", s);
    a.set("end", e);
    Tensor y = run1({"Shape", {x}, {}, a});
    EXPECT_TRUE(tensors_equal(y, i64({static_cast<int64_t>(want.size())}, want))) << s << ":" << e;
  }
  EXPECT_TRUE(tensors_equal(run1({"Shape", {Tensor::scalar<int64_t>(3)}}), i64({0}, {})));
}

TEST(ShapeOp, FoldsStaticDimsAndLeavesSymbolicOnesToRunTime) {
  auto r = infer_op("Shape", {ttype(DType::kFloat32, {2, 3})});
  ASSERT_TRUE(r.values[0].has_value());
  EXPECT_TRUE(tensors_equal(*r.values[0], i64v({2, 3})));
  r = infer_op("Shape", {ttype(DType::kFloat32, {Dim::symbolic("n"), 3})});
  EXPECT_FALSE(r.values[0].has_value());
  EXPECT_EQ(r.outputs[0].to_string(), "int64[2]");
  Attributes a;
  a.set("start", int64_t{1});
  r = infer_op("Shape", {ttype(DType::kFloat32, {Dim::symbolic("n"), 3})}, a);
  ASSERT_TRUE(r.values[0].has_value());  // only the known dim is asked for
  EXPECT_TRUE(tensors_equal(*r.values[0], i64v({3})));
}

TEST(Size, CountsElements) {
  EXPECT_TRUE(tensors_equal(run1({"Size", {random_tensor(DType::kInt32, {3, 0, 2})}}), Tensor::scalar<int64_t>(0)));
  EXPECT_TRUE(tensors_equal(run1({"Size", {random_tensor(DType::kBool, {3, 5, 2})}}), Tensor::scalar<int64_t>(30)));
  auto r = infer_op("Size", {ttype(DType::kFloat32, {4, 6})});
  ASSERT_TRUE(r.values[0].has_value());
  EXPECT_EQ(r.values[0]->data<int64_t>()[0], 24);
}

TEST(Constant, EveryValueAttribute) {
  Tensor t = random_tensor(DType::kFloat16, {2, 2}, 2);
  Attributes a;
  a.set("value", t);
  EXPECT_TRUE(tensors_equal(run1({"Constant", {}, {}, a}), t));
  Attributes f;
  f.set("value_floats", std::vector<float>{1.5f, -2.f});
  EXPECT_TRUE(tensors_equal(run1({"Constant", {}, {}, f}), Tensor::from_vector<float>({2}, {1.5f, -2.f})));
  Attributes i;
  i.set("value_int", int64_t{-7});
  EXPECT_TRUE(tensors_equal(run1({"Constant", {}, {}, i}), Tensor::scalar<int64_t>(-7)));
  Attributes two = a;
  two.set("value_int", int64_t{1});
  expect_error({"Constant", {}, {}, two}, {"exactly one value attribute", "found 2"});
  Attributes s;
  s.set("value_string", std::string("x"));
  auto r = run_op({"Constant", {}, {}, s});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnsupported);
}

TEST(ConstantOfShape, ValueAttrDefaultAndEmpty) {
  Tensor y = run1({"ConstantOfShape", {i64v({2, 3})}});
  EXPECT_TRUE(tensors_equal(y, Tensor::zeros(DType::kFloat32, {2, 3})));
  Attributes a;
  a.set("value", Tensor::from_vector<Half>({1}, {Half(1.5f)}));
  y = run1({"ConstantOfShape", {i64v({3})}, {}, a});
  EXPECT_TRUE(tensors_equal(y, Tensor::from_vector<Half>({3}, {Half(1.5f), Half(1.5f), Half(1.5f)})));
  a.set("value", Tensor::from_vector<int64_t>({1}, {-4}));
  EXPECT_TRUE(tensors_equal(run1({"ConstantOfShape", {i64v({2, 0})}, {}, a}), i64({2, 0}, {})));
  EXPECT_TRUE(tensors_equal(run1({"ConstantOfShape", {i64({0}, {})}, {}, a}), Tensor::scalar<int64_t>(-4)));
  expect_error({"ConstantOfShape", {i64v({2, -1})}}, {"negative"});
  a.set("value", Tensor::from_vector<float>({2}, {1, 2}));
  expect_error({"ConstantOfShape", {i64v({2})}, {}, a}, {"one-element"});
  auto r = infer_op("ConstantOfShape", {ttype(DType::kInt64, {4})});
  EXPECT_EQ(r.outputs[0].to_string(), "float32[?,?,?,?]");
}

template <typename T>
Tensor naive_range(double s, double l, double d) {
  std::vector<T> v;
  int64_t n = std::max<int64_t>(0, static_cast<int64_t>(std::ceil((l - s) / d)));
  for (int64_t i = 0; i < n; ++i) v.push_back(static_cast<T>(s + static_cast<double>(i) * d));
  return Tensor::from_vector<T>({n}, v);
}

TEST(Range, TypesAndDirections) {
  EXPECT_TRUE(tensors_close(run1({"Range", {Tensor::scalar<float>(1.f), Tensor::scalar<float>(5.5f), Tensor::scalar<float>(0.7f)}}),
                            naive_range<float>(1.f, 5.5f, 0.7f)));
  EXPECT_TRUE(tensors_equal(run1({"Range", {Tensor::scalar<int32_t>(10), Tensor::scalar<int32_t>(-3), Tensor::scalar<int32_t>(-4)}}),
                            naive_range<int32_t>(10, -3, -4)));
  EXPECT_TRUE(tensors_equal(run1({"Range", {Tensor::scalar<int64_t>(3), Tensor::scalar<int64_t>(3), Tensor::scalar<int64_t>(1)}}),
                            naive_range<int64_t>(3, 3, 1)));
  EXPECT_TRUE(tensors_equal(run1({"Range", {Tensor::scalar<int16_t>(0), Tensor::scalar<int16_t>(7), Tensor::scalar<int16_t>(3)}}),
                            naive_range<int16_t>(0, 7, 3)));
  expect_error({"Range", {Tensor::scalar<int64_t>(0), Tensor::scalar<int64_t>(3), Tensor::scalar<int64_t>(0)}}, {"delta"});
  expect_error({"Range", {Tensor::scalar<int64_t>(0), Tensor::scalar<int32_t>(3), Tensor::scalar<int64_t>(1)}}, {"one dtype"});
  // Constant inputs are folded at import.
  auto r = infer_op("Range", {Tensor::scalar<int64_t>(0), Tensor::scalar<int64_t>(4), Tensor::scalar<int64_t>(2)});
  ASSERT_TRUE(r.values[0].has_value());
  EXPECT_TRUE(tensors_equal(*r.values[0], i64v({0, 2})));
}

TEST(EyeLike, DiagonalOffsetAndDtype) {
  for (int64_t k : {-2, 0, 1, 5}) {
    Attributes a;
    a.set("k", k);
    a.set("dtype", int64_t{7});  // int64
    Tensor x = random_tensor(DType::kFloat32, {3, 4}, 3);
    std::vector<int64_t> want(12, 0);
    for (int64_t r = 0; r < 3; ++r)
      if (r + k >= 0 && r + k < 4) want[static_cast<size_t>(r * 4 + r + k)] = 1;
    EXPECT_TRUE(tensors_equal(run1({"EyeLike", {x}, {}, a}), i64({3, 4}, want))) << k;
  }
  Tensor y = run1({"EyeLike", {random_tensor(DType::kFloat16, {2, 2}, 4)}});
  EXPECT_TRUE(tensors_equal(y, Tensor::from_vector<Half>({2, 2}, {Half(1.f), Half(0.f), Half(0.f), Half(1.f)})));
  expect_error({"EyeLike", {random_tensor(DType::kFloat32, {2, 2, 2})}}, {"2-D"});
}

}  // namespace
}  // namespace kiln::test
