// The FP8 quantization fused into producers (fp8-quantize-fusion): kiln.Fp8MatMul writing float8
// (cuBLASLt D scale, or the own epilogue kernel), kiln.Fp8LayerNorm, each against the CPU
// reference (float8 outputs compared dequantized: a rounding-boundary flip moves a value by one
// e4m3 step); an FFN block built with --fp8 against the float32 CPU run of its Q/DQ graph; and the
// FFN up-projection's time with the float8 output against float16 output + kiln.Fp8Quantize.
#include <algorithm>
#include <map>

#include "passes_test_util.hpp"
#include "tactic_test_util.hpp"

namespace kiln::test {
namespace {


struct Fp8OutCall {
  Dims x;
  int64_t n = 0;
  DType t = DType::kFloat16;
  bool bias = true, residual = false;
  std::string act;
  float y_scale = 0.f;  // 0: about the output's amax / 448 (a few values saturate)
};

// kiln.Fp8MatMul(Xq, sx, W, sw, [bias], [residual], y_scale): a random float8 X, |y| ~ a few.
OpCall fp8_out_call(const Fp8OutCall& c) {
  const int64_t k = c.x.back();
  auto [w, ws] = fp8_weight({c.n, k}, 7);
  const float sx = 2.5f / 448;
  Tensor xq = random_tensor(DType::kFloat32, c.x, 8, -3, 3);
  for (int64_t i = 0; i < xq.numel(); ++i) xq.data<float>()[i] /= sx;
  OpCall call{.op_type = "Fp8MatMul", .domain = "kiln"};
  call.inputs = {xq.cast(DType::kFloat8E4M3FN), Tensor::scalar<float>(sx).cast(c.t), w, Tensor::scalar<float>(ws),
                 c.bias ? random_tensor(c.t, {c.n}, 9) : Tensor()};
  call.constant_inputs = {false, true, true, true, true};
  Dims y = c.x;
  y.back() = c.n;
  call.inputs.push_back(c.residual ? random_tensor(c.t, y, 10) : Tensor());
  call.constant_inputs.push_back(false);
  // y ~ sqrt(k) * 3 * 0.5 / sqrt(3)^2-ish: a scale of k/32 / 448 saturates the largest few.
  const float sy = c.y_scale > 0 ? c.y_scale : std::sqrt(static_cast<float>(k)) * 0.6f / 448;
  call.inputs.push_back(Tensor::scalar<float>(sy).cast(c.t));
  call.constant_inputs.push_back(true);
  if (!c.act.empty()) call.attrs.set("activation", c.act);
  return call;
}

TEST(CudaFp8MatMulFp8Out, EveryTacticMatchesCpuReference) {
  KILN_REQUIRE_GPU();
  for (const Fp8OutCall& c : {Fp8OutCall{.x = {64, 128}, .n = 256},
                              Fp8OutCall{.x = {4, 32, 128}, .n = 192, .act = "Gelu"},  // the FFN up-projection
                              Fp8OutCall{.x = {100, 64}, .n = 48, .bias = false},
                              Fp8OutCall{.x = {2, 50, 96}, .n = 32, .act = "Relu"},
                              Fp8OutCall{.x = {2, 24, 64}, .n = 128, .residual = true, .act = "Gelu"},
                              Fp8OutCall{.x = {64, 128}, .n = 64, .bias = false, .residual = true},
                              Fp8OutCall{.x = {3, 16, 64}, .n = 32, .t = DType::kBFloat16, .act = "Gelu"}}) {
    SCOPED_TRACE(dims_to_string(c.x) + " N " + std::to_string(c.n) + " " + std::string(dtype_name(c.t)) + " bias " +
                 std::to_string(c.bias) + " residual " + std::to_string(c.residual) + " act '" + c.act + "'");
    EXPECT_TRUE(all_tactics_match_cpu(fp8_out_call(c), 3e-2));
  }
}

TEST(CudaFp8MatMulFp8Out, Float32OutputIsNotTaken) {
  KILN_REQUIRE_GPU();
  // cuBLASLt's float8 D needs a 16-bit C type; the layer refuses rather than runs it wrong.
  EXPECT_FALSE(cuda_builds(fp8_out_call({.x = {8, 32}, .n = 32, .t = DType::kFloat32})));
}

TEST(CudaFp8LayerNorm, MatchesCpuReference) {
  KILN_REQUIRE_GPU();
  struct Case { Dims x; DType t; bool bias; };
  for (const Case& c : {Case{{4, 32, 768}, DType::kFloat16, true},   // BERT's rows, 16-byte accesses
                        Case{{3, 5, 64}, DType::kBFloat16, true},
                        Case{{7, 36}, DType::kFloat16, false},        // 36 % 8: scalar accesses
                        Case{{6, 40}, DType::kFloat32, true},
                        Case{{3, 2048}, DType::kFloat16, true}}) {   // > 1024: LayerNorm, then quantize
    SCOPED_TRACE(dims_to_string(c.x) + " " + std::string(dtype_name(c.t)));
    const int64_t cols = c.x.back();
    OpCall call{.op_type = "Fp8LayerNorm",
                .inputs = {random_tensor(c.t, c.x, 3, -3, 5), random_tensor(c.t, {cols}, 4, 0.5, 1.5),
                           Tensor::scalar<float>(2.f / 448), c.bias ? random_tensor(c.t, {cols}, 5) : Tensor()},
                .constant_inputs = {false, true, true, true},
                .num_outputs = 2,
                .domain = "kiln"};
    call.attrs.set("epsilon", 1e-5f);
    EXPECT_TRUE(matches_cpu(call, 3e-2));
    // The float output as tight as LayerNormalization's.
    auto cpu = run_op(call);
    auto gpu = run_op_cuda(call);
    ASSERT_TRUE(cpu.ok() && gpu.ok());
    EXPECT_LE(rel_l2((*gpu)[0], (*cpu)[0]), c.t == DType::kFloat32 ? 1e-5 : c.t == DType::kFloat16 ? 2e-3 : 1e-2);
  }
}

// LayerNorm -> Q/DQ -> up GEMM + bias -> Gelu -> Q/DQ -> down GEMM + bias + residual, with --fp8:
// no kiln.Fp8Quantize is left, and the result is the Q/DQ graph's (float32 CPU run).
TEST(CudaFp8QuantizeFusion, FfnBlockBuiltWithFp8Flag) {
  KILN_REQUIRE_GPU();
  auto make = [] {
    passtest::G b;
    const int64_t k = 64, h = 256;
    Value* x = b.input("x", {2, 16, k});
    b.feeds["x"] = random_tensor(DType::kFloat32, {2, 16, k}, 3, -2, 2);
    Value* ln = b.op("LayerNormalization", {x, b.random_const("gamma", {k}, 0.5, 1.5), b.random_const("beta", {k})},
                     "ln");
    auto qdq = [&](Value* v, float s, const std::string& name) {
      Value* sv = b.scalar(name + "_s", s);
      Value* q = b.op("QuantizeLinear", {v, sv}, name + "_q", passtest::attrs({{"output_dtype", int64_t{17}}}));
      return b.op("DequantizeLinear", {q, sv}, name + "_dq");
    };
    auto gemm = [&](Value* v, int64_t kk, int64_t n, const std::string& name, uint32_t seed) {
      auto [wt, ws] = fp8_weight({n, kk}, seed);
      Tensor w(DType::kFloat8E4M3FN, {kk, n});  // [K, N] as a MatMul reads it
      for (int64_t i = 0; i < kk; ++i)
        for (int64_t j = 0; j < n; ++j) w.data<Float8E4M3FN>()[i * n + j] = wt.data<Float8E4M3FN>()[j * kk + i];
      Value* wdq = b.op("DequantizeLinear", {b.constant(name + "_w", w), b.scalar(name + "_sw", ws)}, name + "_wdq");
      return b.op("Add", {b.op("MatMul", {v, wdq}, name), b.random_const(name + "_b", {n}, -0.2, 0.2)},
                  name + "_bias");
    };
    Value* up = b.op("Gelu", {gemm(qdq(ln, 4.f / 448, "x1"), k, h, "up", 6)}, "gelu");
    Value* down = gemm(qdq(up, 3.f / 448, "x2"), h, k, "down", 8);
    b.g->outputs = {b.op("Add", {down, ln}, "residual")};
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
  int quantize = 0, fp8_ln = 0, fp8_out = 0;
  for (const auto& n : plan->graph->nodes()) {
    quantize += n->op_type == "Fp8Quantize";
    fp8_ln += n->op_type == "Fp8LayerNorm";
    fp8_out += n->op_type == "Fp8MatMul" && n->outputs[0]->type.dtype == DType::kFloat8E4M3FN;
  }
  EXPECT_EQ(quantize, 0);
  EXPECT_EQ(fp8_ln, 1);
  EXPECT_EQ(fp8_out, 1);
  auto engine = Engine::from_plan(std::move(*plan));
  ASSERT_TRUE(engine.ok()) << engine.status().message();
  auto ctx = (*engine)->create_context();
  ASSERT_TRUE(ctx.ok());
  auto got = (*ctx)->run(ref.feeds);
  ASSERT_TRUE(got.ok()) << got.status().message();
  // Against the float32 Q/DQ reference: the CUDA plan rounds the 16-bit intermediates before each
  // of its five E4M3 quantizations, so single elements may land one E4M3 step (12.5%) apart; over
  // four chained FP8 GEMMs that is a few percent of relative L2 (seen: 4.7e-2).
  EXPECT_LE(rel_l2((*got)[0], (*want)[0]), 6e-2);
}

// A BERT encoder layer (float32 model with FP8 Q/DQ on its GEMMs, 2 heads of 32) built with --fp8:
// LayerNorms write float8, Q/K/V run as one merged GEMM read by kiln.Attention through views, the
// FFN up-projection writes float8; against the float32 CPU run of the Q/DQ graph.
TEST(CudaFp8QuantizeFusion, EncoderLayerBuiltWithFp8Flag) {
  KILN_REQUIRE_GPU();
  auto make = [] {
    passtest::G b;
    const int64_t B = 2, S = 16, d = 32, e = 2 * d, h = 128;
    Value* x = b.input("x", {B, S, e});
    b.feeds["x"] = random_tensor(DType::kFloat32, {B, S, e}, 3, -2, 2);
    Value* mask = b.input("mask", {B, 1, 1, S});
    b.feeds["mask"] = random_tensor(DType::kFloat32, {B, 1, 1, S}, 4, -1, 0);
    auto qdq = [&](Value* v, float s, const std::string& name) {
      Value* sv = b.scalar(name + "_s", s);
      Value* q = b.op("QuantizeLinear", {v, sv}, name + "_q", passtest::attrs({{"output_dtype", int64_t{17}}}));
      return b.op("DequantizeLinear", {q, sv}, name + "_dq");
    };
    auto gemm = [&](Value* v, int64_t kk, int64_t n, const std::string& name, uint32_t seed) {
      auto [wt, ws] = fp8_weight({n, kk}, seed);
      Tensor w(DType::kFloat8E4M3FN, {kk, n});
      for (int64_t i = 0; i < kk; ++i)
        for (int64_t j = 0; j < n; ++j) w.data<Float8E4M3FN>()[i * n + j] = wt.data<Float8E4M3FN>()[j * kk + i];
      Value* wdq = b.op("DequantizeLinear", {b.constant(name + "_w", w), b.scalar(name + "_sw", ws)}, name + "_wdq");
      return b.op("Add", {b.op("MatMul", {v, wdq}, name), b.random_const(name + "_b", {n}, -0.2, 0.2)},
                  name + "_bias");
    };
    auto layer_norm = [&](Value* v, const std::string& name) {
      return b.op("LayerNormalization", {v, b.random_const(name + "_g", {e}, 0.5, 1.5), b.random_const(name + "_b", {e})},
                  name);
    };
    Value* ln = layer_norm(x, "ln1");
    Value* xq = qdq(ln, 4.f / 448, "x1");
    Value* heads = b.ints("heads", {B, S, 2, d});
    Value* proj[3];
    for (int i = 0; i < 3; ++i) {
      const std::string n(1, "qkv"[i]);
      proj[i] = b.op("Reshape", {gemm(xq, e, e, n, 10 + 2 * static_cast<uint32_t>(i)), heads}, n + "_heads");
    }
    auto perm = [](std::vector<int64_t> p) { return passtest::attrs({{"perm", p}}); };
    Value* qt = b.op("Transpose", {proj[0]}, "q_t", perm({0, 2, 1, 3}));
    Value* kt = b.op("Transpose", {proj[1]}, "k_t", perm({0, 2, 3, 1}));
    Value* vt = b.op("Transpose", {proj[2]}, "v_t", perm({0, 2, 1, 3}));
    Value* sc = b.op("Div", {b.op("MatMul", {qt, kt}, "scores"), b.scalar("sqrt_d", std::sqrt(32.f))}, "div");
    Value* p = b.op("Softmax", {b.op("Add", {sc, mask}, "add_mask")}, "softmax",
                    passtest::attrs({{"axis", int64_t{-1}}}));
    Value* o = b.op("Transpose", {b.op("MatMul", {p, vt}, "context")}, "merge", perm({0, 2, 1, 3}));
    o = b.op("Reshape", {o, b.ints("flat", {B, S, e})}, "attn_out");
    Value* ln2 = layer_norm(b.op("Add", {gemm(qdq(o, 2.f / 448, "x2"), e, e, "out", 20), ln}, "res1"), "ln2");
    Value* up = b.op("Gelu", {gemm(qdq(ln2, 4.f / 448, "x3"), e, h, "up", 22)}, "gelu");
    b.g->outputs = {b.op("Add", {gemm(qdq(up, 3.f / 448, "x4"), h, e, "down", 24), ln2}, "res2")};
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
  std::map<std::string, int> ops;
  for (const auto& n : plan->graph->nodes()) ++ops[n->op_type];
  EXPECT_EQ(ops["Attention"], 1);
  EXPECT_EQ(ops["Fp8LayerNorm"], 2);
  EXPECT_EQ(ops["Fp8MatMul"], 4);  // Q/K/V merged
  EXPECT_EQ(ops["Fp8Quantize"], 1);  // the attention output's
  auto engine = Engine::from_plan(std::move(*plan));
  ASSERT_TRUE(engine.ok()) << engine.status().message();
  auto ctx = (*engine)->create_context();
  ASSERT_TRUE(ctx.ok());
  auto got = (*ctx)->run(ref.feeds);
  ASSERT_TRUE(got.ok()) << got.status().message();
  // Against the float32 Q/DQ reference: the CUDA plan rounds the 16-bit intermediates before each
  // of its five E4M3 quantizations, so single elements may land one E4M3 step (12.5%) apart; over
  // four chained FP8 GEMMs that is a few percent of relative L2 (seen: 4.7e-2).
  EXPECT_LE(rel_l2((*got)[0], (*want)[0]), 6e-2);
}


// BERT-base b64: the FFN up-projection (8192x3072x768 + GELU) writing float8 vs float16 + the
// separate quantization; LayerNorm (8192 rows of 768) with and without the float8 copy.
TEST(CudaFp8Timing, FusedQuantizationVsSeparate) {
  KILN_REQUIRE_GPU();
  OpCall fused = fp8_out_call({.x = {64, 128, 768}, .n = 3072, .act = "Gelu"});
  OpCall plain = fused;
  plain.inputs.pop_back();
  plain.constant_inputs.pop_back();
  OpCall quant{.op_type = "Fp8Quantize",
               .inputs = {random_tensor(DType::kFloat16, {64, 128, 3072}, 4), Tensor::scalar<float>(0.01f)},
               .constant_inputs = {false, true},
               .domain = "kiln"};
  std::string tf, tp;
  auto t_fused = one_node_plan_ms(fused, &tf), t_plain = one_node_plan_ms(plain, &tp), t_quant = one_node_plan_ms(quant);
  ASSERT_TRUE(t_fused.ok()) << t_fused.status().message();
  ASSERT_TRUE(t_plain.ok() && t_quant.ok());
  std::printf("[fp8 fusion timing] FFN up 8192x3072x768+GELU: float8 out %.4f ms [%s]; float16 out %.4f ms [%s] + "
              "quantize %.4f ms = %.4f ms\n",
              *t_fused, tf.c_str(), *t_plain, tp.c_str(), *t_quant, *t_plain + *t_quant);
  OpCall ln{.op_type = "Fp8LayerNorm",
            .inputs = {random_tensor(DType::kFloat16, {64, 128, 768}, 3), random_tensor(DType::kFloat16, {768}, 4),
                       Tensor::scalar<float>(0.01f), random_tensor(DType::kFloat16, {768}, 5)},
            .constant_inputs = {false, true, true, true},
            .num_outputs = 2,
            .domain = "kiln"};
  OpCall ln_plain{.op_type = "LayerNormalization",
                  .inputs = {ln.inputs[0], ln.inputs[1], ln.inputs[3]},
                  .constant_inputs = {false, true, true}};
  auto t_ln = one_node_plan_ms(ln), t_ln_plain = one_node_plan_ms(ln_plain);
  ASSERT_TRUE(t_ln.ok() && t_ln_plain.ok());
  std::printf("[fp8 fusion timing] LayerNorm 8192x768: with the float8 copy %.4f ms; without %.4f ms\n", *t_ln,
              *t_ln_plain);
  EXPECT_LT(*t_fused, *t_plain + *t_quant);
}

}  // namespace
}  // namespace kiln::test
