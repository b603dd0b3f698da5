// Unary math ops against std:: math in double, for every float dtype (and ints where allowed).
#include "elementwise_test_util.hpp"

namespace kiln::test {
namespace {

struct UnaryCase {
  const char* op;
  double (*ref)(double);
  double lo, hi;  // input range inside the op's domain
};

const UnaryCase kFloatCases[] = {
    {"Abs", [](double x) { return std::fabs(x); }, -3, 3},
    {"Neg", [](double x) { return -x; }, -3, 3},
    {"Exp", [](double x) { return std::exp(x); }, -3, 3},
    {"Log", [](double x) { return std::log(x); }, 0.05, 5},
    {"Sqrt", [](double x) { return std::sqrt(x); }, 0, 5},
    {"Reciprocal", [](double x) { return 1 / x; }, 0.2, 4},
    {"Floor", [](double x) { return std::floor(x); }, -5, 5},
    {"Ceil", [](double x) { return std::ceil(x); }, -5, 5},
    {"Round", [](double x) { return std::nearbyint(x); }, -5, 5},
    {"Sign", [](double x) { return x > 0 ? 1.0 : (x < 0 ? -1.0 : 0.0); }, -3, 3},
    {"Sin", [](double x) { return std::sin(x); }, -3, 3},
    {"Cos", [](double x) { return std::cos(x); }, -3, 3},
    {"Tan", [](double x) { return std::tan(x); }, -1.2, 1.2},
    {"Asin", [](double x) { return std::asin(x); }, -0.99, 0.99},
    {"Acos", [](double x) { return std::acos(x); }, -0.99, 0.99},
    {"Atan", [](double x) { return std::atan(x); }, -4, 4},
    {"Sinh", [](double x) { return std::sinh(x); }, -3, 3},
    {"Cosh", [](double x) { return std::cosh(x); }, -3, 3},
    {"Asinh", [](double x) { return std::asinh(x); }, -4, 4},
    {"Acosh", [](double x) { return std::acosh(x); }, 1.01, 5},
    {"Atanh", [](double x) { return std::atanh(x); }, -0.95, 0.95},
    {"Erf", [](double x) { return std::erf(x); }, -2.5, 2.5},
};

TEST(UnaryMath, FloatOpsMatchReferenceForEveryFloatDtype) {
  uint32_t seed = 100;
  for (const UnaryCase& c : kFloatCases) {
    for (DType dt : float_dtypes()) {
      Tensor x = random_tensor(dt, {3, 17}, seed++, c.lo, c.hi);
      Tensor y = run1({c.op, {x}});
      Tensor want = naive_map({3, 17}, {x}, dt, [&](const std::vector<double>& v) { return c.ref(v[0]); });
      EXPECT_TRUE(tensors_close(y, want, rtol_for(dt), atol_for(dt))) << c.op << " " << dtype_name(dt);
    }
  }
}

TEST(UnaryMath, RoundIsHalfToEvenAndKeepsSpecialValues) {
  Tensor x = Tensor::from_vector<float>({9}, {0.5f, 1.5f, 2.5f, -0.5f, -1.5f, -2.5f, 2.4f, -2.6f, INFINITY});
  Tensor y = run1({"Round", {x}});
  EXPECT_EQ(y.to_double_vector(), (std::vector<double>{0, 2, 2, -0., -2, -2, 2, -3, INFINITY}));
  EXPECT_TRUE(std::signbit(y.data<float>()[3]));
  Tensor h = Tensor::from_vector<Half>({2}, {Half(2.5f), Half(3.5f)});
  EXPECT_TRUE(tensors_close(run1({"Round", {h}}), Tensor::from_vector<Half>({2}, {Half(2.f), Half(4.f)}), 0, 0));
}

TEST(UnaryMath, IntegerAbsNegSignWrapAtTheLimits) {
  Tensor x = Tensor::from_vector<int32_t>({5}, {-7, 0, 9, INT32_MIN, INT32_MAX});
  EXPECT_TRUE(tensors_close(run1({"Abs", {x}}),
                            Tensor::from_vector<int32_t>({5}, {7, 0, 9, INT32_MIN, INT32_MAX}), 0, 0));
  EXPECT_TRUE(tensors_close(run1({"Neg", {x}}),
                            Tensor::from_vector<int32_t>({5}, {7, 0, -9, INT32_MIN, -INT32_MAX}), 0, 0));
  EXPECT_TRUE(tensors_close(run1({"Sign", {x}}), Tensor::from_vector<int32_t>({5}, {-1, 0, 1, -1, 1}), 0, 0));
  for (DType dt : int_dtypes()) {
    Tensor r = random_tensor(dt, {20}, 5, is_signed_integer(dt) ? -100 : 0, 100);
    EXPECT_TRUE(tensors_close(run1({"Abs", {r}}),
                              naive_map({20}, {r}, dt, [](const std::vector<double>& v) { return std::fabs(v[0]); })))
        << dtype_name(dt);
    EXPECT_TRUE(tensors_close(run1({"Sign", {r}}),
                              naive_map({20}, {r}, dt, [](const std::vector<double>& v) {
                                return v[0] > 0 ? 1.0 : (v[0] < 0 ? -1.0 : 0.0);
                              })))
        << dtype_name(dt);
  }
  Tensor u = Tensor::from_vector<uint8_t>({2}, {1, 2});
  EXPECT_EQ(run_err({"Neg", {u}}).code(), StatusCode::kUnsupported);  // Neg has no unsigned form
}

TEST(UnaryMath, ErfOfIntegersTruncates) {
  Tensor x = Tensor::from_vector<int32_t>({4}, {-3, 0, 1, 5});
  // erf(1) = 0.84 -> 0; erf(+-3) = +-0.99998 -> 0; the ONNX reference casts the same way.
  EXPECT_TRUE(tensors_close(run1({"Erf", {x}}), Tensor::from_vector<int32_t>({4}, {0, 0, 0, 0}), 0, 0));
}

TEST(UnaryMath, NaNAndInfHandling) {
  const float nan = std::nanf("");
  Tensor x = Tensor::from_vector<float>({6}, {1.f, nan, INFINITY, -INFINITY, -0.f, -nan});
  Tensor isnan = run1({"IsNaN", {x}});
  ASSERT_EQ(isnan.dtype(), DType::kBool);
  EXPECT_EQ(isnan.to_double_vector(), (std::vector<double>{0, 1, 0, 0, 0, 1}));
  EXPECT_EQ(run1({"IsInf", {x}}).to_double_vector(), (std::vector<double>{0, 0, 1, 1, 0, 0}));
  Attributes pos_only;
  pos_only.set("detect_negative", int64_t{0});
  EXPECT_EQ(run1({"IsInf", {x}, {}, pos_only}).to_double_vector(), (std::vector<double>{0, 0, 1, 0, 0, 0}));
  Attributes neg_only;
  neg_only.set("detect_positive", int64_t{0});
  EXPECT_EQ(run1({"IsInf", {x}, {}, neg_only}).to_double_vector(), (std::vector<double>{0, 0, 0, 1, 0, 0}));
  Tensor h = Tensor::from_vector<Half>({3}, {Half(nan), Half(INFINITY), Half(2.f)});
  EXPECT_EQ(run1({"IsNaN", {h}}).to_double_vector(), (std::vector<double>{1, 0, 0}));
  EXPECT_EQ(run1({"IsInf", {h}}).to_double_vector(), (std::vector<double>{0, 1, 0}));
  EXPECT_TRUE(std::isnan(run1({"Sqrt", {Tensor::from_vector<float>({1}, {-1.f})}}).data<float>()[0]));
  EXPECT_TRUE(std::isnan(run1({"Abs", {Tensor::from_vector<float>({1}, {nan})}}).data<float>()[0]));
}

TEST(UnaryMath, SymbolicShapeIsKeptAtImport) {
  auto g = std::make_shared<Graph>();
  Value* x = g->add_value("x", {DType::kFloat16, Shape({Dim::symbolic("n"), Dim(4)})});
  Value* y = g->add_value("y");
  Value* z = g->add_value("z");
  g->inputs = {x};
  g->add_node("Exp", {x}, {y}, "e", "", 13);
  g->add_node("IsNaN", {y}, {z}, "n", "", 13);
  g->outputs = {z};
  ASSERT_TRUE(infer_shapes(*g).ok());
  EXPECT_EQ(y->type.to_string(), "float16[n,4]");
  EXPECT_EQ(z->type.to_string(), "bool[n,4]");
}

TEST(UnaryMath, Errors) {
  Tensor i = Tensor::from_vector<int32_t>({2}, {1, 4});
  Status st = run_err({"Sqrt", {i}});
  EXPECT_EQ(st.code(), StatusCode::kUnsupported);
  EXPECT_TRUE(contains(st.message(), "Sqrt_node")) << st.message();
  EXPECT_TRUE(contains(st.message(), "int32")) << st.message();
  Attributes bad;
  bad.set("detect_negative", int64_t{2});
  st = run_err({"IsInf", {Tensor::from_vector<float>({1}, {1.f})}, {}, bad});
  EXPECT_TRUE(contains(st.message(), "IsInf_node")) << st.message();
  EXPECT_TRUE(contains(st.message(), "detect_negative")) << st.message();
  st = run_err({"Abs", {Tensor::from_vector<float>({1}, {1.f}), Tensor::from_vector<float>({1}, {1.f})}});
  EXPECT_TRUE(contains(st.message(), "Abs_node")) << st.message();
}

}  // namespace
}  // namespace kiln::test
