// --accuracy-budget: per-layer sensitivity and the greedy float32 choice, for float16 through the
// builder and for INT8 through the Q/DQ hook (docs/precision.md).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "builder/accuracy_budget.hpp"
#include "builder/precision_plan.hpp"
#include "mixed_precision_test_util.hpp"
#include "ops/shape_inference.hpp"
#include "passes/precision.hpp"

namespace kiln {
namespace {
using namespace mptest;

// x[1,4,8,8] (values ~1e-3) -> conv1 -> conv2 (weights up to 1e5: beyond float16's 65504) -> conv3
Model sensitive_cnn() {
  Model m;
  m.graph = std::make_shared<Graph>();
  Graph& g = *m.graph;
  Value* x = g.add_value("x", {DType::kFloat32, Shape::from_dims({1, 4, 8, 8})});
  Value* w1 = g.add_constant("w1", random_tensor(DType::kFloat32, {8, 4, 3, 3}, 11, -0.5, 0.5));
  Value* w2 = g.add_constant("w2", random_tensor(DType::kFloat32, {8, 8, 3, 3}, 12, -1e5, 1e5));
  Value* w3 = g.add_constant("w3", random_tensor(DType::kFloat32, {4, 8, 3, 3}, 13, -1e-3, 1e-3));
  Value *a = g.add_value("a"), *b = g.add_value("b"), *y = g.add_value("y");
  g.inputs = {x};
  const std::vector<int64_t> pads{1, 1, 1, 1};
  g.add_node("Conv", {x, w1}, {a}, "conv1")->attrs.set("pads", pads);
  g.add_node("Conv", {a, w2}, {b}, "conv2")->attrs.set("pads", pads);
  g.add_node("Conv", {b, w3}, {y}, "conv3")->attrs.set("pads", pads);
  g.outputs = {y};
  return m;
}

TEST(AccuracyBudget, Fp16KeepsTheSensitiveLayer) {
  BuildOptions o = cpu_fp16();
  o.accuracy_budget = 0.01;
  for (uint32_t s = 0; s < 2; ++s)
    o.calibration_batches.push_back({{"x", random_tensor(DType::kFloat32, {1, 4, 8, 8}, 20 + s, 1e-3, 2e-3)}});
  auto plan = build_plan(sensitive_cnn(), o);
  ASSERT_TRUE(plan.ok()) << plan.status().message();
  const Graph& g = *plan->graph;
  EXPECT_EQ(find_node(g, "conv1")->outputs[0]->type.dtype, DType::kFloat16);
  EXPECT_EQ(find_node(g, "conv2")->outputs[0]->type.dtype, DType::kFloat32);
  EXPECT_EQ(find_node(g, "conv3")->outputs[0]->type.dtype, DType::kFloat16);
  EXPECT_TRUE(report_has(*plan, "kept fp32: 'conv2' (Conv) sensitivity inf"));
  EXPECT_TRUE(report_has(*plan, "with 1 unit(s) kept in fp32"));
  Tensor x = o.calibration_batches[0].at("x");
  Model ref = sensitive_cnn();
  EXPECT_LT(rel_l2(run_one(ref.graph, {{"x", x}}), run_one(plan->graph, {{"x", x}})), 0.01);

  // Grouped: with one unit, the whole model is measured (and kept) as one group.
  o.accuracy_max_layers = 1;
  plan = build_plan(sensitive_cnn(), o);
  ASSERT_TRUE(plan.ok());
  EXPECT_TRUE(report_has(*plan, "'conv1' .. 'conv3' (3 layers, measured as a group)"));
  EXPECT_EQ(find_node(*plan->graph, "conv1")->outputs[0]->type.dtype, DType::kFloat32);

  BuildOptions no_data = cpu_fp16();
  no_data.accuracy_budget = 0.01;
  auto bad = build_plan(sensitive_cnn(), no_data);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("--calib-data"), std::string::npos);
  BuildOptions no_fp16 = o;
  no_fp16.fp16 = false;
  bad = build_plan(sensitive_cnn(), no_fp16);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("give --fp16, --bf16 or --best"), std::string::npos);
}

// A stand-in for calib's insert_qdq (not on main yet): each chosen node's constant weight becomes
// DequantizeLinear(int8 weight, per-tensor scale max|w| / 127), i.e. simulated INT8 weights.
Expected<bool> weight_qdq(Graph& g, const QuantizationSpec& spec) {
  bool changed = false;
  std::vector<Node*> chosen;
  for (const auto& n : g.nodes())
    if (spec.op_types.count(n->op_type) && !spec.keep_float.count(precision_key(*n))) chosen.push_back(n.get());
  for (Node* n : chosen) {
    Value* w = n->inputs[1];
    if (!w->constant) continue;
    std::vector<double> v = w->constant->to_double_vector();
    double amax = 0;
    for (double x : v) amax = std::max(amax, std::fabs(x));
    const float scale = static_cast<float>(amax / 127);
    std::vector<int8_t> q;
    for (double x : v) q.push_back(static_cast<int8_t>(std::clamp(std::nearbyint(x / scale), -127.0, 127.0)));
    Value* qw = g.add_constant(g.unique_name(w->name + "_q"), Tensor::from_vector<int8_t>(w->constant->dims(), q));
    Value* s = g.add_constant(g.unique_name(w->name + "_scale"), Tensor::from_vector<float>({}, {scale}));
    Value* dq = g.add_value(g.unique_name(w->name + "_dq"), {DType::kFloat32, w->type.shape});
    g.add_node("DequantizeLinear", {qw, s}, {dq}, n->name + "_weight_dq", "", 21);
    n->inputs[1] = dq;
    changed = true;
  }
  return changed;
}

TEST(AccuracyBudget, Int8KeepsTheSensitiveLayerFloat) {
  // conv2's weights are ~1e-2 with one outlier of 10 (on an input channel that conv1 leaves at 0,
  // so it does not matter in float): a per-tensor int8 scale of 10/127 rounds all the others to 0.
  // conv1 and conv3 quantize well.
  Model m = sensitive_cnn();
  Graph& g = *m.graph;
  Tensor w1 = random_tensor(DType::kFloat32, {8, 4, 3, 3}, 11, -0.5, 0.5);
  std::fill(w1.data<float>(), w1.data<float>() + 4 * 9, 0.f);  // conv1's channel 0 is 0
  Tensor w2 = random_tensor(DType::kFloat32, {8, 8, 3, 3}, 12, -1e-2, 1e-2);
  w2.data<float>()[0] = 10.f;  // output 0, input 0
  for (const auto& n : g.nodes()) {
    if (n->name == "conv1") n->inputs[1] = g.add_constant("w1_zero0", w1);
    if (n->name == "conv2") n->inputs[1] = g.add_constant("w2_outlier", w2);
    if (n->name == "conv3") n->inputs[1] = g.add_constant("w3_plain", random_tensor(DType::kFloat32, {4, 8, 3, 3}, 13, -0.5, 0.5));
  }
  ASSERT_TRUE(infer_shapes(g).ok());
  Batches batches;
  for (uint32_t s = 0; s < 2; ++s) batches.push_back({{"x", random_tensor(DType::kFloat32, {1, 4, 8, 8}, 30 + s)}});
  QuantizationSpec spec;
  auto candidates = quantization_candidates(g, spec);
  EXPECT_EQ(candidates, (std::vector<std::string>{"conv1", "conv2", "conv3"}));
  ReduceFn reduce = int8_reducer(g, candidates, spec, weight_qdq);
  auto r = fit_accuracy_budget(g, candidates, reduce, batches, 0.05, 32);
  ASSERT_TRUE(r.ok()) << r.status().message();
  ASSERT_EQ(r->kept.size(), 1u);
  EXPECT_EQ(r->kept[0].nodes, std::vector<std::string>{"conv2"});
  EXPECT_GT(r->kept[0].error, 0.5);
  EXPECT_GT(r->all_reduced_error, 0.5);
  EXPECT_LT(r->final_error, 0.05);
  EXPECT_GT(r->final_error, 0.0);  // conv1 and conv3 are quantized
  EXPECT_TRUE(r->met);

  // The plan's float nodes reach QuantizationSpec::keep_float, int8 overrides leave it.
  PrecisionPlan p;
  p.keep_float = {"conv2", "conv9"};
  p.quantize = {"conv9", "conv1"};
  QuantizationSpec s2;
  s2.keep_float = {"conv1"};
  apply_to_quantization(p, s2);
  EXPECT_EQ(s2.keep_float, std::set<std::string>{"conv2"});
}

TEST(AccuracyBudget, MeanRelativeL2) {
  Tensor a = Tensor::from_vector<float>({2}, {3, 4});
  Tensor b = Tensor::from_vector<float>({2}, {3, 4.5f});
  Tensor inf = Tensor::from_vector<float>({2}, {3, INFINITY});
  Tensor i = Tensor::from_vector<int64_t>({1}, {1});
  EXPECT_NEAR(mean_relative_l2({a, i}, {b, i}), 0.1, 1e-9);  // integer outputs do not count
  EXPECT_TRUE(std::isinf(mean_relative_l2({a}, {inf})));
  EXPECT_EQ(mean_relative_l2({a}, {a}), 0.0);
}

}  // namespace
}  // namespace kiln
