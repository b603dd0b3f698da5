// ScatterND and ScatterElements with every reduction.
#include "tensorops_test_util.hpp"

namespace kiln::test {
namespace {

double reduce(const std::string& r, double a, double b) {
  if (r == "add") return a + b;
  if (r == "mul") return a * b;
  if (r == "max") return std::max(a, b);
  if (r == "min") return std::min(a, b);
  return b;
}

TEST(ScatterND, ReductionsWithDuplicatesAndNegativeIndices) {
  Tensor data = random_tensor(DType::kFloat32, {4, 3}, 1);
  Tensor idx = i64({3, 1}, {1, -1, 1});  // row 1 twice, row 3 once
  Tensor upd = random_tensor(DType::kFloat32, {3, 3}, 2);
  for (std::string red : {"none", "add", "mul", "max", "min"}) {
    auto want = data.to_double_vector();
    auto u = upd.to_double_vector();
    const int64_t rows[3] = {1, 3, 1};
    for (int t = 0; t < 3; ++t)
      for (int j = 0; j < 3; ++j) want[rows[t] * 3 + j] = reduce(red, want[rows[t] * 3 + j], u[t * 3 + j]);
    OpCall c{"ScatterND", {data, idx, upd}};
    c.attrs.set("reduction", red);
    EXPECT_TRUE(tensors_close(run1(c), Tensor::from_vector<double>({4, 3}, want).cast(DType::kFloat32))) << red;
  }
}

TEST(ScatterND, ElementIndicesInt64Data) {
  Tensor data = random_tensor(DType::kInt64, {2, 2, 2}, 3, -9, 9);
  Tensor idx = i64({2, 3}, {0, 1, 1, 1, 0, 0});
  Tensor upd = i64v({100, 200});
  auto want = data.to_double_vector();
  want[3] = 100;
  want[4] = 200;
  EXPECT_TRUE(tensors_equal(run1({"ScatterND", {data, idx, upd}}), Tensor::from_vector<double>({2, 2, 2}, want).cast(DType::kInt64)));
  expect_error({"ScatterND", {data, i64({1, 3}, {0, 2, 0}), i64v({1})}}, {"index 2 is out of range"});
  expect_error({"ScatterND", {data, idx, i64v({1, 2, 3})}}, {"updates shape"});
  OpCall bad{"ScatterND", {data, idx, upd}};
  bad.attrs.set("reduction", std::string("sum"));
  expect_error(bad, {"reduction"});
}

TEST(ScatterElements, AxesReductionsAndFloat16) {
  Tensor data = random_tensor(DType::kFloat16, {3, 4}, 4);
  Tensor idx = i64({2, 3}, {0, -1, 2, 1, 1, 3});
  Tensor upd = random_tensor(DType::kFloat16, {2, 3}, 5);
  for (int64_t axis : {0, 1, -1}) {
    for (std::string red : {"none", "add", "max"}) {
      const int64_t ax = axis < 0 ? axis + 2 : axis;
      auto want = data.to_double_vector();
      auto u = upd.to_double_vector();
      auto iv = *idx.to_int64_vector();
      bool valid = true;
      for (int64_t i = 0; i < 2; ++i)
        for (int64_t j = 0; j < 3; ++j) {
          int64_t v = iv[static_cast<size_t>(i * 3 + j)], dim = ax == 0 ? 3 : 4;
          if (v < -dim || v >= dim) valid = false;
          v = v < 0 ? v + dim : v;
          int64_t r = ax == 0 ? v : i, c = ax == 0 ? j : v;
          if (valid) want[static_cast<size_t>(r * 4 + c)] = reduce(red, want[static_cast<size_t>(r * 4 + c)], u[static_cast<size_t>(i * 3 + j)]);
        }
      OpCall call{"ScatterElements", {data, idx, upd}};
      call.attrs.set("axis", axis);
      call.attrs.set("reduction", red);
      if (!valid) {
        expect_error(call, {"out of range"});
        continue;
      }
      EXPECT_TRUE(tensors_close(run1(call), Tensor::from_vector<double>({3, 4}, want).cast(DType::kFloat16), 1e-3, 1e-3))
          << axis << " " << red;
    }
  }
  expect_error({"ScatterElements", {data, idx, random_tensor(DType::kFloat16, {3, 3})}}, {"must equal indices shape"});
}

}  // namespace
}  // namespace kiln::test
