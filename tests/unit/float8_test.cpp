// float8 E4M3FN: the conversions (every code, rounding, saturation, NaN), the dtype in tensors and
// the ONNX importer, and QuantizeLinear/DequantizeLinear to and from float8 on the CPU.
#include <cmath>
#include <limits>

#include "onnx/proto_tensor.hpp"
#include "op_test_util.hpp"

namespace kiln::test {
namespace {

// The value of code `b` from its fields, independently of e4m3fn_bits_to_float.
double e4m3_value(int b) {
  const int sign = b & 0x80 ? -1 : 1, exp = (b >> 3) & 15, mant = b & 7;
  if (exp == 0) return sign * std::ldexp(mant, -9);
  return sign * std::ldexp(8 + mant, exp - 10);  // (1 + mant/8) * 2^(exp-7)
}

TEST(Float8E4M3FN, EveryCodeDecodesAndRoundTrips) {
  for (int b = 0; b < 256; ++b) {
    const float f = e4m3fn_bits_to_float(static_cast<uint8_t>(b));
    if ((b & 0x7f) == 0x7f) {
      EXPECT_TRUE(std::isnan(f)) << b;
      EXPECT_EQ(float_to_e4m3fn_bits(f) & 0x7f, 0x7f) << b;
      continue;
    }
    EXPECT_EQ(static_cast<double>(f), e4m3_value(b)) << b;
    EXPECT_EQ(std::signbit(f), (b & 0x80) != 0) << b;  // -0 too
    EXPECT_EQ(float_to_e4m3fn_bits(f), b) << b;
    EXPECT_EQ(float_to_e4m3fn_bits(f, /*saturate=*/false), b) << b;
  }
  EXPECT_EQ(e4m3fn_bits_to_float(0x7e), 448.f);
  EXPECT_EQ(e4m3fn_bits_to_float(0x01), std::ldexp(1.f, -9));
  EXPECT_EQ(e4m3fn_bits_to_float(0x08), std::ldexp(1.f, -6));
}

// Rounding to nearest even against a brute-force search over the finite codes.
TEST(Float8E4M3FN, RoundsToNearestEven) {
  auto nearest = [](float x) {
    int best = 0;
    double best_err = 1e300;
    for (int b = 0; b < 256; ++b) {
      if ((b & 0x7f) == 0x7f || (b & 0x80) != (std::signbit(x) ? 0x80 : 0)) continue;
      const double err = std::fabs(e4m3_value(b) - static_cast<double>(x));
      // Ties go to the even mantissa (an even code: the last mantissa bit clear).
      if (err < best_err || (err == best_err && (b & 1) == 0)) {
        best = b;
        best_err = err;
      }
    }
    return best;
  };
  std::mt19937 rng(5);
  std::uniform_real_distribution<double> exp(-12, 9), mant(1, 2);
  for (int i = 0; i < 20000; ++i) {
    float x = static_cast<float>(mant(rng) * std::exp2(std::floor(exp(rng))));
    if (i % 2) x = -x;
    if (std::fabs(x) > 448.f) continue;
    ASSERT_EQ(float_to_e4m3fn_bits(x), nearest(x)) << x;
  }
  // Midpoints between neighbours: ties to even, in the normal and subnormal ranges.
  for (int b = 0; b < 0x7e; ++b) {
    const float mid = static_cast<float>((e4m3_value(b) + e4m3_value(b + 1)) / 2);
    const int even = (b & 1) ? b + 1 : b;
    EXPECT_EQ(float_to_e4m3fn_bits(mid), even) << mid;
    EXPECT_EQ(float_to_e4m3fn_bits(-mid), even | 0x80) << -mid;
    EXPECT_EQ(float_to_e4m3fn_bits(std::nextafter(mid, 0.f)), b) << mid;
    EXPECT_EQ(float_to_e4m3fn_bits(std::nextafter(mid, 1e9f)), b + 1) << mid;
  }
  EXPECT_EQ(float_to_e4m3fn_bits(std::ldexp(1.f, -10)), 0);         // half the smallest subnormal: to 0
  EXPECT_EQ(float_to_e4m3fn_bits(std::ldexp(1.1f, -10)), 1);        // above it: the smallest subnormal
  EXPECT_EQ(float_to_e4m3fn_bits(std::ldexp(1.f, -30)), 0);
  EXPECT_EQ(float_to_e4m3fn_bits(-std::numeric_limits<float>::denorm_min()), 0x80);
  EXPECT_EQ(float_to_e4m3fn_bits(std::ldexp(15.5f, -10)), 0x08);   // rounds up into the normal range
}

// ONNX saturate=1: +-448 for out-of-range and infinite values; saturate=0: NaN. NaN stays NaN.
TEST(Float8E4M3FN, SaturatesOrOverflowsToNaN) {
  const float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
  for (float big : {464.f, 448.f, 460.f}) {  // round to 448 in both modes (464 is a tie: to even 448)
    EXPECT_EQ(float_to_e4m3fn_bits(big), 0x7e) << big;
    EXPECT_EQ(float_to_e4m3fn_bits(big, false), 0x7e) << big;
    EXPECT_EQ(float_to_e4m3fn_bits(-big), 0xfe) << big;
  }
  for (float big : {464.5f, 480.f, 1000.f, 3.0e38f, inf}) {
    EXPECT_EQ(float_to_e4m3fn_bits(big), 0x7e) << big;
    EXPECT_EQ(float_to_e4m3fn_bits(-big), 0xfe) << big;
    EXPECT_EQ(float_to_e4m3fn_bits(big, false), 0x7f) << big;
    EXPECT_EQ(float_to_e4m3fn_bits(-big, false), 0xff) << big;
  }
  EXPECT_EQ(float_to_e4m3fn_bits(nan) & 0x7f, 0x7f);
  EXPECT_EQ(float_to_e4m3fn_bits(-nan, false) & 0x7f, 0x7f);
}

TEST(Float8E4M3FN, DTypeAndTensorCast) {
  EXPECT_EQ(dtype_size(DType::kFloat8E4M3FN), 1u);
  EXPECT_EQ(dtype_name(DType::kFloat8E4M3FN), "float8e4m3fn");
  EXPECT_EQ(dtype_from_name("float8e4m3fn"), DType::kFloat8E4M3FN);
  EXPECT_FALSE(is_floating(DType::kFloat8E4M3FN));
  EXPECT_TRUE(is_float8(DType::kFloat8E4M3FN));
  Tensor x = Tensor::from_vector<float>({5}, {0.3f, -1000.f, 2.5f, 1e-4f, 7.f});
  Tensor f8 = x.cast(DType::kFloat8E4M3FN);
  ASSERT_EQ(f8.dtype(), DType::kFloat8E4M3FN);
  std::vector<double> expect;
  for (float v : {0.3f, -1000.f, 2.5f, 1e-4f, 7.f}) expect.push_back(e4m3fn_bits_to_float(float_to_e4m3fn_bits(v)));
  EXPECT_EQ(f8.to_double_vector(), expect);
  EXPECT_EQ(expect[1], -448.0);
  Tensor h = f8.cast(DType::kFloat16);
  EXPECT_EQ(h.to_double_vector(), expect);  // every e4m3 value is exact in float16
  EXPECT_EQ(h.cast(DType::kFloat8E4M3FN).to_double_vector(), expect);
}

TEST(Float8E4M3FN, OnnxTensorFromRawAndInt32Data) {
  onnx::TensorProto p;
  p.set_data_type(17);  // FLOAT8E4M3FN (newer than the libonnx proto)
  p.add_dims(3);
  p.set_raw_data(std::string("\x38\xfe\x01", 3));
  auto t = onnx_import::tensor_from_proto(p, {"", "w"});
  ASSERT_TRUE(t.ok()) << t.status().message();
  EXPECT_EQ(t->dtype(), DType::kFloat8E4M3FN);
  EXPECT_EQ(t->to_double_vector(), (std::vector<double>{1.0, -448.0, std::ldexp(1.0, -9)}));
  onnx::TensorProto q;
  q.set_data_type(17);
  q.add_dims(2);
  q.add_int32_data(0x40);  // 2.0
  q.add_int32_data(0xb8);  // -1.0
  t = onnx_import::tensor_from_proto(q, {"", "w"});
  ASSERT_TRUE(t.ok()) << t.status().message();
  EXPECT_EQ(t->to_double_vector(), (std::vector<double>{2.0, -1.0}));
  q.add_int32_data(0);
  EXPECT_FALSE(onnx_import::tensor_from_proto(q, {"", "w"}).ok());  // 3 values for 2 elements
  onnx::TypeProto type;
  type.mutable_tensor_type()->set_elem_type(17);
  auto tt = onnx_import::type_from_proto(type, "x");
  ASSERT_TRUE(tt.ok());
  EXPECT_EQ(tt->dtype, DType::kFloat8E4M3FN);
}

Attributes fp8_attrs(int64_t saturate = 1, int64_t axis = 1) {
  Attributes a;
  a.set("output_dtype", int64_t{17});
  a.set("saturate", saturate);
  a.set("axis", axis);
  return a;
}

Tensor run1(const OpCall& call) {
  auto r = run_op(call);
  EXPECT_TRUE(r.ok()) << r.status().message();
  return r.ok() ? (*r)[0] : Tensor();
}

// QuantizeLinear to float8: y = e4m3(x / scale), per tensor and per axis, from float32/16.
TEST(Float8QuantizeLinear, PerTensorAndPerAxis) {
  for (DType xt : {DType::kFloat32, DType::kFloat16}) {
    Tensor x = random_tensor(xt, {3, 4, 5}, 7, -600, 600);
    Tensor s = Tensor::scalar<float>(0.75f).cast(xt);
    Tensor y = run1({"QuantizeLinear", {x, s}, {}, fp8_attrs()});
    ASSERT_EQ(y.dtype(), DType::kFloat8E4M3FN);
    auto xv = x.to_double_vector(), yv = y.to_double_vector();
    for (size_t i = 0; i < xv.size(); ++i) {
      const float q = static_cast<float>(xv[i]) / 0.75f;
      ASSERT_EQ(yv[i], e4m3fn_bits_to_float(float_to_e4m3fn_bits(q))) << i;
    }
  }
  // Per axis 1 with a float8 zero point of 0 (the type then comes from it).
  Tensor x = random_tensor(DType::kFloat32, {2, 3, 4}, 8, -5, 5);
  Tensor s = Tensor::from_vector<float>({3}, {0.01f, 0.5f, 2.f});
  Tensor zp = Tensor::zeros(DType::kFloat8E4M3FN, {3});
  Attributes a;
  a.set("axis", int64_t{-2});
  Tensor y = run1({"QuantizeLinear", {x, s, zp}, {}, a});
  ASSERT_EQ(y.dtype(), DType::kFloat8E4M3FN);
  auto xv = x.to_double_vector(), yv = y.to_double_vector();
  for (int64_t i = 0; i < 24; ++i) {
    const float sc = s.data<float>()[(i / 4) % 3];
    ASSERT_EQ(yv[static_cast<size_t>(i)], e4m3fn_bits_to_float(float_to_e4m3fn_bits(static_cast<float>(xv[static_cast<size_t>(i)]) / sc)))
        << i;
  }
}

TEST(Float8QuantizeLinear, SaturateAttribute) {
  const float inf = std::numeric_limits<float>::infinity();
  Tensor x = Tensor::from_vector<float>({5}, {1000.f, -1000.f, inf, 3.f, std::nanf("")});
  Tensor s = Tensor::scalar<float>(1.f);
  auto y = run1({"QuantizeLinear", {x, s}, {}, fp8_attrs(1)}).to_double_vector();
  EXPECT_EQ(y[0], 448.0);
  EXPECT_EQ(y[1], -448.0);
  EXPECT_EQ(y[2], 448.0);
  EXPECT_EQ(y[3], 3.0);
  EXPECT_TRUE(std::isnan(y[4]));
  y = run1({"QuantizeLinear", {x, s}, {}, fp8_attrs(0)}).to_double_vector();
  EXPECT_TRUE(std::isnan(y[0]) && std::isnan(y[1]) && std::isnan(y[2]) && std::isnan(y[4]));
  EXPECT_EQ(y[3], 3.0);
}

TEST(Float8DequantizeLinear, ScalesEveryCode) {
  Tensor x(DType::kFloat8E4M3FN, {2, 128});
  for (int b = 0; b < 256; ++b) x.data<Float8E4M3FN>()[b] = Float8E4M3FN::from_bits(static_cast<uint8_t>(b));
  for (DType st : {DType::kFloat32, DType::kFloat16}) {
    Tensor y = run1({"DequantizeLinear", {x, Tensor::scalar<float>(0.5f).cast(st)}});
    ASSERT_EQ(y.dtype(), st);
    auto yv = y.to_double_vector();
    for (int b = 0; b < 256; ++b) {
      if ((b & 0x7f) == 0x7f) {
        EXPECT_TRUE(std::isnan(yv[static_cast<size_t>(b)])) << b;
      } else {
        const double want = static_cast<double>(static_cast<float>(e4m3_value(b) * 0.5));
        EXPECT_EQ(yv[static_cast<size_t>(b)], st == DType::kFloat32 ? want : double(float(Half(float(want))))) << b;
      }
    }
  }
  // Per axis 0 with a zero point.
  Tensor s = Tensor::from_vector<float>({2}, {2.f, 0.25f});
  Tensor zp = Tensor::from_vector<float>({2}, {1.f, -2.f}).cast(DType::kFloat8E4M3FN);
  Attributes a;
  a.set("axis", int64_t{0});
  auto yv = run1({"DequantizeLinear", {x, s, zp}, {}, a}).to_double_vector();
  EXPECT_EQ(yv[0x40], (2.0 - 1.0) * 2.0);
  EXPECT_EQ(yv[0x50], (e4m3_value(0x50) - 1.0) * 2.0);  // row 0 holds codes 0..127: zero point 1, scale 2
  EXPECT_EQ(yv[0xc8], (-4.0 + 2.0) * 0.25);              // code 0xc8 = -4 in row 1: zero point -2, scale 0.25
}

TEST(Float8QuantizeLinear, QdqRoundTripWithinHalfAStep) {
  // |x| <= amax with scale amax/448: the relative error of e4m3 is at most 2^-4 (3 mantissa bits).
  Tensor x = random_tensor(DType::kFloat32, {64, 32}, 11, -3, 3);
  const float scale = 3.f / 448.f;
  Tensor q = run1({"QuantizeLinear", {x, Tensor::scalar<float>(scale)}, {}, fp8_attrs()});
  Tensor y = run1({"DequantizeLinear", {q, Tensor::scalar<float>(scale)}});
  auto xv = x.to_double_vector(), yv = y.to_double_vector();
  for (size_t i = 0; i < xv.size(); ++i)
    ASSERT_LE(std::fabs(xv[i] - yv[i]), std::fabs(xv[i]) / 16 + std::ldexp(scale, -10)) << xv[i];
  EXPECT_GT(rel_l2(y, x), 1e-4);  // quantization did happen
  EXPECT_LT(rel_l2(y, x), 4e-2);
}

TEST(Float8QuantizeLinear, Errors) {
  Tensor x = random_tensor(DType::kFloat32, {2, 3});
  Attributes bad = fp8_attrs();
  bad.set("saturate", int64_t{3});
  Status st = run_op({"QuantizeLinear", {x, Tensor::scalar<float>(1.f)}, {}, bad}).status();
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find("saturate"), std::string::npos) << st.message();
  // The zero point's float8 type disagrees with output_dtype int8.
  Attributes i8;
  i8.set("output_dtype", int64_t{3});
  st = run_op({"QuantizeLinear", {x, Tensor::scalar<float>(1.f), Tensor::zeros(DType::kFloat8E4M3FN, {})}, {}, i8})
           .status();
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find("QuantizeLinear_node"), std::string::npos) << st.message();
  // A float8 x with a uint8 zero point.
  st = run_op({"DequantizeLinear", {Tensor::zeros(DType::kFloat8E4M3FN, {2}), Tensor::scalar<float>(1.f),
                                    Tensor::scalar<uint8_t>(0)}})
           .status();
  EXPECT_FALSE(st.ok());
}

}  // namespace
}  // namespace kiln::test
