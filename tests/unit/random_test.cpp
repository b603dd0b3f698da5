// RandomNormal, RandomUniform (+Like), Bernoulli and Multinomial: shapes and dtypes, seeded
// reproducibility, fresh draws without a seed, and the distributions' statistics (loose bounds,
// several standard errors wide, on fixed seeds).
#include <cmath>
#include <numeric>

#include "elementwise_test_util.hpp"

namespace kiln::test {
namespace {

constexpr int64_t kF32 = 1, kI32 = 6, kI64 = 7, kBool = 9, kF16 = 10, kF64 = 11, kBF16 = 16, kF8 = 17;

Attributes attrs(std::initializer_list<std::pair<const char*, AttrValue>> kv) {
  Attributes a;
  for (const auto& [k, v] : kv) a.set(k, v);
  return a;
}

double mean_of(const std::vector<double>& v) { return std::accumulate(v.begin(), v.end(), 0.0) / static_cast<double>(v.size()); }
double var_of(const std::vector<double>& v) {
  const double m = mean_of(v);
  double s = 0;
  for (double x : v) s += (x - m) * (x - m);
  return s / static_cast<double>(v.size());
}

TEST(RandomNormal, ShapeDtypeAndMoments) {
  for (auto [code, dt] : {std::pair{kF32, DType::kFloat32}, std::pair{kF16, DType::kFloat16},
                          std::pair{kF64, DType::kFloat64}, std::pair{kBF16, DType::kBFloat16}}) {
    Tensor y = run1({"RandomNormal", {}, {}, attrs({{"shape", std::vector<int64_t>{200, 100}}, {"mean", 3.f},
                                                   {"scale", 2.f}, {"seed", 5.f}, {"dtype", code}})});
    ASSERT_EQ(y.dtype(), dt);
    ASSERT_EQ(y.dims(), (Dims{200, 100}));
    const auto v = y.to_double_vector();
    // 20000 draws: the mean's standard error is 2 / sqrt(20000) = 0.014.
    EXPECT_NEAR(mean_of(v), 3.0, 0.07) << dtype_name(dt);
    EXPECT_NEAR(std::sqrt(var_of(v)), 2.0, 0.08) << dtype_name(dt);
    // The tails: about 4.55% of the draws lie beyond 2 standard deviations.
    const double beyond = static_cast<double>(std::count_if(v.begin(), v.end(), [](double x) { return std::abs(x - 3) > 4; }));
    EXPECT_NEAR(beyond / static_cast<double>(v.size()), 0.0455, 0.01) << dtype_name(dt);
  }
  // Default dtype float32, mean 0, scale 1; a zero-size shape.
  Tensor y = run1({"RandomNormal", {}, {}, attrs({{"shape", std::vector<int64_t>{3, 0}}})});
  EXPECT_EQ(y.dtype(), DType::kFloat32);
  EXPECT_EQ(y.dims(), (Dims{3, 0}));
}

TEST(RandomNormal, SeedMakesRunsRepeatAndNoSeedDrawsAnew) {
  auto run = [](std::optional<float> seed) {
    Attributes a = attrs({{"shape", std::vector<int64_t>{64}}});
    if (seed) a.set("seed", *seed);
    return run1({"RandomNormal", {}, {}, a}).to_double_vector();
  };
  EXPECT_EQ(run(1.f), run(1.f));
  EXPECT_NE(run(1.f), run(2.f));
  EXPECT_NE(run(1.f), run(1.5f));
  EXPECT_NE(run(std::nullopt), run(std::nullopt));
  // The same seed in another op with the same shape: a reproducible stream too.
  Tensor like = random_tensor(DType::kFloat32, {64}, 3);
  auto l1 = run1({"RandomNormalLike", {like}, {}, attrs({{"seed", 1.f}})}).to_double_vector();
  EXPECT_EQ(l1, run(1.f));
}

TEST(RandomUniform, RangeAndMoments) {
  for (auto [code, dt] : {std::pair{kF32, DType::kFloat32}, std::pair{kF16, DType::kFloat16},
                          std::pair{kF64, DType::kFloat64}, std::pair{kBF16, DType::kBFloat16}}) {
    Tensor y = run1({"RandomUniform", {}, {}, attrs({{"shape", std::vector<int64_t>{50000}}, {"low", -1.f},
                                                    {"high", 3.f}, {"seed", 11.f}, {"dtype", code}})});
    ASSERT_EQ(y.dtype(), dt);
    const auto v = y.to_double_vector();
    // [low, high): even where rounding to a narrow type would reach high.
    EXPECT_GE(*std::min_element(v.begin(), v.end()), -1.0) << dtype_name(dt);
    EXPECT_LT(*std::max_element(v.begin(), v.end()), 3.0) << dtype_name(dt);
    EXPECT_NEAR(mean_of(v), 1.0, 0.03) << dtype_name(dt);         // standard error 0.005
    EXPECT_NEAR(var_of(v), 16.0 / 12.0, 0.05) << dtype_name(dt);  // (high - low)^2 / 12
    // Each quarter of the range holds about a quarter of the draws.
    for (int q = 0; q < 4; ++q) {
      const double n = static_cast<double>(std::count_if(v.begin(), v.end(), [q](double x) { return x >= q - 1 && x < q; }));
      EXPECT_NEAR(n / 50000.0, 0.25, 0.015) << dtype_name(dt) << " quarter " << q;
    }
  }
  // Defaults: [0, 1).
  const auto v = run1({"RandomUniform", {}, {}, attrs({{"shape", std::vector<int64_t>{2, 3, 4}}, {"seed", 0.f}})})
                     .to_double_vector();
  EXPECT_EQ(v.size(), 24u);
  EXPECT_GE(*std::min_element(v.begin(), v.end()), 0.0);
  EXPECT_LT(*std::max_element(v.begin(), v.end()), 1.0);
}

TEST(RandomUniformLike, ShapeAndDtypeFromInputOrAttribute) {
  Tensor x = random_tensor(DType::kFloat16, {3, 5, 2}, 1);
  Tensor y = run1({"RandomUniformLike", {x}, {}, attrs({{"seed", 1.f}})});
  EXPECT_EQ(y.dtype(), DType::kFloat16);
  EXPECT_EQ(y.dims(), (Dims{3, 5, 2}));
  // An integer input needs a dtype; the output does not depend on the input's values.
  Tensor xi = random_tensor(DType::kInt64, {4, 4}, 2);
  y = run1({"RandomUniformLike", {xi}, {}, attrs({{"seed", 1.f}, {"dtype", kF64}, {"low", 5.f}, {"high", 6.f}})});
  EXPECT_EQ(y.dtype(), DType::kFloat64);
  Tensor y2 = run1({"RandomUniformLike", {random_tensor(DType::kInt64, {4, 4}, 9)}, {},
                    attrs({{"seed", 1.f}, {"dtype", kF64}, {"low", 5.f}, {"high", 6.f}})});
  EXPECT_EQ(y.to_double_vector(), y2.to_double_vector());
  for (double v : y.to_double_vector()) EXPECT_TRUE(v >= 5 && v < 6) << v;
  y = run1({"RandomNormalLike", {xi}, {}, attrs({{"dtype", kF32}})});
  EXPECT_EQ(y.dtype(), DType::kFloat32);
  EXPECT_EQ(y.dims(), (Dims{4, 4}));
}

TEST(Bernoulli, ProbabilitiesDtypesAndSeed) {
  // p = 0 and p = 1 are certain; p = 0.3 gives about 30% ones (standard error 0.003).
  const int64_t n = 20000;
  std::vector<float> p(static_cast<size_t>(3 * n));
  std::fill(p.begin(), p.begin() + n, 0.f);
  std::fill(p.begin() + n, p.begin() + 2 * n, 1.f);
  std::fill(p.begin() + 2 * n, p.end(), 0.3f);
  Tensor x = Tensor::from_vector<float>({3, n}, p);
  Tensor y = run1({"Bernoulli", {x}, {}, attrs({{"seed", 4.f}})});
  ASSERT_EQ(y.dtype(), DType::kFloat32);
  ASSERT_EQ(y.dims(), (Dims{3, n}));
  const auto v = y.to_double_vector();
  for (double e : v) ASSERT_TRUE(e == 0 || e == 1);
  EXPECT_EQ(std::accumulate(v.begin(), v.begin() + n, 0.0), 0);
  EXPECT_EQ(std::accumulate(v.begin() + n, v.begin() + 2 * n, 0.0), static_cast<double>(n));
  EXPECT_NEAR(std::accumulate(v.begin() + 2 * n, v.end(), 0.0) / static_cast<double>(n), 0.3, 0.015);
  // Seeded runs repeat; unseeded ones differ.
  EXPECT_EQ(run1({"Bernoulli", {x}, {}, attrs({{"seed", 4.f}})}).to_double_vector(), v);
  EXPECT_NE(run1({"Bernoulli", {x}}).to_double_vector(), run1({"Bernoulli", {x}}).to_double_vector());
  // Output dtypes: bool, int32, float64 (from float16 input), and the input's dtype by default.
  Tensor xh = random_tensor(DType::kFloat16, {40}, 2, 0, 1);
  for (auto [code, dt] : {std::pair{kBool, DType::kBool}, std::pair{kI32, DType::kInt32}, std::pair{kF64, DType::kFloat64}}) {
    Tensor yb = run1({"Bernoulli", {xh}, {}, attrs({{"dtype", code}, {"seed", 1.f}})});
    EXPECT_EQ(yb.dtype(), dt);
    EXPECT_EQ(yb.to_double_vector(), run1({"Bernoulli", {xh}, {}, attrs({{"seed", 1.f}})}).to_double_vector());
  }
}

TEST(Multinomial, FrequenciesFollowTheSoftmax) {
  // Row 0: log-probabilities of (0.1, 0.2, 0.7) shifted by a constant; row 1: class 1 impossible.
  const float ninf = -INFINITY;
  Tensor x = Tensor::from_vector<float>({2, 3}, {std::log(0.1f) + 5, std::log(0.2f) + 5, std::log(0.7f) + 5,
                                                 0.f, ninf, 0.f});
  const int64_t s = 20000;
  Tensor y = run1({"Multinomial", {x}, {}, attrs({{"sample_size", s}, {"seed", 9.f}})});
  ASSERT_EQ(y.dtype(), DType::kInt32);
  ASSERT_EQ(y.dims(), (Dims{2, s}));
  const auto v = y.to_double_vector();
  const std::vector<double> want[2] = {{0.1, 0.2, 0.7}, {0.5, 0.0, 0.5}};
  for (int r = 0; r < 2; ++r) {
    for (int c = 0; c < 3; ++c) {
      const double n = static_cast<double>(std::count(v.begin() + r * s, v.begin() + (r + 1) * s, c));
      EXPECT_NEAR(n / static_cast<double>(s), want[r][static_cast<size_t>(c)], 0.015) << "row " << r << " class " << c;
    }
  }
  EXPECT_EQ(std::count(v.begin() + s, v.end(), 1.0), 0);  // never an impossible class
  // int64 output, float64 input, seeded repeat, default sample_size 1.
  Tensor y64 = run1({"Multinomial", {x.cast(DType::kFloat64)}, {}, attrs({{"sample_size", s}, {"seed", 9.f}, {"dtype", kI64}})});
  EXPECT_EQ(y64.dtype(), DType::kInt64);
  EXPECT_EQ(y64.to_double_vector(), v);
  EXPECT_EQ(run1({"Multinomial", {x}}).dims(), (Dims{2, 1}));
  // A +inf log-probability takes all the probability.
  Tensor xi = Tensor::from_vector<float>({1, 3}, {0.f, INFINITY, 100.f});
  const auto vi = run1({"Multinomial", {xi}, {}, attrs({{"sample_size", int64_t{50}}})}).to_double_vector();
  EXPECT_EQ(std::count(vi.begin(), vi.end(), 1.0), 50);
}

TEST(Random, Errors) {
  auto expect_error = [](const OpCall& call, const std::string& what, StatusCode code = StatusCode::kInvalidModel) {
    Status st = run_err(call);
    EXPECT_EQ(st.code(), code) << st.message();
    EXPECT_TRUE(contains(st.message(), call.op_type + "_node") && contains(st.message(), what)) << st.message();
  };
  expect_error({"RandomNormal", {}, {}, {}}, "'shape'");
  expect_error({"RandomNormal", {}, {}, attrs({{"shape", std::vector<int64_t>{2, -1}}})}, "negative");
  expect_error({"RandomNormal", {}, {}, attrs({{"shape", std::vector<int64_t>{2}}, {"dtype", kI32}})}, "int32");
  expect_error({"RandomUniform", {}, {}, attrs({{"shape", std::vector<int64_t>{2}}, {"dtype", kF8}})}, "FLOAT8E4M3FN",
               StatusCode::kUnsupported);
  expect_error({"RandomUniform", {}, {}, attrs({{"shape", std::vector<int64_t>{2}}, {"low", 2.f}, {"high", 1.f}})},
               "low 2");
  expect_error({"RandomNormalLike", {random_tensor(DType::kInt32, {2})}, {}, {}}, "int32");
  Tensor p = Tensor::from_vector<float>({3}, {0.2f, 1.5f, 0.1f});
  Status st = run_err({"Bernoulli", {p}});
  EXPECT_TRUE(contains(st.message(), "Bernoulli_node") && contains(st.message(), "1.5")) << st.message();
  expect_error({"Bernoulli", {random_tensor(DType::kInt32, {2})}}, "probabilities");
  expect_error({"Multinomial", {random_tensor(DType::kFloat32, {4})}}, "2-D");
  expect_error({"Multinomial", {random_tensor(DType::kFloat32, {1, 4})}, {}, attrs({{"sample_size", int64_t{0}}})},
               "sample_size 0");
  expect_error({"Multinomial", {random_tensor(DType::kFloat32, {1, 4})}, {}, attrs({{"dtype", kF32}})}, "int32 or int64");
  st = run_err({"Multinomial", {Tensor::from_vector<float>({1, 2}, {-INFINITY, -INFINITY})}});
  EXPECT_TRUE(contains(st.message(), "Multinomial_node") && contains(st.message(), "finite")) << st.message();
}

}  // namespace
}  // namespace kiln::test
