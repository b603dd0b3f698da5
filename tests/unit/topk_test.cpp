// TopK against a naive stable sort: axes, largest/smallest, ties (lower index first), K = 0 / n,
// dtypes, NaN, and errors.
#include <algorithm>
#include <cmath>
#include <numeric>

#include "op_test_util.hpp"

namespace kiln::test {
namespace {

// Per slice along `axis`: indices stably sorted by value (descending for largest), first k.
void naive_topk(const Tensor& x, int axis, int64_t k, bool largest, std::vector<double>& values,
                std::vector<int64_t>& indices) {
  const Dims& d = x.dims();
  int64_t outer = 1, inner = 1;
  for (int i = 0; i < axis; ++i) outer *= d[static_cast<size_t>(i)];
  for (size_t i = static_cast<size_t>(axis) + 1; i < d.size(); ++i) inner *= d[i];
  const int64_t n = d[static_cast<size_t>(axis)];
  auto v = x.to_double_vector();
  values.assign(static_cast<size_t>(outer * k * inner), 0);
  indices.assign(values.size(), 0);
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i = 0; i < inner; ++i) {
      std::vector<int64_t> idx(static_cast<size_t>(n));
      std::iota(idx.begin(), idx.end(), 0);
      auto val = [&](int64_t j) { return v[static_cast<size_t>((o * n + j) * inner + i)]; };
      std::stable_sort(idx.begin(), idx.end(), [&](int64_t a, int64_t b) {
        return largest ? val(a) > val(b) : val(a) < val(b);
      });
      for (int64_t j = 0; j < k; ++j) {
        size_t at = static_cast<size_t>((o * k + j) * inner + i);
        values[at] = val(idx[static_cast<size_t>(j)]);
        indices[at] = idx[static_cast<size_t>(j)];
      }
    }
}

Attributes topk_attrs(int64_t axis, int64_t largest, int64_t sorted = 1) {
  Attributes a;
  a.set("axis", axis);
  a.set("largest", largest);
  a.set("sorted", sorted);
  return a;
}

Tensor k_tensor(int64_t k) { return Tensor::from_vector<int64_t>({1}, {k}); }

TEST(TopK, MatchesStableSortWithTies) {
  const Dims dims = {3, 6, 4};
  // Integers in [0, 4): many ties, which must come out lowest index first.
  Tensor x = random_tensor(DType::kFloat32, dims, 8, 0.0, 4.0).cast(DType::kInt32).cast(DType::kFloat32);
  for (int64_t axis : {0, 1, 2, -1, -2}) {
    const int ax = static_cast<int>(axis < 0 ? axis + 3 : axis);
    const int64_t n = dims[static_cast<size_t>(ax)];
    for (int64_t k : {int64_t{0}, int64_t{1}, n / 2, n}) {
      for (int64_t largest : {0, 1}) {
        for (bool const_k : {true, false}) {
          auto out = run_op({.op_type = "TopK", .inputs = {x, k_tensor(k)}, .constant_inputs = {false, const_k},
                             .attrs = topk_attrs(axis, largest), .num_outputs = 2});
          ASSERT_TRUE(out.ok()) << out.status().message();
          Dims want_dims = dims;
          want_dims[static_cast<size_t>(ax)] = k;
          ASSERT_EQ(out->at(0).dims(), want_dims);
          ASSERT_EQ(out->at(1).dims(), want_dims);
          ASSERT_EQ(out->at(1).dtype(), DType::kInt64);
          std::vector<double> wv;
          std::vector<int64_t> wi;
          naive_topk(x, ax, k, largest, wv, wi);
          EXPECT_EQ(out->at(0).to_double_vector(), wv) << "axis " << axis << " k " << k << " largest " << largest;
          std::vector<int64_t> gi(out->at(1).data<int64_t>(), out->at(1).data<int64_t>() + out->at(1).numel());
          EXPECT_EQ(gi, wi) << "axis " << axis << " k " << k << " largest " << largest;
        }
      }
    }
  }
}

TEST(TopK, DtypesAndNaN) {
  for (DType dt : {DType::kFloat16, DType::kFloat64, DType::kInt8, DType::kUInt16, DType::kInt64, DType::kBFloat16}) {
    Tensor x = random_tensor(dt, {5, 7}, 3, 0.0, 6.0);
    auto out = run_op({.op_type = "TopK", .inputs = {x, k_tensor(3)}, .attrs = topk_attrs(1, 1), .num_outputs = 2});
    ASSERT_TRUE(out.ok()) << dtype_name(dt) << ": " << out.status().message();
    EXPECT_EQ(out->at(0).dtype(), dt);
    std::vector<double> wv;
    std::vector<int64_t> wi;
    naive_topk(x, 1, 3, true, wv, wi);
    EXPECT_EQ(out->at(0).to_double_vector(), wv) << dtype_name(dt);
    std::vector<int64_t> gi(out->at(1).data<int64_t>(), out->at(1).data<int64_t>() + out->at(1).numel());
    EXPECT_EQ(gi, wi) << dtype_name(dt);
  }
  Tensor x = Tensor::from_vector<float>({5}, {1.f, NAN, 3.f, -INFINITY, 2.f});
  auto big = run_op({.op_type = "TopK", .inputs = {x, k_tensor(2)}, .attrs = topk_attrs(0, 1), .num_outputs = 2});
  ASSERT_TRUE(big.ok());
  EXPECT_EQ(big->at(1).data<int64_t>()[0], 1);  // NaN sorts above every number
  EXPECT_EQ(big->at(1).data<int64_t>()[1], 2);
  auto small = run_op({.op_type = "TopK", .inputs = {x, k_tensor(2)}, .attrs = topk_attrs(0, 0), .num_outputs = 2});
  ASSERT_TRUE(small.ok());
  EXPECT_EQ(small->at(1).data<int64_t>()[0], 3);
  EXPECT_EQ(small->at(1).data<int64_t>()[1], 0);
}

TEST(TopK, ShapeInference) {
  auto g = std::make_shared<Graph>();
  Value* x = g->add_value("x", {DType::kFloat32, Shape({Dim::symbolic("n"), Dim(10)})});
  Value* kdyn = g->add_value("k", {DType::kInt64, Shape::from_dims({1})});
  g->inputs = {x, kdyn};
  Value* v1 = g->add_value("v1");
  Value* i1 = g->add_value("i1");
  Value* v2 = g->add_value("v2");
  Value* i2 = g->add_value("i2");
  g->add_node("TopK", {x, g->add_constant("kc", k_tensor(4))}, {v1, i1}, "t_const");
  g->add_node("TopK", {x, kdyn}, {v2, i2}, "t_dyn");
  g->outputs = {v1, i1, v2, i2};
  ASSERT_TRUE(infer_shapes(*g).ok());
  EXPECT_EQ(v1->type.to_string(), "float32[n,4]");
  EXPECT_EQ(i1->type.to_string(), "int64[n,4]");
  EXPECT_EQ(v2->type.to_string(), "float32[n,?]");
}

TEST(TopK, ErrorsNameTheNode) {
  Tensor x = random_tensor(DType::kFloat32, {2, 3}, 1);
  for (bool c : {true, false}) {
    auto big = run_op({.op_type = "TopK", .inputs = {x, k_tensor(4)}, .constant_inputs = {false, c}, .num_outputs = 2});
    ASSERT_FALSE(big.ok());
    EXPECT_NE(big.status().message().find("TopK_node"), std::string::npos) << big.status().message();
    auto neg = run_op({.op_type = "TopK", .inputs = {x, k_tensor(-1)}, .constant_inputs = {false, c}, .num_outputs = 2});
    ASSERT_FALSE(neg.ok());
    EXPECT_NE(neg.status().message().find("TopK_node"), std::string::npos) << neg.status().message();
  }
  auto axis = run_op({.op_type = "TopK", .inputs = {x, k_tensor(1)}, .attrs = topk_attrs(2, 1), .num_outputs = 2});
  ASSERT_FALSE(axis.ok());
  EXPECT_NE(axis.status().message().find("axis 2 is out of range"), std::string::npos) << axis.status().message();
}

}  // namespace
}  // namespace kiln::test
