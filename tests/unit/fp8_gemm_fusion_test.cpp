// kiln.Fp8MatMul (CPU reference kernel) and the fp8-gemm-fusion pass: FP8 Q/DQ graphs before and
// after the pass give the same CPU outputs, and the fused structure is what the CUDA layer takes.
#include "builder/builder.hpp"
#include "passes_test_util.hpp"
#include "quant/qdq_insertion.hpp"

namespace kiln::passtest {
namespace {

using test::OpCall;
using test::fp8_weight;

Attributes fp8_out() { return attrs({{"output_dtype", int64_t{17}}}); }


struct Fp8Case {
  bool gemm = false, trans_b = false, bias = true, residual = false;
  std::string act;  // "", "Relu", "Gelu"
  DType t = DType::kFloat32;
  float x_scale = 2.f / 448, dq_scale = 2.f / 448;  // a differing DQ scale must block the fusion
};

// x -> Q -> DQ -> MatMul/Gemm(., DQ(W)) [+ bias] [+ residual] [-> act] -> y
G fp8_graph(const Fp8Case& c) {
  G b;
  const int64_t k = 32, n = 16;
  Dims xd = c.gemm ? Dims{12, k} : Dims{2, 6, k};
  Value* x = b.input("x", xd, c.t);
  b.feeds["x"] = test::random_tensor(c.t, xd, 3, -2.5, 2.5);  // a few values saturate
  auto scalar_t = [&](const std::string& name, float v) { return b.constant(name, Tensor::scalar<float>(v).cast(c.t)); };
  Value* sx = scalar_t("sx", c.x_scale);
  Value* q = b.op("QuantizeLinear", {x, sx}, "q", fp8_out());
  Value* dq = b.op("DequantizeLinear", {q, c.dq_scale == c.x_scale ? sx : scalar_t("sx2", c.dq_scale)}, "dq");
  auto [w, ws] = fp8_weight(c.trans_b ? Dims{n, k} : Dims{k, n}, 4);
  Value* wdq = b.op("DequantizeLinear", {b.constant("w", w), scalar_t("sw", ws)}, "wdq");
  Value* bias = b.constant("bias", test::random_tensor(c.t, c.gemm ? Dims{1, n} : Dims{n}, 5));
  Value* y = nullptr;
  if (c.gemm) {
    std::vector<Value*> ins{dq, wdq};
    if (c.bias) ins.push_back(bias);
    y = b.op("Gemm", ins, "mm", attrs({{"transB", int64_t{c.trans_b}}}));
  } else {
    y = b.op("MatMul", {dq, wdq}, "mm");
    if (c.bias) y = b.op("Add", {y, bias}, "add_bias");
  }
  if (c.residual) y = b.op("Add", {b.input("r", c.gemm ? Dims{12, n} : Dims{2, 6, n}, c.t), y}, "add_res");
  if (!c.act.empty()) y = b.op(c.act, {y}, "act");
  b.g->outputs = {y};
  return b;
}

GraphPtr fuse(const Fp8Case& c, double tol = 1e-5) {
  return check_before_after([&] { return fp8_graph(c); }, with_dce(make_fp8_gemm_fusion_pass), tol);
}

const Node* fp8_node(const Graph& g) {
  for (const auto& n : g.nodes())
    if (n->op_type == "Fp8MatMul") return n.get();
  return nullptr;
}

const std::vector<std::string> kFused = {"Fp8Quantize", "Fp8MatMul"};

TEST(Fp8GemmFusion, MatMulBiasResidualGelu) {
  GraphPtr g = fuse({.bias = true, .residual = true, .act = "Gelu"});
  EXPECT_EQ(ops(*g), kFused);
  const Node* n = fp8_node(*g);
  ASSERT_NE(n, nullptr);
  EXPECT_EQ(n->domain, "kiln");
  EXPECT_EQ(n->attrs.s("activation", ""), "Gelu");
  EXPECT_EQ(n->attrs.s(kFusedAttr, ""), "mm:MatMul,add_bias:Add,add_res:Add,act:Gelu");
  EXPECT_EQ(n->num_inputs(), 6u);
  // The weight is stored transposed, [N, K], in float8.
  ASSERT_TRUE(n->inputs[2]->is_constant());
  EXPECT_EQ(n->inputs[2]->constant->dims(), (Dims{16, 32}));
  EXPECT_EQ(n->inputs[2]->constant->dtype(), DType::kFloat8E4M3FN);
}

TEST(Fp8GemmFusion, VariantsKeepOutputs) {
  EXPECT_EQ(ops(*fuse({.bias = false})), kFused);
  EXPECT_EQ(fp8_node(*fuse({.bias = false}))->num_inputs(), 4u);
  EXPECT_EQ(fp8_node(*fuse({.bias = false, .residual = true}))->num_inputs(), 6u);  // absent bias, residual
  EXPECT_EQ(ops(*fuse({.act = "Relu"})), kFused);
  EXPECT_EQ(ops(*fuse({.gemm = true})), kFused);
  EXPECT_EQ(ops(*fuse({.gemm = true, .trans_b = true, .act = "Relu"})), kFused);
  // float16 activations and scales (the --fp8 pipeline runs the rest in float16).
  EXPECT_EQ(ops(*fuse({.bias = true, .act = "Gelu", .t = DType::kFloat16}, 2e-3)), kFused);
}

// Two GEMMs reading one quantized x (attention's Q/K/V projections) share one Fp8Quantize.
TEST(Fp8GemmFusion, GemmsOfOneInputShareTheQuantization) {
  auto make = [] {
    G b = fp8_graph({.bias = false});
    Value* dq = nullptr;
    for (const auto& n : b.g->nodes())
      if (n->name == "dq") dq = n->outputs[0];
    auto [w2, ws2] = fp8_weight({32, 8}, 12);
    Value* wdq2 = b.op("DequantizeLinear", {b.constant("w2", w2), b.scalar("sw2", ws2)}, "wdq2");
    b.g->outputs.push_back(b.op("Relu", {b.op("MatMul", {dq, wdq2}, "mm2")}, "relu2"));
    return b;
  };
  GraphPtr g = check_before_after(make, with_dce(make_fp8_gemm_fusion_pass));
  EXPECT_EQ(count(*g, "Fp8Quantize"), 1);
  EXPECT_EQ(count(*g, "Fp8MatMul"), 2);
  EXPECT_EQ(count(*g, "DequantizeLinear") + count(*g, "QuantizeLinear") + count(*g, "MatMul"), 0);
}

TEST(Fp8GemmFusion, LeavesWhatItCannotFuse) {
  // Q and DQ scales differ: not a plain quantize-dequantize of x.
  GraphPtr g = fuse({.dq_scale = 3.f / 448});
  EXPECT_EQ(count(*g, "Fp8MatMul"), 0);
  // A per-channel weight scale.
  G b = fp8_graph({});
  for (const auto& n : b.g->nodes())
    if (n->name == "wdq") {
      n->inputs[1] = b.constant("sw_axis", Tensor::from_vector<float>({16}, std::vector<float>(16, 0.01f)));
      n->attrs.set("axis", int64_t{1});
    }
  ASSERT_TRUE(infer_shapes(*b.g).ok());
  PassManager pm;
  pm.add(make_fp8_gemm_fusion_pass());
  ASSERT_TRUE(pm.run(*b.g).ok());
  EXPECT_EQ(count(*b.g, "Fp8MatMul"), 0);
  EXPECT_EQ(count(*b.g, "MatMul"), 1);
}

// --fp8 needs float8 Q/DQ in the model, and builds the rest in float16 (here on the CPU backend,
// which runs the Q/DQ graph as simulated quantization).
TEST(Fp8Build, NeedsFloat8QdqAndLowersTheRest) {
  BuildOptions o;
  o.fp8 = true;
  Model m;
  m.graph = fp8_graph({.bias = true, .act = "Gelu"}).g;
  auto plan = build_plan(std::move(m), o);
  ASSERT_TRUE(plan.ok()) << plan.status().message();
  bool any_fp16 = false;
  for (const auto& n : plan->graph->nodes())
    for (const Value* v : n->outputs) any_fp16 |= v && v->type.dtype == DType::kFloat16;
  EXPECT_TRUE(any_fp16);
  G plain;
  Value* x = plain.input("x", {2, 8});
  plain.g->outputs = {plain.op("MatMul", {x, plain.random_const("w", {8, 4})}, "mm")};
  Model m2;
  m2.graph = plain.g;
  auto refused = build_plan(std::move(m2), o);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("--fp8"), std::string::npos) << refused.status().message();
}

// insert_qdq's FP8 branch: per-tensor amax/448 scales on the GEMM with a constant weight, the
// activation x activation product left float; the fusion pass then takes the quantized GEMM.
TEST(Fp8QdqInsertion, GemmsWithConstantWeightsPerTensor) {
  auto make = [] {
    G b;
    Value* x = b.input("x", {4, 16});
    Value* mm = b.op("MatMul", {x, b.random_const("w", {16, 8})}, "mm");
    b.g->outputs = {b.op("MatMul", {mm, b.input("r", {8, 3})}, "mm2")};
    return b;
  };
  G b = make();
  ASSERT_TRUE(infer_shapes(*b.g).ok());
  auto want = run_graph(b.g, b.feeds);
  ASSERT_TRUE(want.ok());
  RangeTable ranges;
  ranges.amax = {{"x", 2.f}, {"mm", 4.f}, {"r", 2.f}};
  QuantizationSpec spec;
  spec.qtype = DType::kFloat8E4M3FN;
  QuantizationReport report;
  spec.report = &report;
  auto changed = insert_qdq(*b.g, ranges, spec);
  ASSERT_TRUE(changed.ok()) << changed.status().message();
  EXPECT_TRUE(*changed);
  EXPECT_EQ(report.quantized.size(), 1u);
  ASSERT_EQ(report.kept_float.size(), 1u);
  EXPECT_NE(report.kept_float[0].second.find("constant weights"), std::string::npos);
  for (const auto& n : b.g->nodes()) {
    if (n->op_type == "QuantizeLinear") {
      EXPECT_EQ(n->outputs[0]->type.dtype, DType::kFloat8E4M3FN);
      EXPECT_FLOAT_EQ(static_cast<float>(n->inputs[1]->constant->scalar_as_double()), 2.f / 448);
    }
    if (n->op_type == "DequantizeLinear" && n->inputs[0]->constant) {
      EXPECT_EQ(n->inputs[0]->constant->dtype(), DType::kFloat8E4M3FN);
      EXPECT_EQ(n->inputs[1]->constant->numel(), 1);  // per tensor
    }
  }
  auto got = run_graph(b.g, b.feeds);
  ASSERT_TRUE(got.ok()) << got.status().message();
  EXPECT_LT(test::rel_l2((*got)[0], (*want)[0]), 5e-2);
  EXPECT_GT(test::rel_l2((*got)[0], (*want)[0]), 0.0);
  PassManager pm;
  pm.add(make_fp8_gemm_fusion_pass());
  pm.add(make_dead_code_pass());
  ASSERT_TRUE(pm.run(*b.g).ok());
  EXPECT_EQ(count(*b.g, "Fp8MatMul"), 1);
  EXPECT_EQ(count(*b.g, "MatMul"), 1);
}

// The CPU kernel against the Q/DQ ops it stands for, computed independently here in double.
TEST(Fp8MatMulOp, MatchesQdqReference) {
  auto [w, ws] = fp8_weight({8, 16}, 9);  // [N, K]
  const float sx = 1.5f / 448;
  for (DType t : {DType::kFloat32, DType::kFloat16, DType::kBFloat16}) {
    SCOPED_TRACE(dtype_name(t));
    Tensor x = test::random_tensor(DType::kFloat32, {3, 5, 16}, 10, -2, 2);  // beyond 1.5: saturates
    auto xq = test::run_op({"Fp8Quantize", {x, Tensor::scalar<float>(sx)}, {}, {}, 1, 21, "kiln"});
    ASSERT_TRUE(xq.ok()) << xq.status().message();
    ASSERT_EQ((*xq)[0].dtype(), DType::kFloat8E4M3FN);
    Tensor bias = test::random_tensor(t, {8}, 11);
    OpCall call{.op_type = "Fp8MatMul",
                .inputs = {(*xq)[0], Tensor::scalar<float>(sx).cast(t), w, Tensor::scalar<float>(ws), bias},
                .constant_inputs = {false, true, true, true, true},
                .domain = "kiln"};
    call.attrs.set("activation", std::string("Relu"));
    auto out = test::run_op(call);
    ASSERT_TRUE(out.ok()) << out.status().message();
    ASSERT_EQ((*out)[0].dims(), (Dims{3, 5, 8}));
    ASSERT_EQ((*out)[0].dtype(), t);
    const auto xv = x.to_double_vector(), wv = w.to_double_vector(), bv = bias.to_double_vector();
    std::vector<double> want(15 * 8);
    for (int r = 0; r < 15; ++r)
      for (int j = 0; j < 8; ++j) {
        double s = bv[static_cast<size_t>(j)];
        for (int p = 0; p < 16; ++p) {
          // x / scale in float, as QuantizeLinear divides float32 data; the conversion saturates.
          const float xs = static_cast<float>(xv[static_cast<size_t>(r * 16 + p)]) / sx;
          const double q = e4m3fn_bits_to_float(float_to_e4m3fn_bits(xs));
          // x_scale as Y's dtype holds (float16/bfloat16 round it).
          s += q * Tensor::scalar<float>(sx).cast(t).scalar_as_double() * wv[static_cast<size_t>(j * 16 + p)] * ws;
        }
        want[static_cast<size_t>(r * 8 + j)] = std::max(s, 0.0);
      }
    EXPECT_LE(test::rel_l2((*out)[0], Tensor::from_vector<double>({3, 5, 8}, want)),
              t == DType::kFloat32 ? 1e-6 : t == DType::kFloat16 ? 2e-3 : 1e-2);
  }
}

TEST(Fp8MatMulOp, Errors) {
  auto [w, ws] = fp8_weight({8, 16}, 9);
  Tensor x = test::random_tensor(DType::kFloat32, {4, 16}).cast(DType::kFloat8E4M3FN);
  auto expect_error = [](OpCall call, const std::string& what) {
    call.domain = "kiln";
    Status st = test::run_op(call).status();
    EXPECT_FALSE(st.ok());
    EXPECT_NE(st.message().find("Fp8MatMul_node"), std::string::npos) << st.message();
    EXPECT_NE(st.message().find(what), std::string::npos) << st.message();
  };
  Tensor s = Tensor::scalar<float>(0.1f);
  expect_error({"Fp8MatMul", {x, s, w.cast(DType::kFloat32), s}}, "float8e4m3fn");
  expect_error({"Fp8MatMul", {x.cast(DType::kFloat32), s, w, s}}, "X must be float8e4m3fn");
  expect_error({"Fp8MatMul", {test::random_tensor(DType::kFloat32, {4, 12}).cast(DType::kFloat8E4M3FN), s, w, s}},
               "disagree on K");
  expect_error({"Fp8MatMul", {x, Tensor::from_vector<float>({2}, {1, 2}), w, s}}, "x_scale");
  OpCall bad_act{"Fp8MatMul", {x, s, w, s}};
  bad_act.attrs.set("activation", std::string("Tanh"));
  expect_error(bad_act, "Tanh");
  expect_error({"Fp8MatMul", {x, s, w, s, test::random_tensor(DType::kFloat32, {7})}}, "bias");
}

}  // namespace
}  // namespace kiln::passtest
