// QuantizeLinear, DequantizeLinear (per tensor, per axis, blocked) and DynamicQuantizeLinear,
// against naive references that locate each element's scale by its coordinates.
#include <cfenv>
#include <cmath>

#include "elementwise_test_util.hpp"
#include "nn_reference.hpp"

namespace kiln::test {
namespace {

// ONNX data type codes.
constexpr int64_t kU8 = 2, kI8 = 3, kU16 = 4, kI16 = 5, kI64 = 7, kI4 = 22;

Attributes qattrs(int64_t axis, int64_t block_size = 0, int64_t output_dtype = 0) {
  Attributes a;
  a.set("axis", axis);
  if (block_size) a.set("block_size", block_size);
  if (output_dtype) a.set("output_dtype", output_dtype);
  return a;
}

// The index in a scale / zero point of x's element `xi`: per tensor (one element), per axis, or
// blocked (the scale's coordinate along axis is the x coordinate / block_size).
int64_t param_index(const Dims& x, const Dims& p, const Dims& xi, int64_t axis, int64_t block) {
  if (numel_of(p) == 1 && block == 0) return 0;
  if (block == 0) return xi[static_cast<size_t>(axis)];
  Dims pi = xi;
  pi[static_cast<size_t>(axis)] /= block;
  (void)x;
  return offset_of(p, pi);
}

// clamp(nearbyint(x / scale) + zp) with the division in float (double for float64 / int32 x).
Tensor naive_quantize(const Tensor& x, const Tensor& scale, const Tensor& zp, DType out, int64_t axis, int64_t block) {
  const auto xv = x.to_double_vector(), sv = scale.to_double_vector(), zv = zp.to_double_vector();
  const bool wide = x.dtype() == DType::kFloat64 || x.dtype() == DType::kInt32;
  double lo = 0, hi = 0;
  dispatch_dtype(out, [&](auto tag) {
    using Q = typename decltype(tag)::type;
    lo = static_cast<double>(std::numeric_limits<Q>::lowest());
    hi = static_cast<double>(std::numeric_limits<Q>::max());
  });
  std::vector<double> y(xv.size());
  EXPECT_EQ(std::fegetround(), FE_TONEAREST);
  for_each_index(x.dims(), [&](const Dims& xi) {
    const size_t i = static_cast<size_t>(offset_of(x.dims(), xi));
    const double s = sv[static_cast<size_t>(param_index(x.dims(), scale.dims(), xi, axis, block))];
    const double z = zv[static_cast<size_t>(param_index(x.dims(), zp.dims(), xi, axis, block))];
    const double q = wide ? std::nearbyint(xv[i] / s) : std::nearbyint(static_cast<double>(static_cast<float>(xv[i]) / static_cast<float>(s)));
    y[i] = std::min(hi, std::max(lo, q + z));
  });
  return to_tensor(out, x.dims(), y);
}

Tensor naive_dequantize(const Tensor& x, const Tensor& scale, const Tensor& zp, int64_t axis, int64_t block) {
  const auto xv = x.to_double_vector(), sv = scale.to_double_vector(), zv = zp.to_double_vector();
  std::vector<double> y(xv.size());
  for_each_index(x.dims(), [&](const Dims& xi) {
    const size_t i = static_cast<size_t>(offset_of(x.dims(), xi));
    y[i] = (xv[i] - zv[static_cast<size_t>(param_index(x.dims(), zp.dims(), xi, axis, block))]) *
           sv[static_cast<size_t>(param_index(x.dims(), scale.dims(), xi, axis, block))];
  });
  return to_tensor(scale.dtype(), x.dims(), y);
}

// Positive scales with 2-3 significant digits.
Tensor random_scale(DType t, Dims dims, uint32_t seed) {
  Tensor s = random_tensor(DType::kFloat64, std::move(dims), seed, 0.01, 0.5);
  auto v = s.to_double_vector();
  for (double& e : v) e = std::round(e * 1000) / 1000;
  return to_tensor(t, s.dims(), v);
}

const std::vector<DType> kQuantTypes = {DType::kUInt8, DType::kInt8, DType::kUInt16, DType::kInt16};

TEST(QuantizeLinear, PerTensorEveryOutputType) {
  uint32_t seed = 10;
  for (DType q : kQuantTypes) {
    // Wide enough to saturate every type at both ends.
    Tensor x = random_tensor(DType::kFloat32, {3, 50}, seed++, -20000, 20000);
    Tensor s = random_scale(DType::kFloat32, {}, seed++);
    Tensor zp = random_tensor(q, {}, seed++, 0, 100);
    Tensor y = run1({"QuantizeLinear", {x, s, zp}});
    EXPECT_TRUE(tensors_close(y, naive_quantize(x, s, zp, q, 1, 0), 0, 0)) << dtype_name(q);
    // A 1-element 1-D scale is per tensor too.
    y = run1({"QuantizeLinear", {x, s.reshaped({1}), zp.reshaped({1})}});
    EXPECT_TRUE(tensors_close(y, naive_quantize(x, s, zp, q, 1, 0), 0, 0)) << dtype_name(q);
  }
}

TEST(QuantizeLinear, RoundsHalfToEvenAndSaturates) {
  Tensor x = Tensor::from_vector<float>({10}, {0.5f, 1.5f, 2.5f, -0.5f, -1.5f, -2.5f, 3.5f, 1000.f, -1000.f, 2.4999f});
  Tensor s = Tensor::scalar<float>(1.f);
  Tensor y = run1({"QuantizeLinear", {x, s, Tensor::scalar<int8_t>(0)}});
  EXPECT_EQ(y.to_double_vector(), (std::vector<double>{0, 2, 2, -0, -2, -2, 4, 127, -128, 2}));
  y = run1({"QuantizeLinear", {x, s, Tensor::scalar<uint8_t>(10)}});
  EXPECT_EQ(y.to_double_vector(), (std::vector<double>{10, 12, 12, 10, 8, 8, 14, 255, 0, 12}));
  // Ties after the division: 5 / 2 = 2.5 -> 2, 7 / 2 = 3.5 -> 4; then the zero point; int16 limits.
  Tensor x2 = Tensor::from_vector<float>({4}, {5.f, 7.f, 1e6f, -1e6f});
  y = run1({"QuantizeLinear", {x2, Tensor::scalar<float>(2.f), Tensor::scalar<int16_t>(-3)}});
  EXPECT_EQ(y.to_double_vector(), (std::vector<double>{-1, 1, 32767, -32768}));
  y = run1({"QuantizeLinear", {x2, Tensor::scalar<float>(2.f), Tensor::scalar<uint16_t>(1)}});
  EXPECT_EQ(y.to_double_vector(), (std::vector<double>{3, 5, 65535, 0}));
  // NaN quantizes to the zero point; infinities saturate.
  Tensor x3 = Tensor::from_vector<float>({3}, {std::nanf(""), INFINITY, -INFINITY});
  y = run1({"QuantizeLinear", {x3, s, Tensor::scalar<uint8_t>(7)}});
  EXPECT_EQ(y.to_double_vector(), (std::vector<double>{7, 255, 0}));
}

TEST(QuantizeLinear, PerAxisWithNegativeAxes) {
  Tensor x = random_tensor(DType::kFloat32, {2, 3, 4}, 20, -30, 30);
  for (int64_t axis : {0, 1, 2, -1, -3}) {
    const int64_t a = axis < 0 ? axis + 3 : axis;
    Tensor s = random_scale(DType::kFloat32, {x.dim(static_cast<int>(a))}, 21 + static_cast<uint32_t>(a));
    Tensor zp = random_tensor(DType::kInt8, {x.dim(static_cast<int>(a))}, 30, -10, 10);
    Tensor y = run1({"QuantizeLinear", {x, s, zp}, {}, qattrs(axis)});
    EXPECT_TRUE(tensors_close(y, naive_quantize(x, s, zp, DType::kInt8, a, 0), 0, 0)) << "axis " << axis;
  }
}

TEST(QuantizeLinear, Blocked) {
  Tensor x = random_tensor(DType::kFloat32, {4, 6, 2}, 40, -30, 30);
  // axis 1, block 4: ceil(6 / 4) = 2 scales along it (the last block is partial).
  Tensor s = random_scale(DType::kFloat32, {4, 2, 2}, 41);
  Tensor zp = random_tensor(DType::kUInt8, {4, 2, 2}, 42, 100, 150);
  Tensor y = run1({"QuantizeLinear", {x, s, zp}, {}, qattrs(1, 4)});
  EXPECT_TRUE(tensors_close(y, naive_quantize(x, s, zp, DType::kUInt8, 1, 4), 0, 0));
  // axis -3 (0), block 2.
  Tensor s0 = random_scale(DType::kFloat32, {2, 6, 2}, 43);
  Tensor zp0 = random_tensor(DType::kInt16, {2, 6, 2}, 44, -100, 100);
  y = run1({"QuantizeLinear", {x, s0, zp0}, {}, qattrs(-3, 2)});
  EXPECT_TRUE(tensors_close(y, naive_quantize(x, s0, zp0, DType::kInt16, 0, 2), 0, 0));
}

TEST(QuantizeLinear, OutputDtypeAndInputTypes) {
  Tensor x = random_tensor(DType::kFloat32, {20}, 50, -300, 300);
  Tensor s = Tensor::scalar<float>(1.5f);
  // No zero point: uint8 by default, or the output_dtype attribute, with zero point 0.
  Tensor y = run1({"QuantizeLinear", {x, s}});
  EXPECT_TRUE(tensors_close(y, naive_quantize(x, s, Tensor::scalar<uint8_t>(0), DType::kUInt8, 1, 0), 0, 0));
  for (auto [code, t] : {std::pair{kI8, DType::kInt8}, std::pair{kU16, DType::kUInt16}, std::pair{kI16, DType::kInt16}}) {
    y = run1({"QuantizeLinear", {x, s}, {}, qattrs(1, 0, code)});
    EXPECT_TRUE(tensors_close(y, naive_quantize(x, s, Tensor::scalar<int8_t>(0), t, 1, 0), 0, 0)) << code;
  }
  // Matching output_dtype and zero point.
  y = run1({"QuantizeLinear", {x, s, Tensor::scalar<int8_t>(3)}, {}, qattrs(1, 0, kI8)});
  EXPECT_TRUE(tensors_close(y, naive_quantize(x, s, Tensor::scalar<int8_t>(3), DType::kInt8, 1, 0), 0, 0));
  // float16 / bfloat16 / float64 / int32 inputs with a scale of the same type (int32 with float).
  uint32_t seed = 51;
  for (DType t : {DType::kFloat16, DType::kBFloat16, DType::kFloat64}) {
    Tensor xt = random_tensor(t, {3, 7}, seed++, -100, 100);
    Tensor st = random_scale(t, {7}, seed++);
    Tensor zp = random_tensor(DType::kInt8, {7}, seed++, -5, 5);
    y = run1({"QuantizeLinear", {xt, st, zp}, {}, qattrs(-1)});
    EXPECT_TRUE(tensors_close(y, naive_quantize(xt, st, zp, DType::kInt8, 1, 0), 0, 0)) << dtype_name(t);
  }
  Tensor xi = random_tensor(DType::kInt32, {30}, seed++, -2000, 2000);
  y = run1({"QuantizeLinear", {xi, Tensor::scalar<float>(8.f), Tensor::scalar<int8_t>(1)}});
  EXPECT_TRUE(tensors_close(y, naive_quantize(xi, Tensor::scalar<float>(8.f), Tensor::scalar<int8_t>(1), DType::kInt8, 1, 0), 0, 0));
  // int32 x with an int32 scale (opset 19+): 12 / 8 = 1.5 -> 2, -20 / 8 = -2.5 -> -2.
  y = run1({"QuantizeLinear", {Tensor::from_vector<int32_t>({2}, {12, -20}), Tensor::scalar<int32_t>(8)}, {}, qattrs(1, 0, kI8)});
  EXPECT_EQ(y.to_double_vector(), (std::vector<double>{2, -2}));
}

TEST(QuantizeLinear, Errors) {
  Tensor x = random_tensor(DType::kFloat32, {2, 3});
  Tensor s = Tensor::scalar<float>(0.5f);
  auto expect_error = [](const OpCall& call, const std::string& what, StatusCode code = StatusCode::kInvalidModel) {
    Status st = run_err(call);
    EXPECT_EQ(st.code(), code) << st.message();
    EXPECT_TRUE(contains(st.message(), call.op_type + "_node") && contains(st.message(), what)) << st.message();
  };
  // The zero point's dtype must match output_dtype.
  expect_error({"QuantizeLinear", {x, s, Tensor::scalar<uint8_t>(0)}, {}, qattrs(1, 0, kI8)}, "output_dtype");
  expect_error({"QuantizeLinear", {x, s}, {}, qattrs(1, 0, kI64)}, "int64");
  expect_error({"QuantizeLinear", {x, s}, {}, qattrs(1, 0, kI4)}, "INT4", StatusCode::kUnsupported);
  expect_error({"QuantizeLinear", {x, s}, {}, qattrs(1, 0, 99)}, "99");
  expect_error({"QuantizeLinear", {x, s, Tensor::scalar<int32_t>(0)}}, "int32");
  expect_error({"QuantizeLinear", {random_tensor(DType::kInt8, {2}), s}}, "x must be");
  expect_error({"QuantizeLinear", {x, Tensor::scalar<int32_t>(1)}}, "y_scale");
  // Per-axis scale of the wrong size; axis out of range; blocked scale of the wrong shape.
  expect_error({"QuantizeLinear", {x, random_scale(DType::kFloat32, {2}, 1)}}, "x.shape[1] = 3");
  expect_error({"QuantizeLinear", {x, random_scale(DType::kFloat32, {3}, 1)}, {}, qattrs(2)}, "axis 2");
  expect_error({"QuantizeLinear", {x, random_scale(DType::kFloat32, {2, 3}, 1)}}, "per axis");
  expect_error({"QuantizeLinear", {x, random_scale(DType::kFloat32, {2, 3}, 1)}, {}, qattrs(1, 2)}, "block_size 2");
  expect_error({"QuantizeLinear", {x, random_scale(DType::kFloat32, {2}, 1)}, {}, qattrs(1, 2)}, "rank");
  expect_error({"QuantizeLinear", {x, s}, {}, qattrs(1, -1)}, "block_size -1");
  // Scale and zero point of different granularities.
  expect_error({"QuantizeLinear", {x, s, random_tensor(DType::kUInt8, {3}, 1, 0, 9)}}, "same shape");
  Attributes sat;
  sat.set("saturate", int64_t{2});
  expect_error({"QuantizeLinear", {x, s}, {}, sat}, "saturate");
  // DequantizeLinear: zero point and x must share a dtype.
  Tensor q = random_tensor(DType::kUInt8, {2, 3}, 3, 0, 255);
  expect_error({"DequantizeLinear", {q, s, Tensor::scalar<int8_t>(0)}}, "x_zero_point is int8 but x is uint8");
  expect_error({"DequantizeLinear", {x, s}}, "x must be");
  expect_error({"DequantizeLinear", {q, Tensor::scalar<uint8_t>(1)}}, "x_scale");
  expect_error({"DequantizeLinear", {q, random_scale(DType::kFloat32, {4}, 1)}}, "x.shape[1] = 3");
  expect_error({"DequantizeLinear", {q, random_scale(DType::kFloat32, {3}, 1), Tensor::scalar<uint8_t>(0)}}, "same shape");
  expect_error({"DynamicQuantizeLinear", {random_tensor(DType::kFloat64, {3})}, {}, {}, 3}, "float32");
}

TEST(DequantizeLinear, AllGranularitiesAndTypes) {
  uint32_t seed = 60;
  for (DType q : {DType::kUInt8, DType::kInt8, DType::kUInt16, DType::kInt16, DType::kInt32}) {
    const double lo = q == DType::kInt32 ? -1e6 : (is_signed_integer(q) ? -100 : 0);
    Tensor x = random_tensor(q, {3, 4, 5}, seed++, lo, 200);
    for (DType st : {DType::kFloat32, DType::kFloat16, DType::kFloat64, DType::kBFloat16}) {
      // Per tensor.
      Tensor s = random_scale(st, {}, seed++);
      Tensor zp = random_tensor(q, {}, seed++, 0, 50);
      Tensor y = run1({"DequantizeLinear", {x, s, zp}});
      EXPECT_TRUE(tensors_close(y, naive_dequantize(x, s, zp, 1, 0), rtol_for(st), 1e-6)) << dtype_name(q);
      // Per axis (axis -1) without a zero point.
      Tensor sa = random_scale(st, {5}, seed++);
      y = run1({"DequantizeLinear", {x, sa}, {}, qattrs(-1)});
      EXPECT_TRUE(tensors_close(y, naive_dequantize(x, sa, Tensor::zeros(q, {}), 2, 0), rtol_for(st), 1e-6));
      // Blocked along axis 1, block 3 (2 blocks, the last partial).
      Tensor sb = random_scale(st, {3, 2, 5}, seed++);
      Tensor zb = random_tensor(q, {3, 2, 5}, seed++, 0, 50);
      y = run1({"DequantizeLinear", {x, sb, zb}, {}, qattrs(1, 3)});
      EXPECT_TRUE(tensors_close(y, naive_dequantize(x, sb, zb, 1, 3), rtol_for(st), 1e-6));
    }
  }
}

TEST(QuantizeLinear, DequantizeRoundTripIsWithinHalfAScale) {
  Tensor x = random_tensor(DType::kFloat32, {4, 8}, 70, -1, 1);
  Tensor s = random_scale(DType::kFloat32, {8}, 71);
  Tensor zp = random_tensor(DType::kInt8, {8}, 72, -3, 3);
  Tensor q = run1({"QuantizeLinear", {x, s, zp}});
  Tensor back = run1({"DequantizeLinear", {q, s, zp}});
  auto xv = x.to_double_vector(), bv = back.to_double_vector(), sv = s.to_double_vector();
  for (size_t i = 0; i < xv.size(); ++i) EXPECT_LE(std::abs(xv[i] - bv[i]), sv[i % 8] / 2 + 1e-6) << i;
}

TEST(DynamicQuantizeLinear, ScaleZeroPointAndValues) {
  auto check = [](const std::vector<float>& xs, float want_scale, int want_zp) {
    Tensor x = Tensor::from_vector<float>({static_cast<int64_t>(xs.size())}, xs);
    auto r = run_op({"DynamicQuantizeLinear", {x}, {}, {}, 3});
    ASSERT_TRUE(r.ok()) << r.status().message();
    const float scale = (*r)[1].data<float>()[0];
    const int zp = (*r)[2].data<uint8_t>()[0];
    EXPECT_NEAR(scale, want_scale, 1e-9);
    EXPECT_EQ(zp, want_zp);
    EXPECT_EQ((*r)[1].rank(), 0);
    std::vector<double> y;
    for (float v : xs) y.push_back(std::min(255.0, std::max(0.0, std::nearbyint(static_cast<double>(v / scale)) + zp)));
    EXPECT_EQ((*r)[0].to_double_vector(), y);
  };
  // The ONNX spec's examples: the range always includes 0.
  check({0, 2, -3, -2.5f, 1.34f, 0.5f}, 0.0196078438f, 153);
  check({-1.0f, -2.1f, -1.3f, -2.5f, -3.34f, -4.0f}, 0.0156862754f, 255);
  check({1, 2.1f, 1.3f, 2.5f, 3.34f, 4.0f, 1.5f, 2.6f, 3.9f, 4.0f, 3.0f, 2.345f}, 0.0156862754f, 0);
  // All zeros: an empty range gives scale 1 and zeros.
  check({0, 0, 0}, 1.f, 0);
}

}  // namespace
}  // namespace kiln::test
