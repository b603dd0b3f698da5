#include "gpu_test_util.hpp"

namespace kiln::test {
namespace {

BuildOptions exact_fp32() {
  BuildOptions o;
  o.tf32 = false;
  return o;
}

TEST(CudaMatMul, BatchedAndBroadcastShapesFp32) {
  KILN_REQUIRE_GPU();
  struct Case { Dims a, b; };
  for (const Case& c : {Case{{7, 5}, {5, 9}}, Case{{2, 3, 7, 5}, {5, 9}}, Case{{4, 7, 5}, {4, 5, 9}},
                        Case{{7, 5}, {3, 5, 9}}, Case{{2, 4, 8, 16}, {2, 4, 16, 8}}, Case{{5}, {5, 9}},
                        Case{{7, 5}, {5}}}) {
    OpCall call{.op_type = "MatMul",
                .inputs = {random_tensor(DType::kFloat32, c.a, 1), random_tensor(DType::kFloat32, c.b, 2)}};
    EXPECT_TRUE(matches_cpu(call, 1e-5, exact_fp32())) << dims_to_string(c.a) << " x " << dims_to_string(c.b);
  }
}

TEST(CudaMatMul, ConstantWeightsTf32Fp16Bf16) {
  KILN_REQUIRE_GPU();
  OpCall call{.op_type = "MatMul",
              .inputs = {random_tensor(DType::kFloat32, {2, 64, 128}, 3), random_tensor(DType::kFloat32, {128, 96}, 4)},
              .constant_inputs = {false, true}};
  EXPECT_TRUE(matches_cpu(call, 2e-3));  // TF32 allowed by default
  for (DType t : {DType::kFloat16, DType::kBFloat16}) {
    call.inputs = {random_tensor(t, {2, 64, 128}, 5), random_tensor(t, {128, 96}, 6)};
    EXPECT_TRUE(matches_cpu(call, t == DType::kFloat16 ? 3e-3 : 2e-2)) << dtype_name(t);
  }
}

TEST(CudaGemm, TransposesAlphaBetaBiasAndFullC) {
  KILN_REQUIRE_GPU();
  for (int ta = 0; ta < 2; ++ta)
    for (int tb = 0; tb < 2; ++tb) {
      Dims a = ta ? Dims{12, 10} : Dims{10, 12};
      Dims b = tb ? Dims{7, 12} : Dims{12, 7};
      Attributes at;
      at.set("transA", int64_t{ta});
      at.set("transB", int64_t{tb});
      at.set("alpha", 0.5f);
      OpCall bias{.op_type = "Gemm",
                  .inputs = {random_tensor(DType::kFloat32, a, 7), random_tensor(DType::kFloat32, b, 8),
                             random_tensor(DType::kFloat32, {7}, 9)},
                  .constant_inputs = {false, true, true},
                  .attrs = at};
      EXPECT_TRUE(matches_cpu(bias, 1e-5, exact_fp32())) << "bias transA " << ta << " transB " << tb;
      at.set("beta", 0.25f);
      OpCall full{.op_type = "Gemm",
                  .inputs = {random_tensor(DType::kFloat32, a, 10), random_tensor(DType::kFloat32, b, 11),
                             random_tensor(DType::kFloat32, {10, 7}, 12)},
                  .attrs = at};
      EXPECT_TRUE(matches_cpu(full, 1e-5, exact_fp32())) << "full C transA " << ta << " transB " << tb;
    }
}

TEST(CudaGemm, UnsupportedBroadcastIsReportedNotRun) {
  KILN_REQUIRE_GPU();
  Attributes at;
  at.set("beta", 2.f);
  OpCall call{.op_type = "Gemm",
              .inputs = {random_tensor(DType::kFloat32, {4, 3}, 1), random_tensor(DType::kFloat32, {3, 5}, 2),
                         random_tensor(DType::kFloat32, {4, 1}, 3)},
              .attrs = at};
  auto r = run_op_cuda(call);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("Gemm"), std::string::npos) << r.status().message();
}

}  // namespace
}  // namespace kiln::test
