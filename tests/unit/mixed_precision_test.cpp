// Mixed precision: per-node overrides and constraints, the fp32 guard and --best's INT8 rule
// (docs/precision.md; the accuracy budget is in accuracy_budget_test.cpp).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "backends/cpu/cpu_executor.hpp"
#include "builder/accuracy_budget.hpp"
#include "builder/builder.hpp"
#include "builder/precision_guard.hpp"
#include "builder/precision_plan.hpp"
#include "onnx/importer.hpp"
#include "ops/onnx_dtype.hpp"
#include "mixed_precision_test_util.hpp"
#include "passes/pass.hpp"

namespace kiln {
namespace {
using namespace mptest;


TEST(MixedPrecision, OverrideKeepsNodeFp32WithCasts) {
  BuildOptions o = cpu_fp16();
  o.layer_precisions = {{"mm2", "fp32"}};
  auto plan = build_plan(mlp(), o);
  ASSERT_TRUE(plan.ok()) << plan.status().message();
  const Graph& g = *plan->graph;
  const Node* mm1 = find_node(g, "mm1");
  const Node* mm2 = find_node(g, "mm2");
  ASSERT_TRUE(mm1 && mm2);
  EXPECT_EQ(mm1->outputs[0]->type.dtype, DType::kFloat16);
  EXPECT_EQ(mm1->inputs[1]->constant->dtype(), DType::kFloat16);
  EXPECT_EQ(mm2->outputs[0]->type.dtype, DType::kFloat32);
  EXPECT_EQ(mm2->outputs[0], g.outputs[0]);  // no cast after it: it is float32 already
  EXPECT_EQ(mm2->inputs[1]->constant->dtype(), DType::kFloat32);
  // Its activation comes through a Cast float16 -> float32.
  const Node* cast = mm2->inputs[0]->producer;
  ASSERT_TRUE(cast);
  EXPECT_EQ(cast->op_type, "Cast");
  EXPECT_EQ(cast->inputs[0]->type.dtype, DType::kFloat16);
  EXPECT_EQ(cast->attrs.i("to", 0), onnx_code_of(DType::kFloat32));
  EXPECT_TRUE(report_has(*plan, "layer precision: 'mm2' (MatMul) fp32"));

  // The numbers: close to float32, as only mm1/relu went through float16.
  Tensor x = random_tensor(DType::kFloat32, {4, 16}, 7);
  Model ref = mlp();
  Tensor want = run_one(ref.graph, {{"x", x}});
  Tensor got = run_one(plan->graph, {{"x", x}});
  EXPECT_LT(rel_l2(want, got), 2e-3);
  EXPECT_GT(rel_l2(want, got), 0.0);
}

TEST(MixedPrecision, Fp16OverrideInFloat32Build) {
  BuildOptions o;
  o.backend = "cpu";
  o.layer_precisions = {{"mm*", "fp16"}};  // glob: both MatMuls, the Relu stays float32
  auto plan = build_plan(mlp(), o);
  ASSERT_TRUE(plan.ok()) << plan.status().message();
  const Graph& g = *plan->graph;
  EXPECT_EQ(find_node(g, "mm1")->outputs[0]->type.dtype, DType::kFloat16);
  EXPECT_EQ(find_node(g, "relu")->outputs[0]->type.dtype, DType::kFloat32);
  EXPECT_EQ(find_node(g, "mm2")->outputs[0]->type.dtype, DType::kFloat16);
  EXPECT_EQ(g.outputs[0]->type.dtype, DType::kFloat32);
  EXPECT_EQ(g.inputs[0]->type.dtype, DType::kFloat32);
}

TEST(MixedPrecision, GlobAndParse) {
  EXPECT_TRUE(glob_match("*/LayerNorm*", "encoder/layer.0/LayerNorm_1"));
  EXPECT_FALSE(glob_match("*/LayerNorm*", "LayerNorm"));
  EXPECT_TRUE(glob_match("conv?", "conv1"));
  EXPECT_FALSE(glob_match("conv?", "conv12"));
  EXPECT_TRUE(glob_match("*", ""));
  auto ok = parse_layer_precisions({"a:fp32,b/c:d:fp16", "x:tf32"});
  ASSERT_TRUE(ok.ok()) << ok.status().message();
  ASSERT_EQ(ok->size(), 3u);
  EXPECT_EQ((*ok)[1].first, "b/c:d");
  EXPECT_EQ((*ok)[1].second, "fp16");
  EXPECT_EQ((*ok)[2].second, "fp32");
  auto bad = parse_layer_precisions({"conv1:fp64"});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("unknown precision 'fp64'"), std::string::npos);
  EXPECT_FALSE(parse_layer_precisions({"conv1"}).ok());
  EXPECT_FALSE(parse_layer_precisions({":fp16"}).ok());
}

TEST(MixedPrecision, ObeyFailsNamingTheLayer) {
  BuildOptions o = cpu_fp16();
  o.precision_constraints = "obey";
  o.layer_precisions = {{"relu", "int8"}};
  auto plan = build_plan(mlp(), o);
  ASSERT_FALSE(plan.ok());
  const std::string msg = plan.status().message();
  EXPECT_NE(msg.find("node 'relu'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("Conv, MatMul and Gemm only"), std::string::npos) << msg;
  EXPECT_NE(msg.find("obey"), std::string::npos) << msg;

  o.layer_precisions = {{"nosuch*", "fp32"}};
  plan = build_plan(mlp(), o);
  ASSERT_FALSE(plan.ok());
  EXPECT_NE(plan.status().message().find("nosuch*:fp32 matches no node"), std::string::npos);

  o.layer_precisions = {{"mm1", "int8"}};  // quantizable, but no calibration data
  plan = build_plan(mlp(), o);
  ASSERT_FALSE(plan.ok());
  EXPECT_NE(plan.status().message().find("calibration data"), std::string::npos);
}

TEST(MixedPrecision, PreferWarnsAndBuilds) {
  BuildOptions o = cpu_fp16();
  o.layer_precisions = {{"relu", "int8"}, {"nosuch", "fp16"}};
  auto plan = build_plan(mlp(), o);
  ASSERT_TRUE(plan.ok()) << plan.status().message();
  EXPECT_TRUE(report_has(*plan, "warning: --layer-precision relu:int8: node 'relu'"));
  EXPECT_TRUE(report_has(*plan, "warning: --layer-precision nosuch:fp16 matches no node"));
  EXPECT_EQ(find_node(*plan->graph, "relu")->outputs[0]->type.dtype, DType::kFloat16);  // the --fp16 default
  o.precision_constraints = "sometimes";
  EXPECT_FALSE(build_plan(mlp(), o).ok());
}

// A backend that runs everything but Relu in float16: the support fallback.
class NoFp16Relu : public Backend {
 public:
  std::string name() const override { return "nofp16relu"; }
  Status available() const override { return Status::Ok(); }
  PlanTarget target() const override { return {}; }
  Status check_target(const PlanTarget&) const override { return Status::Ok(); }
  bool supports(const Node& n) const override {
    return !(n.op_type == "Relu" && n.outputs[0]->type.dtype == DType::kFloat16);
  }
  bool needs_static_shapes() const override { return false; }
  Status choose_layers(Graph&, const BuildOptions&, std::vector<LayerChoice>&) const override {
    return Status::Ok();
  }
  Expected<std::unique_ptr<EngineImpl>> create_engine(const Plan&) const override {
    return unsupported("test backend");
  }
};

TEST(MixedPrecision, UnsupportedPrecisionFallsBackOrFails) {
  Model m = mlp();
  ASSERT_TRUE(infer_shapes(*m.graph).ok());
  NoFp16Relu backend;
  BuildOptions o = cpu_fp16();
  auto p = plan_precisions(*m.graph, o, backend);
  ASSERT_TRUE(p.ok()) << p.status().message();
  EXPECT_EQ(p->assignment.of(*find_node(*m.graph, "relu")), DType::kFloat32);
  EXPECT_EQ(p->assignment.of(*find_node(*m.graph, "mm1")), DType::kFloat16);
  ASSERT_FALSE(p->report.empty());
  EXPECT_NE(p->report.back().find("fallback: 'relu' (Relu) runs in fp32: the nofp16relu backend has no fp16 kernel"),
            std::string::npos)
      << p->report.back();

  o.layer_precisions = {{"relu", "fp16"}};
  p = plan_precisions(*m.graph, o, backend);
  ASSERT_TRUE(p.ok());
  EXPECT_NE(p->report.back().find("warning: 'relu'"), std::string::npos) << p->report.back();
  o.precision_constraints = "obey";
  p = plan_precisions(*m.graph, o, backend);
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.status().message().find("node 'relu' (Relu"), std::string::npos) << p.status().message();
  EXPECT_NE(p.status().message().find("no fp16 kernel for Relu"), std::string::npos);
}

// x[1, n] -> ReduceSum(axis 1) "sum" -> y
Model reduce_sum(int64_t n) {
  Model m;
  m.graph = std::make_shared<Graph>();
  Graph& g = *m.graph;
  Value* x = g.add_value("x", {DType::kFloat32, Shape::from_dims({1, n})});
  Value* axes = g.add_constant("axes", Tensor::from_vector<int64_t>({1}, {1}));
  Value* s = g.add_value("s");
  Value* y = g.add_value("y");
  g.inputs = {x};
  g.add_node("ReduceSum", {x, axes}, {s}, "sum");
  g.add_node("Relu", {s}, {y}, "relu");
  g.outputs = {y};
  return m;
}

TEST(MixedPrecision, GuardKeepsLargeReduceSumInFp32) {
  auto plan = build_plan(reduce_sum(8192), cpu_fp16());
  ASSERT_TRUE(plan.ok()) << plan.status().message();
  EXPECT_EQ(find_node(*plan->graph, "sum")->outputs[0]->type.dtype, DType::kFloat32);
  EXPECT_EQ(find_node(*plan->graph, "relu")->outputs[0]->type.dtype, DType::kFloat16);
  EXPECT_TRUE(report_has(*plan, "fp32 guard: 'sum' (ReduceSum) kept in fp32: ReduceSum over 8192 elements"));
  // The sum of 8192 values of 10 (81920) overflows float16 unless the guard keeps it in float32.
  Tensor x = Tensor::from_vector<float>({1, 8192}, std::vector<float>(8192, 10.f));
  Tensor got = run_one(plan->graph, {{"x", x}});
  EXPECT_TRUE(std::isinf(got.data<float>()[0]));  // the Relu after it is float16: 81920 does not fit
  BuildOptions off = cpu_fp16();
  off.fp32_guard = false;
  plan = build_plan(reduce_sum(8192), off);
  ASSERT_TRUE(plan.ok());
  EXPECT_EQ(find_node(*plan->graph, "sum")->outputs[0]->type.dtype, DType::kFloat16);
  EXPECT_TRUE(plan->precision_report.empty());
  // bfloat16 has float32's range: nothing to guard.
  BuildOptions bf = cpu_fp16();
  bf.fp16 = false;
  bf.bf16 = true;
  plan = build_plan(reduce_sum(8192), bf);
  ASSERT_TRUE(plan.ok());
  EXPECT_EQ(find_node(*plan->graph, "sum")->outputs[0]->type.dtype, DType::kBFloat16);
  EXPECT_TRUE(report_has(*plan, "fp32 guard: nothing to keep for bf16"));
  // A small reduction is left alone.
  plan = build_plan(reduce_sum(4096), cpu_fp16());
  ASSERT_TRUE(plan.ok());
  EXPECT_EQ(find_node(*plan->graph, "sum")->outputs[0]->type.dtype, DType::kFloat16);
}

// A hand-written RMS normalization: y = x / sqrt(mean(x^2) + eps) over the last axis of 64.
Model rms_norm() {
  Model m;
  m.graph = std::make_shared<Graph>();
  Graph& g = *m.graph;
  Value* x = g.add_value("x", {DType::kFloat32, Shape::from_dims({2, 64})});
  Value* two = g.add_constant("two", Tensor::from_vector<float>({}, {2.f}));
  Value* axes = g.add_constant("axes", Tensor::from_vector<int64_t>({1}, {-1}));
  Value* eps = g.add_constant("eps", Tensor::from_vector<float>({}, {1e-6f}));
  Value *sq = g.add_value("sq"), *ms = g.add_value("ms"), *mse = g.add_value("mse"), *rms = g.add_value("rms"),
        *y = g.add_value("y");
  g.inputs = {x};
  g.add_node("Pow", {x, two}, {sq}, "pow");
  g.add_node("ReduceMean", {sq, axes}, {ms}, "mean");
  g.add_node("Add", {ms, eps}, {mse}, "add_eps");
  g.add_node("Sqrt", {mse}, {rms}, "sqrt");
  g.add_node("Div", {x, rms}, {y}, "div");
  g.outputs = {y};
  return m;
}

TEST(MixedPrecision, GuardKeepsDecomposedNormalizationInFp32) {
  auto plan = build_plan(rms_norm(), cpu_fp16());
  ASSERT_TRUE(plan.ok()) << plan.status().message();
  for (const char* name : {"pow", "mean", "add_eps", "sqrt"}) {
    EXPECT_EQ(find_node(*plan->graph, name)->outputs[0]->type.dtype, DType::kFloat32) << name;
    EXPECT_TRUE(report_has(*plan, std::string("fp32 guard: '") + name + "'")) << name;
  }
  EXPECT_EQ(find_node(*plan->graph, "div")->outputs[0]->type.dtype, DType::kFloat16);
  // |x| ~ 1000: x^2 overflows float16, the guarded graph stays accurate.
  Tensor x = random_tensor(DType::kFloat32, {2, 64}, 5, 500.0, 1500.0);
  Model ref = rms_norm();
  Tensor want = run_one(ref.graph, {{"x", x}});
  Tensor got = run_one(plan->graph, {{"x", x}});
  EXPECT_LT(rel_l2(want, got), 2e-3);
  BuildOptions off = cpu_fp16();
  off.fp32_guard = false;
  auto unguarded = build_plan(rms_norm(), off);
  ASSERT_TRUE(unguarded.ok());
  EXPECT_GT(rel_l2(want, run_one(unguarded->graph, {{"x", x}})), 0.5);
}

TEST(MixedPrecision, GuardExpFeedingSumAndLayerNormUntouched) {
  Graph g;
  Value* x = g.add_value("x", {DType::kFloat32, Shape::from_dims({2, 64})});
  Value* axes = g.add_constant("axes", Tensor::from_vector<int64_t>({1}, {-1}));
  Value *e = g.add_value("e"), *s = g.add_value("s");
  g.inputs = {x};
  g.add_node("Exp", {x}, {e}, "exp");
  g.add_node("ReduceSum", {e, axes}, {s}, "sum");
  g.outputs = {s};
  auto h = find_fp16_hazards(g);
  ASSERT_EQ(h.size(), 2u);
  EXPECT_EQ(h[0].node, "exp");
  EXPECT_EQ(h[1].node, "sum");
  EXPECT_NE(h[0].reason.find("Exp feeding ReduceSum"), std::string::npos);

  // The committed transformer models hold no guarded pattern once the clean-up passes have run
  // (LayerNormalization is fused; its kernels compute in float32 internally).
  for (const char* name : {"bert_tiny", "vit_tiny", "resnet_small", "mobilenetv3_small", "unet_small"}) {
    auto model = import_onnx_file(std::string(KILN_SOURCE_DIR) + "/tests/models/data/" + name + "/model.onnx");
    ASSERT_TRUE(model.ok()) << model.status().message();
    PassManager pm;
    add_cleanup_passes(pm, false);
    ASSERT_TRUE(pm.run(*model->graph).ok());
    ASSERT_TRUE(infer_shapes(*model->graph).ok());
    EXPECT_TRUE(find_fp16_hazards(*model->graph).empty()) << name << ": " << find_fp16_hazards(*model->graph)[0].node;
    if (std::string(name) == "bert_tiny") {
      bool has_ln = false;
      for (const auto& n : model->graph->nodes()) has_ln |= n->op_type == "LayerNormalization";
      EXPECT_TRUE(has_ln);
    }
  }
}

TEST(MixedPrecision, BestInt8Rule) {
  Graph g;
  Value* x = g.add_value("x", {DType::kFloat32, Shape::from_dims({1, 1024})});
  Value* wb = g.add_constant("wb", Tensor::zeros(DType::kFloat32, {1024, 1024}));
  Value* ws = g.add_constant("ws", Tensor::zeros(DType::kFloat32, {1024, 16}));
  Value *a = g.add_value("a"), *b = g.add_value("b");
  g.inputs = {x};
  g.add_node("MatMul", {x, wb}, {a}, "big");  // 1 * 1024 * 1024 = 2^20 multiply-adds
  g.add_node("MatMul", {a, ws}, {b}, "small");
  g.outputs = {b};
  ASSERT_TRUE(infer_shapes(g).ok());
  EXPECT_EQ(layer_macs(*find_node(g, "big")), int64_t{1} << 20);
  EXPECT_EQ(layer_macs(*find_node(g, "small")), 1024 * 16);
  std::set<std::string> small;
  EXPECT_EQ(best_int8_layers(g, &small), std::set<std::string>{"big"});
  EXPECT_EQ(small, std::set<std::string>{"small"});
  // With calibration data and Q/DQ insertion the plan leaves the small layer in float.
  NoFp16Relu any_backend;
  BuildOptions bo;
  bo.best = true;
  bo.calibration_batches.push_back({{"x", Tensor::zeros(DType::kFloat32, {1, 1024})}});
  auto bp = plan_precisions(g, bo, any_backend, /*can_quantize=*/true);
  ASSERT_TRUE(bp.ok()) << bp.status().message();
  EXPECT_EQ(bp->keep_float, std::set<std::string>{"small"});
  EXPECT_NE(bp->report[0].find("--best: int8 for the 1 Conv/MatMul/Gemm layers with >= 2^20"), std::string::npos)
      << bp->report[0];
  bp = plan_precisions(g, bo, any_backend, /*can_quantize=*/false);
  ASSERT_TRUE(bp.ok());
  EXPECT_TRUE(bp->keep_float.empty());
  EXPECT_NE(bp->report[0].find("int8 needs Q/DQ insertion"), std::string::npos) << bp->report[0];
  // An int8 override forces the (small) layer into quantization.
  bo.layer_precisions = {{"small", "int8"}};
  bp = plan_precisions(g, bo, any_backend, /*can_quantize=*/true);
  ASSERT_TRUE(bp.ok());
  EXPECT_EQ(bp->quantize, std::set<std::string>{"small"});
  EXPECT_TRUE(bp->keep_float.empty());
  bo.precision_constraints = "obey";
  bp = plan_precisions(g, bo, any_backend, /*can_quantize=*/false);
  ASSERT_FALSE(bp.ok());
  EXPECT_NE(bp.status().message().find("node 'small' (MatMul"), std::string::npos) << bp.status().message();

  // Conv: outputs * C/group * kernel.
  Graph c;
  Value* cx = c.add_value("x", {DType::kFloat32, Shape::from_dims({1, 8, 16, 16})});
  Value* cw = c.add_constant("w", Tensor::zeros(DType::kFloat32, {32, 8, 3, 3}));
  Value* cy = c.add_value("y");
  c.inputs = {cx};
  c.add_node("Conv", {cx, cw}, {cy}, "conv")->attrs.set("pads", std::vector<int64_t>{1, 1, 1, 1});
  c.outputs = {cy};
  ASSERT_TRUE(infer_shapes(c).ok());
  EXPECT_EQ(layer_macs(*find_node(c, "conv")), 32 * 16 * 16 * 8 * 9);

  BuildOptions o;
  o.backend = "cpu";
  o.best = true;  // no calibration data: fp16 + tf32
  auto plan = build_plan(mlp(), o);
  ASSERT_TRUE(plan.ok()) << plan.status().message();
  EXPECT_EQ(find_node(*plan->graph, "mm1")->outputs[0]->type.dtype, DType::kFloat16);
  EXPECT_TRUE(report_has(*plan, "--best without calibration data: fp16 + tf32"));
  o.bf16 = true;
  plan = build_plan(mlp(), o);
  ASSERT_TRUE(plan.ok());
  EXPECT_EQ(find_node(*plan->graph, "mm1")->outputs[0]->type.dtype, DType::kBFloat16);
}

}  // namespace
}  // namespace kiln
