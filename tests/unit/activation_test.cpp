// Activation ops against their formulas in double, with attributes, for every float dtype.
#include "elementwise_test_util.hpp"

namespace kiln::test {
namespace {

double sigmoid(double x) { return 1 / (1 + std::exp(-x)); }
double softplus(double x) { return std::log(1 + std::exp(x)); }

Attributes floats(std::initializer_list<std::pair<const char*, float>> kv) {
  Attributes a;
  for (const auto& [k, v] : kv) a.set(k, v);
  return a;
}

// Attributes are float32, so references use the float values (0.3f, not 0.3).
struct ActCase {
  const char* op;
  Attributes attrs;
  std::function<double(double)> ref;
};

std::vector<ActCase> cases() {
  return {
      {"Relu", {}, [](double x) { return std::max(x, 0.0); }},
      {"LeakyRelu", {}, [](double x) { return x < 0 ? double(0.01f) * x : x; }},
      {"LeakyRelu", floats({{"alpha", 0.3f}}), [](double x) { return x < 0 ? double(0.3f) * x : x; }},
      {"Sigmoid", {}, sigmoid},
      {"HardSigmoid", {}, [](double x) { return std::clamp(double(0.2f) * x + 0.5, 0.0, 1.0); }},
      {"HardSigmoid", floats({{"alpha", 0.5f}, {"beta", 0.25f}}),
       [](double x) { return std::clamp(0.5 * x + 0.25, 0.0, 1.0); }},
      {"HardSwish", {}, [](double x) { return x * std::clamp(x / 6 + 0.5, 0.0, 1.0); }},
      {"Tanh", {}, [](double x) { return std::tanh(x); }},
      {"Elu", {}, [](double x) { return x < 0 ? std::exp(x) - 1 : x; }},
      {"Elu", floats({{"alpha", 2.f}}), [](double x) { return x < 0 ? 2 * (std::exp(x) - 1) : x; }},
      {"Selu", {}, [](double x) {
         const double a = 1.67326319217681884765625, g = 1.05070102214813232421875;
         return x <= 0 ? g * (a * std::exp(x) - a) : g * x;
       }},
      {"Selu", floats({{"alpha", 2.f}, {"gamma", 3.f}}),
       [](double x) { return x <= 0 ? 3 * (2 * std::exp(x) - 2) : 3 * x; }},
      {"Celu", {}, [](double x) { return std::max(0.0, x) + std::min(0.0, std::exp(x) - 1); }},
      {"Celu", floats({{"alpha", 2.f}}),
       [](double x) { return std::max(0.0, x) + std::min(0.0, 2 * (std::exp(x / 2) - 1)); }},
      {"Softplus", {}, softplus},
      {"Softsign", {}, [](double x) { return x / (1 + std::fabs(x)); }},
      {"ThresholdedRelu", {}, [](double x) { return x > 1 ? x : 0; }},
      {"ThresholdedRelu", floats({{"alpha", 0.5f}}), [](double x) { return x > 0.5 ? x : 0; }},
      {"Mish", {}, [](double x) { return x * std::tanh(softplus(x)); }},
      {"Gelu", {}, [](double x) { return 0.5 * x * (1 + std::erf(x / std::sqrt(2.0))); }},
      {"Shrink", {}, [](double x) { return x < -0.5 ? x : (x > 0.5 ? x : 0); }},
      {"Shrink", floats({{"lambd", 1.f}, {"bias", 0.25f}}),
       [](double x) { return x < -1 ? x + 0.25 : (x > 1 ? x - 0.25 : 0); }},
  };
}

TEST(Activation, MatchesFormulasForEveryFloatDtype) {
  uint32_t seed = 300;
  for (const ActCase& c : cases()) {
    for (DType dt : float_dtypes()) {
      Tensor x = random_tensor(dt, {4, 25}, seed++, -4, 4);
      Tensor y = run1({c.op, {x}, {}, c.attrs});
      Tensor want = naive_map({4, 25}, {x}, dt, [&](const std::vector<double>& v) { return c.ref(v[0]); });
      EXPECT_TRUE(tensors_close(y, want, rtol_for(dt), atol_for(dt))) << c.op << " " << dtype_name(dt);
    }
  }
}

TEST(Activation, GeluTanhApproximation) {
  Attributes a;
  a.set("approximate", std::string("tanh"));
  Tensor x = random_tensor(DType::kFloat32, {50}, 9, -5, 5);
  Tensor want = naive_map({50}, {x}, DType::kFloat32, [](const std::vector<double>& v) {
    double t = v[0];
    return 0.5 * t * (1 + std::tanh(std::sqrt(2 / M_PI) * (t + 0.044715 * t * t * t)));
  });
  EXPECT_TRUE(tensors_close(run1({"Gelu", {x}, {}, a}), want, 1e-5, 1e-6));
}

TEST(Activation, ExtremeInputsStayFinite) {
  Tensor x = Tensor::from_vector<float>({4}, {-1000.f, 1000.f, -90.f, 90.f});
  Tensor s = run1({"Sigmoid", {x}});
  EXPECT_EQ(s.data<float>()[0], 0.f);
  EXPECT_EQ(s.data<float>()[1], 1.f);
  EXPECT_TRUE(s.data<float>()[2] >= 0.f && s.data<float>()[2] < 1e-30f);
  EXPECT_EQ(s.data<float>()[3], 1.f);
  Tensor sp = run1({"Softplus", {x}});
  EXPECT_EQ(sp.data<float>()[0], 0.f);
  EXPECT_EQ(sp.data<float>()[1], 1000.f);
  Tensor m = run1({"Mish", {x}});
  EXPECT_EQ(m.data<float>()[1], 1000.f);
}

TEST(Activation, IntegerReluAndShrink) {
  Tensor x = Tensor::from_vector<int32_t>({5}, {-3, -1, 0, 1, 3});
  EXPECT_EQ(run1({"Relu", {x}}).to_double_vector(), (std::vector<double>{0, 0, 0, 1, 3}));
  Attributes a = floats({{"lambd", 1.5f}, {"bias", 1.5f}});
  // ONNX reference: where(x < -1.5, x + 1.5, where(x > 1.5, x - 1.5, 0)), cast back to int.
  EXPECT_EQ(run1({"Shrink", {x}, {}, a}).to_double_vector(), (std::vector<double>{-1, 0, 0, 0, 1}));
  Tensor u = Tensor::from_vector<uint8_t>({3}, {1, 2, 3});
  EXPECT_EQ(run_err({"Relu", {u}}).code(), StatusCode::kUnsupported);
}

TEST(Activation, ClipWithOptionalBoundsAndAllNumericDtypes) {
  Tensor x = Tensor::from_vector<float>({6}, {-3.f, -1.f, 0.f, 0.5f, 2.f, std::nanf("")});
  Tensor lo = Tensor::scalar<float>(-1.5f), hi = Tensor::scalar<float>(1.f);
  auto v = run1({"Clip", {x, lo, hi}}).to_double_vector();
  EXPECT_EQ(std::vector<double>(v.begin(), v.begin() + 5), (std::vector<double>{-1.5, -1, 0, 0.5, 1}));
  EXPECT_TRUE(std::isnan(v[5]));
  v = run1({"Clip", {x, Tensor(), hi}}).to_double_vector();  // min absent
  EXPECT_EQ(std::vector<double>(v.begin(), v.begin() + 5), (std::vector<double>{-3, -1, 0, 0.5, 1}));
  v = run1({"Clip", {x, lo}}).to_double_vector();  // max absent
  EXPECT_EQ(std::vector<double>(v.begin(), v.begin() + 5), (std::vector<double>{-1.5, -1, 0, 0.5, 2}));
  // min > max: everything becomes max.
  v = run1({"Clip", {x, Tensor::scalar<float>(2.f), Tensor::scalar<float>(1.f)}}).to_double_vector();
  EXPECT_EQ(std::vector<double>(v.begin(), v.begin() + 5), (std::vector<double>(5, 1.0)));
  for (DType dt : int_dtypes()) {
    Tensor xi = random_tensor(dt, {30}, 3, 0, 100);
    Tensor l = Tensor::from_vector<int64_t>({}, {20}).cast(dt), h = Tensor::from_vector<int64_t>({1}, {70}).cast(dt);
    Tensor want = naive_map({30}, {xi}, dt, [](const std::vector<double>& a) { return std::clamp(a[0], 20.0, 70.0); });
    EXPECT_TRUE(tensors_close(run1({"Clip", {xi, l, h}, {false, true, true}}), want, 0, 0)) << dtype_name(dt);
  }
  Tensor xh = random_tensor(DType::kFloat16, {30}, 4);
  Tensor want = naive_map({30}, {xh}, DType::kFloat16,
                          [](const std::vector<double>& a) { return std::clamp(a[0], -0.5, 0.5); });
  EXPECT_TRUE(tensors_close(run1({"Clip", {xh, Tensor::scalar(Half(-0.5f)), Tensor::scalar(Half(0.5f))}}), want, 0, 0));
}

TEST(Activation, PReluBroadcastsSlope) {
  for (DType dt : {DType::kFloat32, DType::kFloat16, DType::kInt32, DType::kInt64}) {
    Tensor x = random_tensor(dt, {2, 3, 4}, 21, -10, 10);
    for (Dims sd : {Dims{3, 1}, Dims{4}, Dims{}, Dims{2, 3, 4}, Dims{1, 3, 1}}) {
      Tensor slope = random_tensor(dt, sd, 22, -3, 3);
      Tensor want = naive_map({2, 3, 4}, {x, slope}, dt,
                              [](const std::vector<double>& v) { return v[0] < 0 ? v[0] * v[1] : v[0]; });
      EXPECT_TRUE(tensors_close(run1({"PRelu", {x, slope}}), want, rtol_for(dt), atol_for(dt)))
          << dtype_name(dt) << " slope " << dims_to_string(sd);
    }
  }
}

TEST(Activation, Errors) {
  Tensor x = random_tensor(DType::kFloat32, {2, 3});
  Attributes gelu;
  gelu.set("approximate", std::string("erf"));
  Status st = run_err({"Gelu", {x}, {}, gelu});
  EXPECT_TRUE(contains(st.message(), "Gelu_node") && contains(st.message(), "approximate")) << st.message();
  st = run_err({"Celu", {x}, {}, floats({{"alpha", 0.f}})});
  EXPECT_TRUE(contains(st.message(), "Celu_node") && contains(st.message(), "alpha")) << st.message();
  // PRelu's slope must broadcast to X without growing it.
  st = run_err({"PRelu", {x, random_tensor(DType::kFloat32, {4, 2, 3})}});
  EXPECT_TRUE(contains(st.message(), "PRelu_node")) << st.message();
  st = run_err({"PRelu", {x, random_tensor(DType::kFloat32, {2})}});
  EXPECT_TRUE(contains(st.message(), "PRelu_node")) << st.message();
  // Clip bounds must be scalars of the input's dtype.
  st = run_err({"Clip", {x, random_tensor(DType::kFloat32, {2})}});
  EXPECT_TRUE(contains(st.message(), "Clip_node") && contains(st.message(), "scalar")) << st.message();
  st = run_err({"Clip", {x, Tensor::scalar<double>(0.0)}});
  EXPECT_TRUE(contains(st.message(), "Clip_node") && contains(st.message(), "float64")) << st.message();
  EXPECT_EQ(run_err({"Sigmoid", {Tensor::from_vector<int32_t>({1}, {1})}}).code(), StatusCode::kUnsupported);
}

}  // namespace
}  // namespace kiln::test
