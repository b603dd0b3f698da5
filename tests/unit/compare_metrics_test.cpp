// `kiln compare` metrics on hand-computed values.
#include <gtest/gtest.h>

#include <cmath>

#include "compare_metrics.hpp"

namespace kiln::cli {
namespace {

TEST(CompareMetrics, HandComputedValues) {
  // ref = [[3, 0], [0, 4]], test = [[3, 1], [1, 4]]: diff = (0, 1, 1, 0).
  Tensor ref = Tensor::from_vector<float>({2, 2}, {3, 0, 0, 4});
  Tensor test = Tensor::from_vector<float>({2, 2}, {3, 1, 1, 4});
  auto m = compare_tensors(ref, test);
  ASSERT_TRUE(m.ok()) << m.status().message();
  EXPECT_EQ(m->count, 4);
  EXPECT_DOUBLE_EQ(m->max_abs, 1.0);
  EXPECT_DOUBLE_EQ(m->mean_abs, 0.5);
  EXPECT_DOUBLE_EQ(m->rel_l2, std::sqrt(2.0) / 5.0);      // ||diff|| = sqrt(2), ||ref|| = 5
  EXPECT_DOUBLE_EQ(m->cosine, 25.0 / (5.0 * std::sqrt(27.0)));  // <a,b> = 9 + 16, ||b|| = sqrt(27)
  ASSERT_TRUE(m->top1.has_value());
  EXPECT_DOUBLE_EQ(*m->top1, 1.0);  // rows argmax: (0, 1) in both
}

TEST(CompareMetrics, Top1CountsDisagreeingRows) {
  Tensor ref = Tensor::from_vector<float>({1, 3, 2}, {1, 2, 5, 4, 0, 0.5f});
  Tensor test = Tensor::from_vector<float>({1, 3, 2}, {1, 2, 3, 4, 0, 0.5f});
  auto m = compare_tensors(ref, test);
  ASSERT_TRUE(m.ok());
  ASSERT_TRUE(m->top1.has_value());
  EXPECT_DOUBLE_EQ(*m->top1, 2.0 / 3.0);  // the middle row flips from 0 to 1
  EXPECT_DOUBLE_EQ(m->max_abs, 2.0);
}

TEST(CompareMetrics, IdenticalAndDtypesMixed) {
  Tensor ref = Tensor::from_vector<float>({4}, {1, -2, 0.5f, 8});
  Tensor half = Tensor::from_vector<Half>({4}, {Half(1.0f), Half(-2.0f), Half(0.5f), Half(8.0f)});
  auto m = compare_tensors(ref, half);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->max_abs, 0.0);
  EXPECT_EQ(m->rel_l2, 0.0);
  EXPECT_DOUBLE_EQ(m->cosine, 1.0);
  EXPECT_FALSE(m->top1.has_value());  // rank 1: no rows
}

TEST(CompareMetrics, ZeroReferenceAndNonFinite) {
  Tensor zero = Tensor::from_vector<float>({2}, {0, 0});
  auto both = compare_tensors(zero, zero);
  ASSERT_TRUE(both.ok());
  EXPECT_EQ(both->rel_l2, 0.0);
  EXPECT_EQ(both->cosine, 1.0);
  auto off = compare_tensors(zero, Tensor::from_vector<float>({2}, {0, 1}));
  ASSERT_TRUE(off.ok());
  EXPECT_TRUE(std::isinf(off->rel_l2));
  EXPECT_EQ(off->cosine, 0.0);
  auto nan = compare_tensors(Tensor::from_vector<float>({2}, {1, 2}), Tensor::from_vector<float>({2}, {1, NAN}));
  ASSERT_TRUE(nan.ok());
  EXPECT_EQ(nan->nonfinite, 1);
  EXPECT_TRUE(std::isinf(nan->rel_l2));
  EXPECT_TRUE(std::isinf(nan->mean_abs));
  EXPECT_EQ(nan->count, 1);
  EXPECT_DOUBLE_EQ(nan->cosine, 1.0);  // over the one finite pair (1, 1)
  // NaN in both at the same place agrees; Inf against a finite value leaves nothing finite.
  auto same = compare_tensors(Tensor::from_vector<float>({2}, {NAN, 3}), Tensor::from_vector<float>({2}, {NAN, 3}));
  ASSERT_TRUE(same.ok());
  EXPECT_EQ(same->nonfinite, 0);
  EXPECT_EQ(same->rel_l2, 0.0);
  auto inf = compare_tensors(Tensor::from_vector<float>({1}, {2}), Tensor::from_vector<float>({1}, {INFINITY}));
  ASSERT_TRUE(inf.ok());
  EXPECT_EQ(inf->cosine, 0.0);
}

TEST(CompareMetrics, ShapeMismatchIsAnError) {
  auto m = compare_tensors(Tensor::from_vector<float>({2, 2}, {1, 2, 3, 4}), Tensor::from_vector<float>({4}, {1, 2, 3, 4}));
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.status().message().find("shapes differ"), std::string::npos);
}

}  // namespace
}  // namespace kiln::cli
