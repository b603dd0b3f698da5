// CumSum against a naive prefix sum: every axis (negative too), exclusive/reverse, dtypes, errors.
#include "op_test_util.hpp"

namespace kiln::test {
namespace {

// out[.., j, ..] = sum of x[.., m, ..] over m <= j (m < j exclusive; m >= j / m > j reversed).
std::vector<double> naive_cumsum(const Tensor& x, int axis, bool exclusive, bool reverse) {
  const Dims& d = x.dims();
  int64_t outer = 1, inner = 1;
  for (int i = 0; i < axis; ++i) outer *= d[static_cast<size_t>(i)];
  for (size_t i = static_cast<size_t>(axis) + 1; i < d.size(); ++i) inner *= d[i];
  const int64_t n = d[static_cast<size_t>(axis)];
  auto v = x.to_double_vector();
  std::vector<double> out(v.size());
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t j = 0; j < n; ++j)
      for (int64_t i = 0; i < inner; ++i) {
        double s = 0;
        for (int64_t m = 0; m < n; ++m) {
          bool take = reverse ? (exclusive ? m > j : m >= j) : (exclusive ? m < j : m <= j);
          if (take) s += v[static_cast<size_t>((o * n + m) * inner + i)];
        }
        out[static_cast<size_t>((o * n + j) * inner + i)] = s;
      }
  return out;
}

Attributes cs_attrs(int64_t exclusive, int64_t reverse) {
  Attributes a;
  a.set("exclusive", exclusive);
  a.set("reverse", reverse);
  return a;
}

TEST(CumSum, MatchesNaive) {
  const Dims dims = {3, 4, 5};
  Tensor x = random_tensor(DType::kFloat32, dims, 21);
  for (int64_t axis : {0, 1, 2, -1, -3}) {
    for (int64_t ex : {0, 1}) {
      for (int64_t rev : {0, 1}) {
        for (bool int32_axis : {false, true}) {
          Tensor ax = int32_axis ? Tensor::scalar<int32_t>(static_cast<int32_t>(axis)) : Tensor::scalar<int64_t>(axis);
          auto out = run_op({.op_type = "CumSum", .inputs = {x, ax}, .constant_inputs = {false, int32_axis},
                             .attrs = cs_attrs(ex, rev)});
          ASSERT_TRUE(out.ok()) << out.status().message();
          Tensor want(DType::kFloat32, dims);
          auto ref = naive_cumsum(x, static_cast<int>(axis < 0 ? axis + 3 : axis), ex, rev);
          for (size_t i = 0; i < ref.size(); ++i) want.data<float>()[i] = static_cast<float>(ref[i]);
          EXPECT_TRUE(tensors_close(out->at(0), want, 1e-5, 1e-5))
              << "axis " << axis << " exclusive " << ex << " reverse " << rev;
        }
      }
    }
  }
}

TEST(CumSum, SpecExampleAndDtypes) {
  Tensor x = Tensor::from_vector<int64_t>({3}, {1, 2, 3});
  const std::vector<std::pair<std::pair<int, int>, std::vector<double>>> cases = {
      {{0, 0}, {1, 3, 6}}, {{1, 0}, {0, 1, 3}}, {{0, 1}, {6, 5, 3}}, {{1, 1}, {5, 3, 0}}};
  for (const auto& [flags, want] : cases) {
    auto out = run_op({.op_type = "CumSum", .inputs = {x, Tensor::scalar<int64_t>(0)},
                       .attrs = cs_attrs(flags.first, flags.second)});
    ASSERT_TRUE(out.ok()) << out.status().message();
    EXPECT_EQ(out->at(0).dtype(), DType::kInt64);
    EXPECT_EQ(out->at(0).to_double_vector(), want);
  }
  // float16: 3000 ones accumulate in float, so the running sum keeps counting past 2048.
  Tensor h(DType::kFloat16, {3000});
  for (int64_t i = 0; i < h.numel(); ++i) h.data<Half>()[i] = Half(1.0f);
  auto hs = run_op({.op_type = "CumSum", .inputs = {h, Tensor::scalar<int64_t>(0)}});
  ASSERT_TRUE(hs.ok());
  EXPECT_EQ(static_cast<float>(hs->at(0).data<Half>()[2999]), 3000.0f);
  for (DType dt : {DType::kFloat64, DType::kInt32, DType::kUInt32, DType::kBFloat16}) {
    Tensor t = random_tensor(dt, {4, 3}, 5, 0.0, 8.0);
    auto y = run_op({.op_type = "CumSum", .inputs = {t, Tensor::scalar<int64_t>(1)}});
    ASSERT_TRUE(y.ok()) << dtype_name(dt) << ": " << y.status().message();
    auto ref = naive_cumsum(t, 1, false, false);
    auto got = y->at(0).to_double_vector();
    for (size_t i = 0; i < ref.size(); ++i) EXPECT_NEAR(got[i], ref[i], 0.1) << dtype_name(dt);
  }
  auto b = run_op({.op_type = "CumSum", .inputs = {Tensor::from_vector<bool>({2}, {true, true}), Tensor::scalar<int64_t>(0)}});
  ASSERT_FALSE(b.ok());
  EXPECT_EQ(b.status().code(), StatusCode::kUnsupported);
}

TEST(CumSum, ErrorsNameTheNode) {
  Tensor x = random_tensor(DType::kFloat32, {2, 3}, 1);
  for (bool c : {true, false}) {
    auto bad = run_op({.op_type = "CumSum", .inputs = {x, Tensor::scalar<int64_t>(2)}, .constant_inputs = {false, c}});
    ASSERT_FALSE(bad.ok());
    EXPECT_NE(bad.status().message().find("CumSum_node"), std::string::npos) << bad.status().message();
    EXPECT_NE(bad.status().message().find("axis 2 is out of range"), std::string::npos) << bad.status().message();
  }
  auto fl = run_op({.op_type = "CumSum", .inputs = {x, Tensor::scalar<float>(0.f)}});
  ASSERT_FALSE(fl.ok());
  EXPECT_NE(fl.status().message().find("CumSum_node"), std::string::npos);
}

}  // namespace
}  // namespace kiln::test
