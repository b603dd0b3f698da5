// kiln.Fp8MatMul (cuBLASLt FP8 E4M3 GEMM) against the CPU reference kernel (dequantize, then
// matmul), every tactic; the fp8-gemm-fusion pass inside the builder on a Q/DQ graph; and the
// time of BERT-base's GEMM shapes in FP8 against FP16 (printed, for the record).
#include <algorithm>
#include <chrono>

#include "passes_test_util.hpp"
#include "tactic_test_util.hpp"

namespace kiln::test {
namespace {


struct Fp8Call {
  Dims x;
  int64_t n = 0;
  DType t = DType::kFloat16;
  bool bias = true, residual = false;
  std::string act;
};

OpCall fp8_call(const Fp8Call& c) {
  const int64_t k = c.x.back();
  auto [w, ws] = fp8_weight({c.n, k}, 7);
  OpCall call{.op_type = "Fp8MatMul", .domain = "kiln"};
  // X already quantized (kiln.Fp8Quantize's output), a few values saturated; x_scale in Y's dtype.
  const float sx = 2.5f / 448;
  Tensor xq = random_tensor(DType::kFloat32, c.x, 8, -3, 3);
  for (int64_t i = 0; i < xq.numel(); ++i) xq.data<float>()[i] /= sx;
  call.inputs = {xq.cast(DType::kFloat8E4M3FN), Tensor::scalar<float>(sx).cast(c.t), w, Tensor::scalar<float>(ws)};
  call.constant_inputs = {false, true, true, true};
  if (c.bias || c.residual) {
    call.inputs.push_back(c.bias ? random_tensor(c.t, {c.n}, 9) : Tensor());
    call.constant_inputs.push_back(true);
  }
  if (c.residual) {
    Dims y = c.x;
    y.back() = c.n;
    call.inputs.push_back(random_tensor(c.t, y, 10));
    call.constant_inputs.push_back(false);
  }
  if (!c.act.empty()) call.attrs.set("activation", c.act);
  return call;
}

TEST(CudaFp8MatMul, EveryTacticMatchesCpuReference) {
  KILN_REQUIRE_GPU();
  for (const Fp8Call& c : {Fp8Call{.x = {64, 128}, .n = 256},
                           Fp8Call{.x = {4, 32, 128}, .n = 64},  // batched [B, S, K] x [K, N], as in BERT
                           Fp8Call{.x = {100, 64}, .n = 48, .bias = false},
                           Fp8Call{.x = {2, 50, 96}, .n = 32, .act = "Relu"},
                           Fp8Call{.x = {2, 24, 64}, .n = 128, .residual = true, .act = "Gelu"},
                           Fp8Call{.x = {64, 128}, .n = 64, .bias = false, .residual = true},
                           Fp8Call{.x = {3, 16, 64}, .n = 32, .t = DType::kBFloat16, .act = "Gelu"},
                           Fp8Call{.x = {48, 32}, .n = 16, .t = DType::kFloat32}}) {
    SCOPED_TRACE(dims_to_string(c.x) + " N " + std::to_string(c.n) + " " + std::string(dtype_name(c.t)) + " bias " +
                 std::to_string(c.bias) + " residual " + std::to_string(c.residual) + " act '" + c.act + "'");
    EXPECT_TRUE(all_tactics_match_cpu(fp8_call(c), 1e-2));
  }
}

TEST(CudaFp8Quantize, MatchesCpuExactly) {
  KILN_REQUIRE_GPU();
  for (DType t : {DType::kFloat16, DType::kBFloat16, DType::kFloat32})
    for (const Dims& d : {Dims{4, 64, 96}, Dims{7, 13}}) {  // vectorized, and odd sizes
      OpCall call{.op_type = "Fp8Quantize",
                  .inputs = {random_tensor(t, d, 3, -600, 600), Tensor::scalar<float>(0.75f)},
                  .constant_inputs = {false, true},
                  .domain = "kiln"};
      EXPECT_TRUE(matches_cpu(call, 0.0)) << dtype_name(t) << " " << dims_to_string(d);
    }
}

TEST(CudaFp8MatMul, UnalignedShapesAreReportedNotRun) {
  KILN_REQUIRE_GPU();
  EXPECT_FALSE(cuda_builds(fp8_call({.x = {8, 40}, .n = 32})));  // K % 16 != 0
  EXPECT_FALSE(cuda_builds(fp8_call({.x = {8, 32}, .n = 24})));  // N % 16 != 0
}

// x -> Q/DQ (float8) -> MatMul(., DQ(W)) + bias -> Gelu, built with --fp8 (FP16 elsewhere) against
// the float32 CPU run of the Q/DQ graph.
TEST(CudaFp8MatMul, BuilderFusesQdqGraphWithFp8Flag) {
  KILN_REQUIRE_GPU();
  auto make = [] {
    passtest::G b;
    Value* x = b.input("x", {2, 16, 64});
    b.feeds["x"] = random_tensor(DType::kFloat32, {2, 16, 64}, 3, -2, 2);
    Value* sx = b.scalar("sx", 2.f / 448);
    Value* q = b.op("QuantizeLinear", {x, sx}, "q", passtest::attrs({{"output_dtype", int64_t{17}}}));
    Value* dq = b.op("DequantizeLinear", {q, sx}, "dq");
    auto [wt, ws] = fp8_weight({32, 64}, 4);
    Tensor w(DType::kFloat8E4M3FN, {64, 32});  // [K, N] as a MatMul reads it
    for (int64_t i = 0; i < 64; ++i)
      for (int64_t j = 0; j < 32; ++j) w.data<Float8E4M3FN>()[i * 32 + j] = wt.data<Float8E4M3FN>()[j * 64 + i];
    Value* wdq = b.op("DequantizeLinear", {b.constant("w", w), b.scalar("sw", ws)}, "wdq");
    Value* y = b.op("MatMul", {dq, wdq}, "mm");
    y = b.op("Add", {y, b.random_const("bias", {32})}, "add");
    y = b.op("Gelu", {y}, "gelu");
    b.g->outputs = {y};
    return b;
  };
  passtest::G ref = make();
  auto want = passtest::run_graph(ref.g, ref.feeds);
  ASSERT_TRUE(want.ok()) << want.status().message();
  BuildOptions o;
  o.backend = "cuda";
  o.fp8 = true;
  Model model;
  model.graph = make().g;
  auto plan = build_plan(std::move(model), o);
  ASSERT_TRUE(plan.ok()) << plan.status().message();
  int fp8_layers = 0;
  for (size_t i = 0; i < plan->graph->nodes().size(); ++i)
    if (plan->graph->nodes()[i]->op_type == "Fp8MatMul") {
      ++fp8_layers;
      EXPECT_EQ(plan->layers[i].precision, "fp8");
    }
  EXPECT_EQ(fp8_layers, 1);
  auto engine = Engine::from_plan(std::move(*plan));
  ASSERT_TRUE(engine.ok()) << engine.status().message();
  auto ctx = (*engine)->create_context();
  ASSERT_TRUE(ctx.ok());
  auto got = (*ctx)->run(ref.feeds);
  ASSERT_TRUE(got.ok()) << got.status().message();
  EXPECT_LE(rel_l2((*got)[0], (*want)[0]), 2e-2);
}


// BERT-base at batch 64, sequence 128: QKV/out projection, FFN up, FFN down (M = 8192 rows).
TEST(CudaFp8Timing, BertBaseGemmsFp8VsFp16) {
  KILN_REQUIRE_GPU();
  struct Shape { int64_t m, n, k; const char* what; };
  for (const Shape& s : {Shape{8192, 768, 768, "attention projection"}, Shape{8192, 3072, 768, "FFN up"},
                         Shape{8192, 768, 3072, "FFN down"}}) {
    const bool gelu = s.n == 3072;
    OpCall fp8 = fp8_call({.x = {64, s.m / 64, s.k}, .n = s.n, .act = gelu ? "Gelu" : ""});
    OpCall quant{.op_type = "Fp8Quantize",
                 .inputs = {random_tensor(DType::kFloat16, {64, s.m / 64, s.k}, 4), Tensor::scalar<float>(0.01f)},
                 .constant_inputs = {false, true},
                 .domain = "kiln"};
    OpCall fp16{.op_type = "FusedMatMul",
                .inputs = {quant.inputs[0], random_tensor(DType::kFloat16, {s.k, s.n}, 5, -0.1, 0.1),
                           random_tensor(DType::kFloat16, {s.n}, 6)},
                .constant_inputs = {false, true, true},
                .domain = "kiln"};
    std::string tactic;
    auto t8 = one_node_plan_ms(fp8, &tactic);
    ASSERT_TRUE(t8.ok()) << t8.status().message();
    auto t16 = one_node_plan_ms(fp16);
    ASSERT_TRUE(t16.ok()) << t16.status().message();
    auto tq = one_node_plan_ms(quant);
    ASSERT_TRUE(tq.ok()) << tq.status().message();
    const double tflop = 2.0 * static_cast<double>(s.m * s.n * s.k) * 1e-12;
    std::printf("[fp8 timing] %ldx%ldx%ld %-20s FP8 GEMM+bias%s %.4f ms (%.0f TFLOP/s), quantize x %.4f ms; "
                "FP16 GEMM+bias %.4f ms (%.0f TFLOP/s): %.2fx GEMM only, %.2fx with the quantization [%s]\n",
                static_cast<long>(s.m), static_cast<long>(s.n), static_cast<long>(s.k), s.what, gelu ? "+GELU" : "",
                *t8, tflop / (*t8 * 1e-3), *tq, *t16, tflop / (*t16 * 1e-3), *t16 / *t8, *t16 / (*t8 + *tq),
                tactic.c_str());
    EXPECT_GT(*t8, 0.0);
  }
}

}  // namespace
}  // namespace kiln::test
