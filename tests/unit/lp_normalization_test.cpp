// LpNormalization against a naive norm.
#include <cmath>

#include "op_test_util.hpp"

namespace kiln::test {
namespace {

Attributes lp_attrs(int64_t axis, int64_t p) {
  Attributes a;
  a.set("axis", axis);
  a.set("p", p);
  return a;
}

TEST(LpNormalization, MatchesNaive) {
  const Dims dims = {3, 4, 5};
  Tensor x = random_tensor(DType::kFloat32, dims, 6);
  auto v = x.to_double_vector();
  for (int64_t axis : {0, 1, 2, -1, -3}) {
    for (int64_t p : {1, 2}) {
      auto out = run_op({.op_type = "LpNormalization", .inputs = {x}, .attrs = lp_attrs(axis, p)});
      ASSERT_TRUE(out.ok()) << out.status().message();
      const int ax = static_cast<int>(axis < 0 ? axis + 3 : axis);
      Tensor want(DType::kFloat32, dims);
      for (int64_t a = 0; a < 3; ++a)
        for (int64_t b = 0; b < 4; ++b)
          for (int64_t c = 0; c < 5; ++c) {
            double norm = 0;
            for (int64_t k = 0; k < dims[static_cast<size_t>(ax)]; ++k) {
              int64_t idx[3] = {a, b, c};
              idx[ax] = k;
              double e = v[static_cast<size_t>((idx[0] * 4 + idx[1]) * 5 + idx[2])];
              norm += p == 1 ? std::abs(e) : e * e;
            }
            if (p == 2) norm = std::sqrt(norm);
            size_t at = static_cast<size_t>((a * 4 + b) * 5 + c);
            want.data<float>()[at] = static_cast<float>(v[at] / norm);
          }
      EXPECT_TRUE(tensors_close(out->at(0), want, 1e-5, 1e-6)) << "axis " << axis << " p " << p;
    }
  }
}

TEST(LpNormalization, ZeroVectorAndFloat16) {
  Tensor x = Tensor::from_vector<float>({2, 2}, {0.f, 0.f, 3.f, -4.f});
  auto out = run_op({.op_type = "LpNormalization", .inputs = {x}, .attrs = lp_attrs(1, 2)});
  ASSERT_TRUE(out.ok());
  EXPECT_TRUE(tensors_close(out->at(0), Tensor::from_vector<float>({2, 2}, {0.f, 0.f, 0.6f, -0.8f})));
  Tensor h = Tensor::from_vector<Half>({1, 2}, {Half(3.f), Half(-4.f)});
  auto ho = run_op({.op_type = "LpNormalization", .inputs = {h}, .attrs = lp_attrs(-1, 1)});
  ASSERT_TRUE(ho.ok()) << ho.status().message();
  EXPECT_TRUE(tensors_close(ho->at(0), Tensor::from_vector<Half>({1, 2}, {Half(3.f / 7), Half(-4.f / 7)})));
}

TEST(LpNormalization, ErrorsNameTheNode) {
  Tensor x = random_tensor(DType::kFloat32, {2, 3}, 1);
  auto p3 = run_op({.op_type = "LpNormalization", .inputs = {x}, .attrs = lp_attrs(1, 3)});
  ASSERT_FALSE(p3.ok());
  EXPECT_NE(p3.status().message().find("LpNormalization_node"), std::string::npos) << p3.status().message();
  EXPECT_NE(p3.status().message().find("p must be 1 or 2"), std::string::npos);
  auto ax = run_op({.op_type = "LpNormalization", .inputs = {x}, .attrs = lp_attrs(2, 2)});
  ASSERT_FALSE(ax.ok());
  EXPECT_NE(ax.status().message().find("axis 2 is out of range"), std::string::npos) << ax.status().message();
}

}  // namespace
}  // namespace kiln::test
