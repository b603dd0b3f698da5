// CUDA unary math and activation layers against the CPU reference, per op and dtype.
#include <tuple>

#include "ew_test_util.hpp"

namespace kiln::test {
namespace {

struct UnaryCase {
  const char* op;
  double lo = -3, hi = 3;  // input range (inside the op's domain)
  Attributes attrs = {};
};

Attributes attr(const char* name, AttrValue v) {
  Attributes a;
  a.set(name, std::move(v));
  return a;
}

double tolerance(DType t) { return t == DType::kFloat32 ? 1e-5 : t == DType::kFloat16 ? 5e-3 : 2e-2; }

const UnaryCase kCases[] = {
    {"Abs"}, {"Neg"}, {"Sign"}, {"Exp"}, {"Log", 0.05, 5}, {"Sqrt", 0.0, 5}, {"Reciprocal", 0.5, 3},
    {"Floor"}, {"Ceil"}, {"Round"}, {"Sin"}, {"Cos"}, {"Tan", -1.2, 1.2}, {"Asin", -0.99, 0.99},
    {"Acos", -0.99, 0.99}, {"Atan"}, {"Sinh"}, {"Cosh"}, {"Asinh"}, {"Acosh", 1.01, 5}, {"Atanh", -0.99, 0.99},
    {"Erf"}, {"Relu"}, {"LeakyRelu"}, {"LeakyRelu", -3, 3, attr("alpha", 0.3f)}, {"Sigmoid", -20, 20},
    {"HardSigmoid"}, {"HardSigmoid", -3, 3, [] { Attributes a = attr("alpha", 0.3f); a.set("beta", 0.4f); return a; }()},
    {"HardSwish", -5, 5}, {"Tanh"}, {"Elu"}, {"Elu", -3, 3, attr("alpha", 0.5f)}, {"Selu"}, {"Celu"},
    {"Celu", -3, 3, attr("alpha", 2.f)}, {"Softplus", -30, 30}, {"Softsign"}, {"ThresholdedRelu"},
    {"ThresholdedRelu", -3, 3, attr("alpha", 0.5f)}, {"Mish", -10, 10}, {"Gelu"},
    {"Gelu", -3, 3, attr("approximate", std::string("tanh"))}, {"Shrink"},
    {"Shrink", -3, 3, [] { Attributes a = attr("lambd", 1.f); a.set("bias", 0.25f); return a; }()},
};

using UnaryParam = std::tuple<size_t, DType>;

class CudaUnary : public ::testing::TestWithParam<UnaryParam> {};

TEST_P(CudaUnary, MatchesCpu) {
  KILN_REQUIRE_GPU();
  const auto [index, dtype] = GetParam();
  const UnaryCase& c = kCases[index];
  // Odd size: vector body plus a scalar tail.
  OpCall call{.op_type = c.op, .inputs = {random_tensor(dtype, {3, 37, 41}, 7, c.lo, c.hi)}, .attrs = c.attrs};
  EXPECT_TRUE(matches_cpu(call, tolerance(dtype)));
}

std::string unary_name(const ::testing::TestParamInfo<UnaryParam>& info) {
  const auto [index, dtype] = info.param;
  return std::string(kCases[index].op) + std::to_string(index) + "_" + std::string(dtype_name(dtype));
}

INSTANTIATE_TEST_SUITE_P(All, CudaUnary,
                         ::testing::Combine(::testing::Range<size_t>(0, std::size(kCases)),
                                            ::testing::Values(DType::kFloat32, DType::kFloat16, DType::kBFloat16)),
                         unary_name);

TEST(CudaUnaryExact, RoundHalvesToEven) {
  KILN_REQUIRE_GPU();
  OpCall call{.op_type = "Round",
              .inputs = {Tensor::from_vector<float>({8}, {0.5f, 1.5f, 2.5f, -0.5f, -1.5f, -2.5f, 3.49f, -3.51f})}};
  EXPECT_TRUE(matches_cpu(call, 0.0));
}

TEST(CudaUnaryExact, IntegerAbsNegSignRelu) {
  KILN_REQUIRE_GPU();
  for (const char* op : {"Abs", "Neg", "Sign", "Relu"})
    for (DType t : {DType::kInt32, DType::kInt64, DType::kInt8}) {
      SCOPED_TRACE(std::string(op) + " " + std::string(dtype_name(t)));
      OpCall call{.op_type = op, .inputs = {random_tensor(t, {5, 33}, 3, -100, 100)}};
      EXPECT_TRUE(matches_cpu(call, 0.0));
    }
}

TEST(CudaUnaryExact, IsNaNIsInfNot) {
  KILN_REQUIRE_GPU();
  const float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
  for (DType t : {DType::kFloat32, DType::kFloat16, DType::kBFloat16}) {
    Tensor x = Tensor::from_vector<float>({6}, {1.f, inf, -inf, nan, 0.f, -2.f}).cast(t);
    EXPECT_TRUE(matches_cpu(OpCall{.op_type = "IsNaN", .inputs = {x}}, 0.0));
    for (int64_t neg : {0, 1})
      for (int64_t pos : {0, 1}) {
        Attributes a = attr("detect_negative", neg);
        a.set("detect_positive", pos);
        EXPECT_TRUE(matches_cpu(OpCall{.op_type = "IsInf", .inputs = {x}, .attrs = a}, 0.0));
      }
  }
  EXPECT_TRUE(matches_cpu(OpCall{.op_type = "Not", .inputs = {random_tensor(DType::kBool, {1000}, 5)}}, 0.0));
}

TEST(CudaClip, ConstantBoundsAllDtypes) {
  KILN_REQUIRE_GPU();
  for (DType t : {DType::kFloat32, DType::kFloat16, DType::kBFloat16, DType::kInt32, DType::kInt64, DType::kUInt8}) {
    SCOPED_TRACE(std::string(dtype_name(t)));
    Tensor x = random_tensor(t, {4, 63}, 9, 0, 100);
    Tensor lo = Tensor::from_vector<double>({}, {20}).cast(t), hi = Tensor::from_vector<double>({}, {70}).cast(t);
    EXPECT_TRUE(matches_cpu(OpCall{.op_type = "Clip", .inputs = {x, lo, hi}, .constant_inputs = {false, true, true}},
                            0.0));
    // Only a max (min absent), and only a min.
    EXPECT_TRUE(matches_cpu(
        OpCall{.op_type = "Clip", .inputs = {x, Tensor(), hi}, .constant_inputs = {false, false, true}}, 0.0));
    EXPECT_TRUE(matches_cpu(OpCall{.op_type = "Clip", .inputs = {x, lo}, .constant_inputs = {false, true}}, 0.0));
    EXPECT_TRUE(matches_cpu(OpCall{.op_type = "Clip", .inputs = {x}}, 0.0));
  }
}

TEST(CudaUnaryExact, ScalarInput) {
  KILN_REQUIRE_GPU();
  EXPECT_TRUE(matches_cpu(OpCall{.op_type = "Relu", .inputs = {random_tensor(DType::kFloat32, {})}}, 0.0));
}

TEST(CudaUnaryExact, EmptyInput) {
  KILN_REQUIRE_GPU();
  EXPECT_TRUE(matches_cpu(OpCall{.op_type = "Sigmoid", .inputs = {Tensor(DType::kFloat32, {0, 5})}}, 0.0));
}

// Infinities and NaN through the activations whose formulas guard against overflow (math
// functions may differ by an ulp or two, and in absolute terms near zero).
TEST(CudaUnaryExact, NonFiniteInputs) {
  KILN_REQUIRE_GPU();
  const float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
  Tensor x = Tensor::from_vector<float>({6}, {inf, -inf, nan, 100.f, -100.f, 0.f});
  for (const char* op : {"Relu", "Sigmoid", "Softplus", "Abs", "Neg", "Sign", "Floor", "HardSigmoid"})
    EXPECT_TRUE(matches_cpu_exactly(OpCall{.op_type = op, .inputs = {x}}, 1e-6, 1e-30)) << op;
}

}  // namespace
}  // namespace kiln::test
