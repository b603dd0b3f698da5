// CUDA broadcasting layers (binary arithmetic, PRelu, variadic, comparisons, logic, Where) against
// the CPU reference, over the broadcast patterns with fast paths and the general one.
#include "gpu_test_util.hpp"

namespace kiln::test {
namespace {

double tolerance(DType t) { return t == DType::kFloat32 ? 1e-5 : t == DType::kFloat16 ? 5e-3 : 2e-2; }

const DType kFloats[] = {DType::kFloat32, DType::kFloat16, DType::kBFloat16};

// Shape pairs: same shape (vectorized), odd same shape (scalar tail), scalar, bias over the last
// dim, per-channel NCHW, both sides broadcasting, high rank, and an inner dim no vector divides.
const std::pair<Dims, Dims> kShapes[] = {
    {{4, 64, 32}, {4, 64, 32}}, {{3, 37, 41}, {3, 37, 41}}, {{8, 96}, {}},          {{}, {8, 96}},
    {{16, 64}, {64}},           {{2, 16, 7, 9}, {16, 1, 1}}, {{5, 1, 24}, {3, 1}}, {{2, 1, 3, 1, 5, 2}, {2, 3, 4, 1, 2}},
    {{7, 13}, {13}},            {{1, 1, 8}, {2, 3, 1}},
};

class CudaBinary : public ::testing::TestWithParam<const char*> {};

TEST_P(CudaBinary, FloatBroadcastPatterns) {
  KILN_REQUIRE_GPU();
  const std::string op = GetParam();
  // Divisors and Pow bases stay away from zero (Pow of a negative base is NaN on both).
  const double a_lo = op == "Pow" ? 0.5 : -2, b_lo = op == "Div" ? 0.5 : -2;
  for (DType t : kFloats)
    for (const auto& [da, db] : kShapes) {
      SCOPED_TRACE(std::string(dtype_name(t)) + " " + dims_to_string(da) + " op " + dims_to_string(db));
      Tensor a = random_tensor(t, da, 1, a_lo, 2), b = random_tensor(t, db, 2, b_lo, 2);
      EXPECT_TRUE(matches_cpu(OpCall{.op_type = op, .inputs = {a, b}}, tolerance(t)));
    }
}

INSTANTIATE_TEST_SUITE_P(All, CudaBinary, ::testing::Values("Add", "Sub", "Mul", "Div", "Pow", "Max", "Min"),
                         [](const auto& info) { return std::string(info.param); });

TEST(CudaBinary, FloatModIsFmod) {
  KILN_REQUIRE_GPU();
  Attributes fmod;
  fmod.set("fmod", int64_t{1});
  for (DType t : kFloats) {
    Tensor a = random_tensor(t, {6, 40}, 1, -10, 10), b = random_tensor(t, {40}, 2, 0.5, 3);
    EXPECT_TRUE(matches_cpu(OpCall{.op_type = "Mod", .inputs = {a, b}, .attrs = fmod}, tolerance(t)));
  }
}

TEST(CudaBinaryInt, WrapsLikeCpu) {
  KILN_REQUIRE_GPU();
  for (const char* op : {"Add", "Sub", "Mul", "Max", "Min"})
    for (DType t : {DType::kInt32, DType::kInt64}) {
      SCOPED_TRACE(std::string(op) + " " + std::string(dtype_name(t)));
      Tensor a = random_tensor(t, {6, 35}, 1, -1e9, 1e9), b = random_tensor(t, {35}, 2, -1e9, 1e9);
      EXPECT_TRUE(matches_cpu(OpCall{.op_type = op, .inputs = {a, b}}, 0.0));
    }
}

TEST(CudaBinary, PowWithOtherExponentTypes) {
  KILN_REQUIRE_GPU();
  for (DType base : kFloats)
    for (DType e : {DType::kFloat32, DType::kInt64, DType::kInt32}) {
      SCOPED_TRACE(std::string(dtype_name(base)) + " ^ " + std::string(dtype_name(e)));
      Tensor a = random_tensor(base, {5, 40}, 1, 0.5, 2), b = random_tensor(e, {40}, 2, -3, 3);
      EXPECT_TRUE(matches_cpu(OpCall{.op_type = "Pow", .inputs = {a, b}}, tolerance(base)));
    }
  // A constant exponent (x^2, as models write it).
  OpCall sq{.op_type = "Pow",
            .inputs = {random_tensor(DType::kFloat32, {9, 31}), Tensor::from_vector<float>({}, {2.f})},
            .constant_inputs = {false, true}};
  EXPECT_TRUE(matches_cpu(sq, 1e-6));
}

TEST(CudaBinary, ConstantOperandAndPRelu) {
  KILN_REQUIRE_GPU();
  for (DType t : kFloats) {
    OpCall bias{.op_type = "Add",
                .inputs = {random_tensor(t, {4, 128}), random_tensor(t, {128}, 3)},
                .constant_inputs = {false, true}};
    EXPECT_TRUE(matches_cpu(bias, tolerance(t)));
    OpCall prelu{.op_type = "PRelu",
                 .inputs = {random_tensor(t, {2, 8, 5, 5}), random_tensor(t, {8, 1, 1}, 4, 0, 1)},
                 .constant_inputs = {false, true}};
    EXPECT_TRUE(matches_cpu(prelu, tolerance(t)));
    OpCall prelu_same{.op_type = "PRelu", .inputs = {random_tensor(t, {3, 33}), random_tensor(t, {3, 33}, 4)}};
    EXPECT_TRUE(matches_cpu(prelu_same, tolerance(t)));
  }
}

TEST(CudaVariadic, SumMeanMaxMin) {
  KILN_REQUIRE_GPU();
  for (const char* op : {"Sum", "Mean", "Max", "Min"})
    for (DType t : kFloats) {
      SCOPED_TRACE(std::string(op) + " " + std::string(dtype_name(t)));
      // One input (a copy), two, and four broadcasting to a shape none of the first two has.
      EXPECT_TRUE(matches_cpu(OpCall{.op_type = op, .inputs = {random_tensor(t, {3, 5})}}, 0.0));
      EXPECT_TRUE(matches_cpu(OpCall{.op_type = op, .inputs = {random_tensor(t, {3, 5}), random_tensor(t, {5}, 2)}},
                              tolerance(t)));
      OpCall four{.op_type = op,
                  .inputs = {random_tensor(t, {4, 1}, 1), random_tensor(t, {6}, 2), random_tensor(t, {3, 4, 6}, 3),
                             random_tensor(t, {1, 6}, 4)}};
      EXPECT_TRUE(matches_cpu(four, 3 * tolerance(t)));
    }
  OpCall ints{.op_type = "Sum", .inputs = {random_tensor(DType::kInt64, {7, 3}, 1, -50, 50),
                                            random_tensor(DType::kInt64, {3}, 2, -50, 50),
                                            random_tensor(DType::kInt64, {7, 1}, 3, -50, 50)}};
  EXPECT_TRUE(matches_cpu(ints, 0.0));
}

TEST(CudaCompare, AllOpsAndDtypes) {
  KILN_REQUIRE_GPU();
  for (const char* op : {"Equal", "Less", "LessOrEqual", "Greater", "GreaterOrEqual"})
    for (DType t : {DType::kFloat32, DType::kFloat16, DType::kBFloat16, DType::kInt32, DType::kInt64}) {
      SCOPED_TRACE(std::string(op) + " " + std::string(dtype_name(t)));
      // Small integer range so Equal sees equal pairs.
      Tensor a = random_tensor(t, {4, 3, 17}, 1, -3, 3).cast(DType::kInt64).cast(t);
      Tensor b = random_tensor(t, {3, 1}, 2, -3, 3).cast(DType::kInt64).cast(t);
      EXPECT_TRUE(matches_cpu(OpCall{.op_type = op, .inputs = {a, b}}, 0.0));
      EXPECT_TRUE(matches_cpu(OpCall{.op_type = op, .inputs = {a, a}}, 0.0));
    }
  for (const char* op : {"And", "Or", "Xor", "Equal"}) {
    SCOPED_TRACE(op);
    Tensor a = random_tensor(DType::kBool, {5, 64}, 1), b = random_tensor(DType::kBool, {64}, 2);
    EXPECT_TRUE(matches_cpu(OpCall{.op_type = op, .inputs = {a, b}}, 0.0));
  }
}

TEST(CudaWhere, BroadcastsAllSizes) {
  KILN_REQUIRE_GPU();
  for (DType t : {DType::kFloat32, DType::kFloat16, DType::kInt64, DType::kUInt8, DType::kBool}) {
    SCOPED_TRACE(std::string(dtype_name(t)));
    Tensor c = random_tensor(DType::kBool, {2, 1, 40}, 1);
    EXPECT_TRUE(matches_cpu(
        OpCall{.op_type = "Where", .inputs = {c, random_tensor(t, {3, 40}, 2), random_tensor(t, {2, 3, 1}, 3)}}, 0.0));
    EXPECT_TRUE(matches_cpu(
        OpCall{.op_type = "Where", .inputs = {c, random_tensor(t, {2, 1, 40}, 2), random_tensor(t, {}, 3)}}, 0.0));
  }
}

}  // namespace
}  // namespace kiln::test
