// CUDA Cast/CastLike against the CPU reference: every supported pair, exactly.
#include "ew_test_util.hpp"

namespace kiln::test {
namespace {

const DType kTypes[] = {DType::kFloat32, DType::kFloat16, DType::kBFloat16, DType::kInt32,
                        DType::kInt64,   DType::kInt8,    DType::kUInt8,    DType::kBool};

// ONNX TensorProto data type codes.
int64_t onnx_code(DType t) {
  switch (t) {
    case DType::kFloat32: return 1;
    case DType::kUInt8: return 2;
    case DType::kInt8: return 3;
    case DType::kInt32: return 6;
    case DType::kInt64: return 7;
    case DType::kBool: return 9;
    case DType::kFloat16: return 10;
    case DType::kBFloat16: return 16;
    default: return 0;
  }
}

TEST(CudaCast, EveryPairExactly) {
  KILN_REQUIRE_GPU();
  for (DType from : kTypes)
    for (DType to : kTypes) {
      SCOPED_TRACE(std::string(dtype_name(from)) + " -> " + std::string(dtype_name(to)));
      // Wide range: float -> int8/uint8 saturates, fractions truncate, large ints round in float16.
      Tensor x = random_tensor(from, {3, 77}, 11, -400, 400);
      Attributes a;
      a.set("to", onnx_code(to));
      EXPECT_TRUE(matches_cpu(OpCall{.op_type = "Cast", .inputs = {x}, .attrs = a}, 0.0));
    }
}

TEST(CudaCast, SpecialValues) {
  KILN_REQUIRE_GPU();
  const float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
  Tensor x = Tensor::from_vector<float>({10}, {nan, inf, -inf, 3e9f, -3e9f, 65519.f, 65520.f, 1e-8f, -0.f, 2.5f});
  for (DType to : kTypes) {
    SCOPED_TRACE(std::string(dtype_name(to)));
    Attributes a;
    a.set("to", onnx_code(to));
    EXPECT_TRUE(matches_cpu_exactly(OpCall{.op_type = "Cast", .inputs = {x}, .attrs = a}));
  }
  // int64 beyond 2^24 and 2^53 into float16/bfloat16/float32: one rounding.
  Tensor big = Tensor::from_vector<int64_t>({4}, {16777217, -16777219, (int64_t{1} << 53) + 1, 65521});
  for (DType to : {DType::kFloat32, DType::kFloat16, DType::kBFloat16}) {
    Attributes a;
    a.set("to", onnx_code(to));
    // 65521 overflows float16 to inf: compare element by element (relative L2 would be NaN).
    EXPECT_TRUE(matches_cpu_exactly(OpCall{.op_type = "Cast", .inputs = {big}, .attrs = a}));
  }
}

TEST(CudaCast, CastLikeTakesTheSecondInputsType) {
  KILN_REQUIRE_GPU();
  OpCall call{.op_type = "CastLike",
              .inputs = {random_tensor(DType::kFloat32, {5, 9}), random_tensor(DType::kFloat16, {1})}};
  EXPECT_TRUE(matches_cpu(call, 0.0));
}

}  // namespace
}  // namespace kiln::test
