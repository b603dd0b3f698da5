// Det against cofactor expansion.
#include <cmath>

#include "op_test_util.hpp"

namespace kiln::test {
namespace {

double cofactor_det(const std::vector<double>& m, int64_t n) {
  if (n == 0) return 1;
  if (n == 1) return m[0];
  double d = 0;
  for (int64_t c = 0; c < n; ++c) {
    std::vector<double> minor;
    for (int64_t r = 1; r < n; ++r)
      for (int64_t k = 0; k < n; ++k)
        if (k != c) minor.push_back(m[static_cast<size_t>(r * n + k)]);
    d += (c % 2 ? -1 : 1) * m[static_cast<size_t>(c)] * cofactor_det(minor, n - 1);
  }
  return d;
}

TEST(Det, MatchesCofactorExpansion) {
  for (int64_t n : {1, 2, 3, 4, 5}) {
    for (const Dims& batch : {Dims{}, Dims{3}, Dims{2, 2}}) {
      Dims dims = batch;
      dims.push_back(n);
      dims.push_back(n);
      Tensor x = random_tensor(DType::kFloat32, dims, static_cast<uint32_t>(n));
      auto out = run_op({.op_type = "Det", .inputs = {x}});
      ASSERT_TRUE(out.ok()) << out.status().message();
      ASSERT_EQ(out->at(0).dims(), batch);
      auto v = x.to_double_vector();
      Tensor want(DType::kFloat32, batch);
      for (int64_t b = 0; b < want.numel(); ++b) {
        std::vector<double> m(v.begin() + b * n * n, v.begin() + (b + 1) * n * n);
        want.data<float>()[b] = static_cast<float>(cofactor_det(m, n));
      }
      EXPECT_TRUE(tensors_close(out->at(0), want, 1e-4, 1e-5)) << "n " << n;
    }
  }
}

TEST(Det, SpecialMatricesAndDtypes) {
  // A row swap flips the sign; a singular matrix (zero first column) gives 0.
  Tensor x = Tensor::from_vector<double>({3, 2, 2}, {0, 1, 1, 0, 0, 2, 0, 3, 2, 0, 0, 3});
  auto out = run_op({.op_type = "Det", .inputs = {x}});
  ASSERT_TRUE(out.ok()) << out.status().message();
  EXPECT_EQ(out->at(0).to_double_vector(), (std::vector<double>{-1, 0, 6}));
  Tensor h = random_tensor(DType::kFloat16, {2, 3, 3}, 4);
  auto hd = run_op({.op_type = "Det", .inputs = {h}});
  ASSERT_TRUE(hd.ok()) << hd.status().message();
  EXPECT_EQ(hd->at(0).dtype(), DType::kFloat16);
  auto hv = h.to_double_vector();
  for (int b = 0; b < 2; ++b) {
    std::vector<double> m(hv.begin() + b * 9, hv.begin() + (b + 1) * 9);
    EXPECT_NEAR(hd->at(0).to_double_vector()[static_cast<size_t>(b)], cofactor_det(m, 3), 2e-2);
  }
  auto i = run_op({.op_type = "Det", .inputs = {Tensor::from_vector<int32_t>({2, 2}, {1, 2, 3, 4})}});
  ASSERT_FALSE(i.ok());
  EXPECT_EQ(i.status().code(), StatusCode::kUnsupported);
}

TEST(Det, ErrorsNameTheNode) {
  auto ns = run_op({.op_type = "Det", .inputs = {random_tensor(DType::kFloat32, {2, 3}, 1)}});
  ASSERT_FALSE(ns.ok());
  EXPECT_NE(ns.status().message().find("Det_node"), std::string::npos) << ns.status().message();
  EXPECT_NE(ns.status().message().find("square"), std::string::npos);
  auto r1 = run_op({.op_type = "Det", .inputs = {random_tensor(DType::kFloat32, {3}, 1)}});
  ASSERT_FALSE(r1.ok());
  EXPECT_NE(r1.status().message().find("Det_node"), std::string::npos);
}

}  // namespace
}  // namespace kiln::test
