// Where (3-way broadcast select), Cast and CastLike.
#include "elementwise_test_util.hpp"

namespace kiln::test {
namespace {

Attributes to(int64_t onnx_type) {
  Attributes a;
  a.set("to", onnx_type);
  return a;
}

TEST(Where, ThreeWayBroadcastForEveryDtype) {
  std::vector<DType> dts = float_dtypes();
  for (DType t : int_dtypes()) dts.push_back(t);
  dts.push_back(DType::kBool);
  uint32_t seed = 1000;
  for (DType dt : dts) {
    Tensor c = random_tensor(DType::kBool, {2, 1, 4}, seed++);
    Tensor x = random_tensor(dt, {3, 1}, seed++, 0, 100), y = random_tensor(dt, {4}, seed++, 0, 100);
    Tensor want = naive_map({2, 3, 4}, {c, x, y}, dt,
                            [](const std::vector<double>& v) { return v[0] != 0 ? v[1] : v[2]; });
    EXPECT_TRUE(tensors_close(run1({"Where", {c, x, y}}), want, 0, 0)) << dtype_name(dt);
  }
  // NaN bit patterns pass through untouched.
  Tensor h = Tensor::from_vector<Half>({1}, {Half::from_bits(0x7d01)});
  Tensor r = run1({"Where", {Tensor::scalar<bool>(true), h, h}});
  EXPECT_EQ(r.data<Half>()[0].bits, 0x7d01);
}

TEST(Where, Errors) {
  Tensor x = random_tensor(DType::kFloat32, {2, 3});
  Status st = run_err({"Where", {random_tensor(DType::kInt32, {2, 3}), x, x}});
  EXPECT_TRUE(contains(st.message(), "Where_node") && contains(st.message(), "bool")) << st.message();
  st = run_err({"Where", {random_tensor(DType::kBool, {2, 3}), x, random_tensor(DType::kFloat64, {2, 3})}});
  EXPECT_TRUE(contains(st.message(), "Where_node") && contains(st.message(), "float64")) << st.message();
  st = run_err({"Where", {random_tensor(DType::kBool, {4}), x, x}});
  EXPECT_TRUE(contains(st.message(), "Where_node") && contains(st.message(), "broadcast")) << st.message();
}

// ONNX data type codes.
constexpr int64_t kF32 = 1, kU8 = 2, kI8 = 3, kI32 = 6, kI64 = 7, kStr = 8, kBool = 9, kF16 = 10, kF64 = 11,
                  kBF16 = 16, kF8 = 17;

TEST(Cast, FloatToIntegerTruncatesAndSaturates) {
  Tensor x = Tensor::from_vector<float>({7}, {2.9f, -2.9f, 0.5f, 300.f, -300.f, std::nanf(""), 1e20f});
  EXPECT_EQ(run1({"Cast", {x}, {}, to(kI32)}).to_double_vector(),
            (std::vector<double>{2, -2, 0, 300, -300, 0, INT32_MAX}));
  EXPECT_EQ(run1({"Cast", {x}, {}, to(kI8)}).to_double_vector(), (std::vector<double>{2, -2, 0, 127, -128, 0, 127}));
  EXPECT_EQ(run1({"Cast", {x}, {}, to(kU8)}).to_double_vector(), (std::vector<double>{2, 0, 0, 255, 0, 0, 255}));
  EXPECT_EQ(run1({"Cast", {x}, {}, to(kBool)}).to_double_vector(), (std::vector<double>{1, 1, 1, 1, 1, 1, 1}));
  EXPECT_EQ(run1({"Cast", {Tensor::from_vector<float>({2}, {0.f, -0.f})}, {}, to(kBool)}).to_double_vector(),
            (std::vector<double>{0, 0}));
}

TEST(Cast, AllPairsRoundTripSmallIntegers) {
  // Values 0..9 are exact in every dtype (bool aside), so every cast pair must preserve them.
  const std::vector<std::pair<int64_t, DType>> types = {
      {1, DType::kFloat32}, {2, DType::kUInt8},  {3, DType::kInt8},   {4, DType::kUInt16}, {5, DType::kInt16},
      {6, DType::kInt32},   {7, DType::kInt64},  {10, DType::kFloat16}, {11, DType::kFloat64}, {12, DType::kUInt32},
      {13, DType::kUInt64}, {16, DType::kBFloat16}, {9, DType::kBool}};
  Tensor base = Tensor::from_vector<int64_t>({2, 5}, {0, 1, 2, 3, 4, 5, 6, 7, 8, 9});
  for (const auto& [scode, sdt] : types) {
    Tensor src = base.cast(sdt);
    for (const auto& [dcode, ddt] : types) {
      Tensor y = run1({"Cast", {src}, {}, to(dcode)});
      ASSERT_EQ(y.dtype(), ddt);
      EXPECT_EQ(y.to_double_vector(), src.cast(ddt).to_double_vector()) << dtype_name(sdt) << " -> " << dtype_name(ddt);
    }
  }
}

TEST(Cast, HalfAndBFloat16RoundToNearestEven) {
  Tensor x = random_tensor(DType::kFloat64, {100}, 5, -1000, 1000);
  Tensor h = run1({"Cast", {x}, {}, to(kF16)});
  Tensor bf = run1({"Cast", {x}, {}, to(kBF16)});
  auto xv = x.to_double_vector();
  for (size_t i = 0; i < xv.size(); ++i) {
    EXPECT_EQ(h.data<Half>()[i].bits, Half(static_cast<float>(xv[i])).bits);
    EXPECT_EQ(bf.data<BFloat16>()[i].bits, BFloat16(static_cast<float>(xv[i])).bits);
  }
  // 1 + 2^-11 + 2^-40 lies just above the float16 tie between 1 and 1 + 2^-10: rounding to
  // float first would land on the tie and then round to even (1.0).
  Tensor near_tie = Tensor::from_vector<double>({2}, {1 + std::ldexp(1, -11) + std::ldexp(1, -40),
                                                      -(1 + std::ldexp(1, -8) + std::ldexp(1, -40))});
  EXPECT_EQ(run1({"Cast", {near_tie}, {}, to(kF16)}).to_double_vector()[0], 1 + std::ldexp(1, -10));
  EXPECT_EQ(run1({"Cast", {near_tie}, {}, to(kBF16)}).to_double_vector()[1], -(1 + std::ldexp(1, -7)));
  Tensor big = Tensor::from_vector<float>({2}, {70000.f, -1e9f});
  EXPECT_EQ(run1({"Cast", {big}, {}, to(kF16)}).to_double_vector(), (std::vector<double>{INFINITY, -INFINITY}));
  EXPECT_EQ(run1({"Cast", {h}, {}, to(kF32)}).to_double_vector(), h.to_double_vector());
}

TEST(Cast, SameTypeSharesTheBuffer) {
  Tensor x = random_tensor(DType::kFloat32, {3});
  Tensor y = run1({"Cast", {x}, {}, to(kF32)});
  EXPECT_TRUE(tensors_close(y, x, 0, 0));
}

TEST(CastLike, TakesTheDtypeOfInput1) {
  Tensor x = Tensor::from_vector<double>({3}, {1.75, -2.5, 3});
  Tensor y = run1({"CastLike", {x, Tensor::scalar<int64_t>(0)}});
  ASSERT_EQ(y.dtype(), DType::kInt64);
  EXPECT_EQ(y.to_double_vector(), (std::vector<double>{1, -2, 3}));
  y = run1({"CastLike", {x, random_tensor(DType::kFloat16, {7})}});
  EXPECT_EQ(y.dtype(), DType::kFloat16);
  EXPECT_EQ(y.dims(), (Dims{3}));
}

// Numbers print as the shortest text that reads back to the same value; text parses back,
// "INF"/"NaN" included, and text that is no number is NaN.
TEST(Cast, StringsBothWays) {
  Tensor x = Tensor::from_vector<float>({5}, {0.1f, -2.5f, 1e-5f, 3.0f, 0.039187793f});
  Tensor s = run1({"Cast", {x}, {}, to(kStr)});
  ASSERT_EQ(s.dtype(), DType::kString);
  ASSERT_EQ(s.dims(), (Dims{5}));
  const std::vector<std::string> want = {"0.1", "-2.5", "1e-05", "3", "0.039187793"};
  for (size_t i = 0; i < want.size(); ++i) EXPECT_EQ(s.data<std::string>()[i], want[i]);
  Tensor back = run1({"Cast", {s}, {}, to(kF32)});
  EXPECT_EQ(back.to_double_vector(), x.to_double_vector());
  Tensor text(DType::kString, {5});
  const std::vector<std::string> in = {"1.5", "+INF", "-inf", "NaN", "cat"};
  std::copy(in.begin(), in.end(), text.data<std::string>());
  auto f = run1({"Cast", {text}, {}, to(kF64)}).to_double_vector();
  EXPECT_EQ(f[0], 1.5);
  EXPECT_EQ(f[1], std::numeric_limits<double>::infinity());
  EXPECT_EQ(f[2], -std::numeric_limits<double>::infinity());
  EXPECT_TRUE(std::isnan(f[3]) && std::isnan(f[4]));
  Tensor i = run1({"CastLike", {Tensor::from_vector<int64_t>({2}, {-7, 42}), text}});
  ASSERT_EQ(i.dtype(), DType::kString);
  EXPECT_EQ(i.data<std::string>()[0], "-7");
  EXPECT_EQ(i.data<std::string>()[1], "42");
  // Other kernels refuse strings rather than treat them as bytes.
  Status st = run_err({"Relu", {text}});
  EXPECT_EQ(st.code(), StatusCode::kUnsupported);
  EXPECT_TRUE(contains(st.message(), "Relu_node") && contains(st.message(), "string")) << st.message();
}

TEST(Cast, Errors) {
  Tensor x = random_tensor(DType::kFloat32, {2});
  Status st = run_err({"Cast", {x}});
  EXPECT_TRUE(contains(st.message(), "Cast_node") && contains(st.message(), "'to'")) << st.message();
  st = run_err({"Cast", {x}, {}, to(99)});
  EXPECT_TRUE(contains(st.message(), "Cast_node") && contains(st.message(), "99")) << st.message();
  st = run_err({"Cast", {x}, {}, to(kF8)});
  EXPECT_EQ(st.code(), StatusCode::kUnsupported);
  EXPECT_TRUE(contains(st.message(), "FLOAT8E4M3FN")) << st.message();
  (void)kI64;
  (void)kF64;
}

}  // namespace
}  // namespace kiln::test
