// The fp8-quantize-fusion pass (kiln.Fp8Quantize into its producer) and the CPU reference kernels
// of what it makes: kiln.Fp8MatMul writing float8 (y_scale) and kiln.Fp8LayerNorm.
#include "passes_test_util.hpp"

namespace kiln::passtest {
namespace {

using test::OpCall;
using test::fp8_weight;

Attributes fp8_out() { return attrs({{"output_dtype", int64_t{17}}}); }


struct Builder {
  G& b;
  DType t;
  Value* scalar(const std::string& name, float v) { return b.constant(name, Tensor::scalar<float>(v).cast(t)); }
  // x -> Q(s) -> DQ(s)
  Value* qdq(Value* x, float s, const std::string& name) {
    Value* sv = scalar(name + "_s", s);
    return b.op("DequantizeLinear", {b.op("QuantizeLinear", {x, sv}, name + "_q", fp8_out()), sv}, name + "_dq");
  }
  // MatMul(x, DQ(float8 W [k, n])) + bias
  Value* gemm(Value* x, int64_t k, int64_t n, const std::string& name, uint32_t seed) {
    auto [w, ws] = fp8_weight({k, n}, seed);
    Value* wdq = b.op("DequantizeLinear", {b.constant(name + "_w", w), scalar(name + "_sw", ws)}, name + "_wdq");
    Value* y = b.op("MatMul", {x, wdq}, name);
    return b.op("Add", {y, b.constant(name + "_b", test::random_tensor(t, {n}, seed + 1))}, name + "_bias");
  }
};

// BERT's encoder block in miniature, quantized as --fp8 quantizes it: x -> LayerNorm -> Q/DQ ->
// up GEMM + bias -> Gelu -> Q/DQ -> down GEMM + bias + LayerNorm output (residual).
G ffn_graph(DType t, bool extra_reader = false) {
  G b;
  Builder q{b, t};
  const int64_t k = 32, h = 64;
  Value* x = b.input("x", {2, 6, k}, t);
  b.feeds["x"] = test::random_tensor(t, {2, 6, k}, 3, -2, 2);
  Value* ln = b.op("LayerNormalization",
                   {x, b.constant("gamma", test::random_tensor(t, {k}, 4, 0.5, 1.5)),
                    b.constant("beta", test::random_tensor(t, {k}, 5))},
                   "ln", attrs({{"epsilon", 1e-5f}}));
  Value* up = b.op("Gelu", {q.gemm(q.qdq(ln, 4.f / 448, "x1"), k, h, "up", 6)}, "gelu");
  Value* down = q.gemm(q.qdq(up, 3.f / 448, "x2"), h, k, "down", 8);
  b.g->outputs = {b.op("Add", {down, ln}, "residual")};
  if (extra_reader) b.g->outputs.push_back(up);  // the up-projection's float output is wanted too
  return b;
}

std::function<void(PassManager&)> fp8_passes() {
  return [](PassManager& pm) {
    pm.add(make_fp8_gemm_fusion_pass());
    pm.add(make_fp8_quantize_fusion_pass());
    pm.add(make_dead_code_pass());
  };
}

std::function<void(PassManager&)> gemm_fusion_only() {
  return [](PassManager& pm) {
    pm.add(make_fp8_gemm_fusion_pass());
    pm.add(make_dead_code_pass());
  };
}

// The graph after fp8-gemm-fusion alone (separate kiln.Fp8Quantize nodes) and after both passes
// compute the same on the CPU (within `tol`); returns the latter. (Against the raw Q/DQ graph the
// float16 GEMM chains round differently: fp8-gemm-fusion's own tolerance.)
GraphPtr check_against_gemm_fusion(const std::function<G()>& make, double tol) {
  auto fused_run = [&](const std::function<void(PassManager&)>& passes, GraphPtr* keep) {
    G b = make();
    EXPECT_TRUE(infer_shapes(*b.g).ok());
    PassManager pm;
    passes(pm);
    EXPECT_TRUE(pm.run(*b.g).ok());
    if (keep) *keep = b.g;
    return run_graph(b.g, b.feeds);
  };
  GraphPtr g;
  auto want = fused_run(gemm_fusion_only(), nullptr);
  auto got = fused_run(fp8_passes(), &g);
  EXPECT_TRUE(want.ok() && got.ok());
  if (want.ok() && got.ok()) {
    EXPECT_EQ(got->size(), want->size());
    for (size_t i = 0; i < got->size() && i < want->size(); ++i) {
      EXPECT_EQ((*got)[i].dtype(), (*want)[i].dtype());
      EXPECT_LE(test::rel_l2((*got)[i], (*want)[i]), tol) << "output " << i;
    }
  }
  return g;
}

const Node* find(const Graph& g, const std::string& op) {
  for (const auto& n : g.nodes())
    if (n->op_type == op) return n.get();
  return nullptr;
}

TEST(Fp8QuantizeFusion, Float16BlockHasNoQuantizeLeft) {
  // The same arithmetic as with separate quantizations (of the float16 producer outputs), and
  // close to the raw Q/DQ graph.
  check_before_after([] { return ffn_graph(DType::kFloat16); }, fp8_passes(), 2e-2);
  GraphPtr g = check_against_gemm_fusion([] { return ffn_graph(DType::kFloat16); }, 1e-6);
  EXPECT_EQ(ops(*g), (std::vector<std::string>{"Fp8LayerNorm", "Fp8MatMul", "Fp8MatMul"}));
  const Node* ln = find(*g, "Fp8LayerNorm");
  ASSERT_NE(ln, nullptr);
  EXPECT_EQ(ln->domain, "kiln");
  EXPECT_EQ(ln->outputs.size(), 2u);
  EXPECT_EQ(ln->outputs[1]->type.dtype, DType::kFloat8E4M3FN);
  EXPECT_EQ(ln->attrs.i("axis", 0), 2);
  EXPECT_EQ(ln->attrs.s(kFusedAttr, ""), "ln:LayerNormalization,x1_q:Fp8Quantize");
  // The up GEMM (Gelu fused) writes float8 with the down GEMM's input scale.
  const Node* up = nullptr;
  for (const auto& n : g->nodes())
    if (n->op_type == "Fp8MatMul" && n->attrs.s("activation", "") == "Gelu") up = n.get();
  ASSERT_NE(up, nullptr);
  ASSERT_EQ(up->num_inputs(), 7u);
  EXPECT_FALSE(up->has_input(5));
  EXPECT_FLOAT_EQ(static_cast<float>(up->inputs[6]->constant->scalar_as_double()),
                  static_cast<float>(Tensor::scalar<float>(3.f / 448).cast(DType::kFloat16).scalar_as_double()));
  EXPECT_EQ(up->outputs[0]->type.dtype, DType::kFloat8E4M3FN);
  EXPECT_NE(up->attrs.s(kFusedAttr, "").find("x2_q:Fp8Quantize"), std::string::npos);
  // The down GEMM reads the float LayerNorm output as its residual.
  const Node* down = up == g->nodes()[1].get() ? g->nodes()[2].get() : g->nodes()[1].get();
  ASSERT_EQ(down->num_inputs(), 6u);
  EXPECT_EQ(down->inputs[5], ln->outputs[0]);
  EXPECT_EQ(down->inputs[0], up->outputs[0]);
}

TEST(Fp8QuantizeFusion, Float32GemmsKeepTheirQuantize) {
  // cuBLASLt writes float8 only with a 16-bit C type: a float32 GEMM keeps kiln.Fp8Quantize; the
  // LayerNorm still takes its quantization.
  GraphPtr g = check_before_after([] { return ffn_graph(DType::kFloat32); }, fp8_passes(), 1e-6);
  EXPECT_EQ(count(*g, "Fp8Quantize"), 1);
  EXPECT_EQ(count(*g, "Fp8LayerNorm"), 1);
  EXPECT_EQ(count(*g, "LayerNormalization"), 0);
}

TEST(Fp8QuantizeFusion, GemmOutputWithOtherReadersStays) {
  GraphPtr g = check_against_gemm_fusion([] { return ffn_graph(DType::kBFloat16, true); }, 1e-6);
  EXPECT_EQ(count(*g, "Fp8Quantize"), 1);
  EXPECT_EQ(count(*g, "Fp8LayerNorm"), 1);
  for (const auto& n : g->nodes())
    if (n->op_type == "Fp8MatMul") { EXPECT_NE(n->outputs[0]->type.dtype, DType::kFloat8E4M3FN); }
}

TEST(Fp8QuantizeFusion, LayerNormWithUsedStatisticsStays) {
  auto make = [] {
    G b = ffn_graph(DType::kFloat16);
    for (const auto& n : b.g->nodes())
      if (n->op_type == "LayerNormalization") {
        Value* mean = b.g->add_value("ln_mean");
        n->outputs.push_back(mean);
        mean->producer = n.get();
        b.g->outputs.push_back(mean);
      }
    return b;
  };
  G b = make();
  ASSERT_TRUE(infer_shapes(*b.g).ok());
  PassManager pm;
  fp8_passes()(pm);
  ASSERT_TRUE(pm.run(*b.g).ok());
  EXPECT_EQ(count(*b.g, "Fp8LayerNorm"), 0);
  EXPECT_EQ(count(*b.g, "LayerNormalization"), 1);
  EXPECT_EQ(count(*b.g, "Fp8Quantize"), 1);
}

// A BERT encoder layer in miniature (float16, as --fp8 lowers the rest), FP8 Q/DQ on its four GEMMs:
// the whole CUDA pipeline on it (the passes run anywhere; the kernels here are the CPU ones).
G encoder_graph() {
  G b;
  const DType t = DType::kFloat16;
  Builder q{b, t};
  const int64_t B = 2, S = 5, d = 16, e = 2 * d, h = 64;
  Value* x = b.input("x", {B, S, e}, t);
  b.feeds["x"] = test::random_tensor(t, {B, S, e}, 3, -2, 2);
  Value* mask = b.input("mask", {B, 1, 1, S}, t);
  b.feeds["mask"] = test::random_tensor(t, {B, 1, 1, S}, 4, -1, 0);
  Value* ln = b.op("LayerNormalization",
                   {x, b.constant("g1", test::random_tensor(t, {e}, 5, 0.5, 1.5)),
                    b.constant("b1", test::random_tensor(t, {e}, 6))},
                   "ln1");
  Value* xq = q.qdq(ln, 4.f / 448, "x1");
  Value* heads = b.ints("heads", {B, S, 2, d});
  Value* proj[3];
  for (int i = 0; i < 3; ++i) {
    const std::string n(1, "qkv"[i]);
    proj[i] = b.op("Reshape", {q.gemm(xq, e, e, n, 10 + 2 * static_cast<uint32_t>(i)), heads}, n + "_heads");
  }
  Value* qt = b.op("Transpose", {proj[0]}, "q_t", attrs({{"perm", std::vector<int64_t>{0, 2, 1, 3}}}));
  Value* kt = b.op("Transpose", {proj[1]}, "k_t", attrs({{"perm", std::vector<int64_t>{0, 2, 3, 1}}}));
  Value* vt = b.op("Transpose", {proj[2]}, "v_t", attrs({{"perm", std::vector<int64_t>{0, 2, 1, 3}}}));
  Value* sc = b.op("Div", {b.op("MatMul", {qt, kt}, "scores"), q.scalar("sqrt_d", 4.f)}, "div");
  Value* p = b.op("Softmax", {b.op("Add", {sc, mask}, "add_mask")}, "softmax", attrs({{"axis", int64_t{-1}}}));
  Value* o = b.op("Transpose", {b.op("MatMul", {p, vt}, "context")}, "merge",
                  attrs({{"perm", std::vector<int64_t>{0, 2, 1, 3}}}));
  o = b.op("Reshape", {o, b.ints("flat", {B, S, e})}, "attn_out");
  Value* a = b.op("Add", {q.gemm(q.qdq(o, 2.f / 448, "x2"), e, e, "out", 20), ln}, "res1");
  Value* ln2 = b.op("LayerNormalization",
                    {a, b.constant("g2", test::random_tensor(t, {e}, 7, 0.5, 1.5)),
                     b.constant("b2", test::random_tensor(t, {e}, 8))},
                    "ln2");
  Value* up = b.op("Gelu", {q.gemm(q.qdq(ln2, 4.f / 448, "x3"), e, h, "up", 22)}, "gelu");
  Value* down = q.gemm(q.qdq(up, 3.f / 448, "x4"), h, e, "down", 24);
  b.g->outputs = {b.op("Add", {down, ln2}, "res2")};
  return b;
}

TEST(Fp8QuantizeFusion, CudaPipelineOnAnEncoderLayer) {
  GraphPtr g = check_before_after(encoder_graph, [](PassManager& pm) { add_cuda_passes(pm); }, 3e-2);
  EXPECT_EQ(count(*g, "Fp8LayerNorm"), 2);
  EXPECT_EQ(count(*g, "LayerNormalization"), 0);
  EXPECT_EQ(count(*g, "Attention"), 1);
  // Q/K/V merged; out projection, up (float8 out), down.
  EXPECT_EQ(count(*g, "Fp8MatMul"), 4);
  // Only the attention output's quantization is left.
  EXPECT_EQ(count(*g, "Fp8Quantize"), 1);
  for (const auto& n : g->nodes())
    if (n->op_type == "Attention") {
      EXPECT_EQ(n->inputs[0], n->inputs[1]);
      EXPECT_EQ(n->inputs[0], n->inputs[2]);
      ASSERT_NE(n->inputs[0]->producer, nullptr);
      EXPECT_EQ(n->inputs[0]->producer->op_type, "Fp8MatMul");
      EXPECT_EQ(n->attrs.ints("k_view")[0], 32);  // K's columns start after Q's
    }
}

// kiln.Fp8LayerNorm against LayerNormalization then e4m3 quantization, computed here in double.
TEST(Fp8LayerNormOp, MatchesNaiveReference) {
  for (DType t : {DType::kFloat32, DType::kFloat16, DType::kBFloat16})
    for (bool with_bias : {true, false}) {
      SCOPED_TRACE(std::string(dtype_name(t)) + (with_bias ? " bias" : " no bias"));
      const int64_t rows = 6, cols = 40;
      Tensor x = test::random_tensor(t, {2, 3, cols}, 21, -3, 5);
      Tensor g = test::random_tensor(t, {cols}, 22, 0.5, 2);
      Tensor bias = with_bias ? test::random_tensor(t, {1, cols}, 23) : Tensor();
      const float s = 2.f / 448;  // |y| beyond 2 saturates
      OpCall call{.op_type = "Fp8LayerNorm", .inputs = {x, g, Tensor::scalar<float>(s), bias},
                  .num_outputs = 2, .domain = "kiln"};
      call.attrs.set("epsilon", 1e-3f);
      auto out = test::run_op(call);
      ASSERT_TRUE(out.ok()) << out.status().message();
      ASSERT_EQ((*out)[0].dtype(), t);
      ASSERT_EQ((*out)[1].dtype(), DType::kFloat8E4M3FN);
      ASSERT_EQ((*out)[1].dims(), x.dims());
      const auto xv = x.to_double_vector(), gv = g.to_double_vector();
      const auto bv = with_bias ? bias.to_double_vector() : std::vector<double>(cols, 0.0);
      std::vector<double> y(static_cast<size_t>(rows * cols)), q(y.size());
      for (int64_t r = 0; r < rows; ++r) {
        double mean = 0, var = 0;
        for (int64_t c = 0; c < cols; ++c) mean += xv[static_cast<size_t>(r * cols + c)] / cols;
        for (int64_t c = 0; c < cols; ++c) var += std::pow(xv[static_cast<size_t>(r * cols + c)] - mean, 2) / cols;
        for (int64_t c = 0; c < cols; ++c) {
          const size_t i = static_cast<size_t>(r * cols + c);
          y[i] = (xv[i] - mean) / std::sqrt(var + 1e-3) * gv[static_cast<size_t>(c)] + bv[static_cast<size_t>(c)];
          q[i] = std::clamp(y[i] / s, -448.0, 448.0);
        }
      }
      const double tol = t == DType::kFloat32 ? 1e-6 : t == DType::kFloat16 ? 2e-3 : 1e-2;
      EXPECT_LE(test::rel_l2((*out)[0], Tensor::from_vector<double>(x.dims(), y)), tol);
      // e4m3 keeps 3 mantissa bits: within 2^-4 relative of the value (saturation included above).
      EXPECT_LE(test::rel_l2((*out)[1].cast(DType::kFloat32), Tensor::from_vector<double>(x.dims(), q)), 4e-2);
      // Yq is exactly the quantization of the rounded Y.
      const auto yv = (*out)[0].to_double_vector();
      const auto qv = (*out)[1].to_double_vector();
      for (size_t i = 0; i < yv.size(); ++i)
        ASSERT_EQ(qv[i], e4m3fn_bits_to_float(float_to_e4m3fn_bits(static_cast<float>(yv[i]) / s))) << i;
    }
}

TEST(Fp8LayerNormOp, Errors) {
  auto expect_error = [](OpCall call, const std::string& what) {
    call.domain = "kiln";
    call.num_outputs = 2;
    Status st = test::run_op(call).status();
    EXPECT_FALSE(st.ok());
    EXPECT_NE(st.message().find("Fp8LayerNorm_node"), std::string::npos) << st.message();
    EXPECT_NE(st.message().find(what), std::string::npos) << st.message();
  };
  Tensor x = test::random_tensor(DType::kFloat32, {4, 16});
  Tensor g = test::random_tensor(DType::kFloat32, {16});
  Tensor s = Tensor::scalar<float>(0.1f);
  expect_error({"Fp8LayerNorm", {x, test::random_tensor(DType::kFloat32, {8}), s}}, "Scale");
  expect_error({"Fp8LayerNorm", {x, g, Tensor::from_vector<float>({2}, {1, 2})}}, "q_scale");
  expect_error({"Fp8LayerNorm", {x.cast(DType::kInt32), g, s}}, "X must be");
  expect_error({"Fp8LayerNorm", {x, g.cast(DType::kFloat16), s}}, "Scale is float16");
  expect_error({"Fp8LayerNorm", {x, g, s, test::random_tensor(DType::kFloat32, {15})}}, "B [15]");
}

// kiln.Fp8MatMul with y_scale: the float8 quantization of the float16 Y it computes without it.
TEST(Fp8MatMulOp, YScaleQuantizesTheOutput) {
  auto [w, ws] = fp8_weight({24, 32}, 31);  // [N, K]
  const float sx = 2.f / 448, sy = 1.5f / 448;
  const DType t = DType::kFloat16;
  Tensor xq = test::random_tensor(DType::kFloat32, {3, 4, 32}, 32, -400, 400).cast(DType::kFloat8E4M3FN);
  Tensor bias = test::random_tensor(t, {24}, 33), res = test::random_tensor(t, {3, 4, 24}, 34);
  OpCall plain{.op_type = "Fp8MatMul",
               .inputs = {xq, Tensor::scalar<float>(sx).cast(t), w, Tensor::scalar<float>(ws), bias, res},
               .constant_inputs = {false, true, true, true, true, false},
               .domain = "kiln"};
  plain.attrs.set("activation", std::string("Gelu"));
  auto y = test::run_op(plain);
  ASSERT_TRUE(y.ok()) << y.status().message();
  OpCall fused = plain;
  fused.inputs.push_back(Tensor::scalar<float>(sy).cast(t));
  fused.constant_inputs.push_back(true);
  auto q = test::run_op(fused);
  ASSERT_TRUE(q.ok()) << q.status().message();
  ASSERT_EQ((*q)[0].dtype(), DType::kFloat8E4M3FN);
  ASSERT_EQ((*q)[0].dims(), (Dims{3, 4, 24}));
  const float sy16 = static_cast<float>(Tensor::scalar<float>(sy).cast(t).scalar_as_double());
  const auto yv = (*y)[0].to_double_vector(), qv = (*q)[0].to_double_vector();
  int saturated = 0;
  for (size_t i = 0; i < yv.size(); ++i) {
    ASSERT_EQ(qv[i], e4m3fn_bits_to_float(float_to_e4m3fn_bits(static_cast<float>(yv[i]) / sy16))) << i;
    saturated += std::fabs(qv[i]) == 448.0;
  }
  EXPECT_GT(saturated, 0);  // the range is exercised
  // Without bias, residual: absent inputs before y_scale.
  OpCall bare{.op_type = "Fp8MatMul",
              .inputs = {xq, Tensor::scalar<float>(sx).cast(t), w, Tensor::scalar<float>(ws), Tensor(), Tensor(),
                         Tensor::scalar<float>(sy).cast(t)},
              .constant_inputs = {false, true, true, true, true, true, true},
              .domain = "kiln"};
  auto bq = test::run_op(bare);
  ASSERT_TRUE(bq.ok()) << bq.status().message();
  EXPECT_EQ((*bq)[0].dtype(), DType::kFloat8E4M3FN);
  OpCall bad = fused;
  bad.inputs.back() = Tensor::from_vector<float>({2}, {1, 2}).cast(t);
  Status st = test::run_op(bad).status();
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find("y_scale"), std::string::npos) << st.message();
}

}  // namespace
}  // namespace kiln::passtest
