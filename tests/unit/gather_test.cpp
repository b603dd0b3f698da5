// Gather, GatherElements, GatherND with negative indices, batch_dims and errors.
#include "tensorops_test_util.hpp"

namespace kiln::test {
namespace {

TEST(Gather, AxesNegativeIndicesAndDtypes) {
  for (DType t : {DType::kFloat32, DType::kFloat16, DType::kInt64}) {
    Tensor x = random_tensor(t, {3, 4, 5}, 1);
    Tensor idx = i64({2, 2}, {0, -1, 2, -4});
    for (int64_t axis : {1, -2}) {
      Attributes a;
      a.set("axis", axis);
      Tensor want = map_tensor(x, {3, 2, 2, 5}, [&](const std::vector<int64_t>& o) {
        int64_t j = idx.data<int64_t>()[o[1] * 2 + o[2]];
        return std::optional(std::vector<int64_t>{o[0], j < 0 ? j + 4 : j, o[3]});
      });
      EXPECT_TRUE(tensors_equal(run1({"Gather", {x, idx}, {}, a}), want)) << dtype_name(t);
    }
  }
  // Scalar index removes the axis; int32 indices.
  Tensor x = random_tensor(DType::kFloat32, {3, 4}, 2);
  Tensor y = run1({"Gather", {x, Tensor::scalar<int32_t>(-1)}});
  EXPECT_TRUE(tensors_equal(y, map_tensor(x, {4}, [](const std::vector<int64_t>& o) {
                              return std::optional(std::vector<int64_t>{2, o[0]});
                            })));
  expect_error({"Gather", {x, i64v({3})}}, {"index 3 is out of range"});
  expect_error({"Gather", {x, Tensor::from_vector<float>({1}, {0.f})}}, {"int32 or int64"});
  // Empty indices.
  EXPECT_EQ(run1({"Gather", {x, i64({0}, {})}}).dims(), (Dims{0, 4}));
}

TEST(Gather, FoldsShapeArithmetic) {
  auto r = infer_op("Gather", {i64v({8, 3, 224, 224}), Tensor::scalar<int64_t>(-1)});
  ASSERT_TRUE(r.values[0].has_value());
  EXPECT_TRUE(tensors_equal(*r.values[0], Tensor::scalar<int64_t>(224)));
  auto s = infer_op("Gather", {ttype(DType::kFloat32, {Dim::symbolic("n"), 7}), ttype(DType::kInt64, {2, 3})});
  EXPECT_EQ(s.outputs[0].to_string(), "float32[2,3,7]");
}

TEST(GatherElements, AxisAndSmallerIndices) {
  Tensor x = random_tensor(DType::kFloat32, {3, 4}, 3);
  Tensor idx = i64({2, 3}, {0, -1, 2, 1, 0, -3});
  for (int64_t axis : {0, 1, -1}) {
    Attributes a;
    a.set("axis", axis);
    const int64_t ax = axis < 0 ? axis + 2 : axis;
    Tensor want = map_tensor(x, {2, 3}, [&](const std::vector<int64_t>& o) {
      int64_t j = idx.data<int64_t>()[o[0] * 3 + o[1]];
      std::vector<int64_t> s = o;
      s[static_cast<size_t>(ax)] = j < 0 ? j + x.dims()[static_cast<size_t>(ax)] : j;
      return std::optional(s);
    });
    EXPECT_TRUE(tensors_equal(run1({"GatherElements", {x, idx}, {}, a}), want)) << axis;
  }
  expect_error({"GatherElements", {x, i64({1, 1}, {3})}}, {"index 3 is out of range"});
  expect_error({"GatherElements", {x, i64({2}, {0, 1})}}, {"rank"});
}

TEST(GatherND, BatchDimsAndSlices) {
  Tensor x = random_tensor(DType::kInt64, {2, 3, 4}, 4, -100, 100);
  // batch_dims 0, k = 2: picks rows of the last axis.
  Tensor idx = i64({3, 2}, {0, 1, 1, -1, 0, 0});
  Tensor want = map_tensor(x, {3, 4}, [&](const std::vector<int64_t>& o) {
    const int64_t* t = idx.data<int64_t>() + o[0] * 2;
    return std::optional(std::vector<int64_t>{t[0], t[1] < 0 ? t[1] + 3 : t[1], o[1]});
  });
  EXPECT_TRUE(tensors_equal(run1({"GatherND", {x, idx}}), want));
  // batch_dims 1, k = 2: one element per tuple.
  Attributes a;
  a.set("batch_dims", int64_t{1});
  Tensor bidx = i64({2, 2, 2}, {0, 0, 2, 3, 1, 1, -1, -1});
  Tensor bwant = map_tensor(x, {2, 2}, [&](const std::vector<int64_t>& o) {
    const int64_t* t = bidx.data<int64_t>() + (o[0] * 2 + o[1]) * 2;
    return std::optional(std::vector<int64_t>{o[0], t[0] < 0 ? t[0] + 3 : t[0], t[1] < 0 ? t[1] + 4 : t[1]});
  });
  EXPECT_TRUE(tensors_equal(run1({"GatherND", {x, bidx}, {}, a}), bwant));
  expect_error({"GatherND", {x, i64({1, 4}, {0, 0, 0, 0})}}, {"last dim"});
  expect_error({"GatherND", {x, i64({1, 1}, {2})}}, {"index 2 is out of range"});
}

}  // namespace
}  // namespace kiln::test
