// INT8 post-training quantization of ResNet-shaped graphs: a 3x3 stem Conv with 3 input channels
// stays float (unless --layer-precision names it int8), a 7x7 one and its MaxPool run int8, residual Adds read their identity operand through
// the Q/DQ pair it already has (a projection block's Add, one Conv output through a new pair), and after the CUDA passes the blocks pass int8 NHWC tensors to each
// other with no QuantizeLinear or Transpose between them; CPU outputs stay close to float32.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "backends/cpu/cpu_executor.hpp"
#include "builder/precision_plan.hpp"
#include "op_test_util.hpp"
#include "ops/shape_inference.hpp"
#include "passes/pass.hpp"
#include "quant/calibrate.hpp"
#include "quant/qdq_insertion.hpp"

namespace kiln::test {
namespace {


// A float ResNet: stem Conv 3->32 3x3 + Relu, a bottleneck block with a projection shortcut
// (32 -> 64), two identity blocks (the last with its Add's operands swapped). Block outputs are
// named b1, b2, b3; each block's Add is add1..add3.
struct Net {
  GraphPtr g = std::make_shared<Graph>();
  uint32_t seed = 1;
  Value* conv(const std::string& name, Value* x, int64_t cin, int64_t cout, int64_t k) {
    Value* w = g->add_constant(name + "_w", normal_tensor({cout, cin, k, k}, seed++, std::sqrt(2.0f / float(cin * k * k))));
    Value* b = g->add_constant(name + "_b", normal_tensor({cout}, seed++, 0.1f));
    Value* y = g->add_value(name);
    Node* n = g->add_node("Conv", {x, w, b}, {y}, name, "", 21);
    n->attrs.set("pads", Dims{k / 2, k / 2, k / 2, k / 2});
    return y;
  }
  Value* op(const char* type, const std::string& name, std::vector<Value*> ins) {
    Value* y = g->add_value(name);
    g->add_node(type, std::move(ins), {y}, name, "", 21);
    return y;
  }
  Value* block(int i, Value* x, int64_t cin, bool project, bool swap) {
    const std::string p = "block" + std::to_string(i) + "/";
    Value* h = op("Relu", p + "relu1", {conv(p + "conv1", x, cin, 16, 1)});
    h = op("Relu", p + "relu2", {conv(p + "conv2", h, 16, 16, 3)});
    h = conv(p + "conv3", h, 16, 64, 1);
    Value* identity = project ? conv(p + "downsample", x, cin, 64, 1) : x;
    Value* sum = op("Add", "add" + std::to_string(i), swap ? std::vector<Value*>{identity, h} : std::vector<Value*>{h, identity});
    return op("Relu", "b" + std::to_string(i), {sum});
  }
};

GraphPtr resnet(Dim batch) {
  Net net;
  Value* x = net.g->add_value("x", {DType::kFloat32, Shape({batch, Dim(3), Dim(8), Dim(8)})});
  net.g->inputs = {x};
  Value* h = net.op("Relu", "stem_out", {net.conv("stem", x, 3, 32, 3)});
  h = net.block(1, h, 32, true, false);
  h = net.block(2, h, 64, false, false);
  h = net.block(3, h, 64, false, true);
  net.g->outputs = {h};
  EXPECT_TRUE(infer_shapes(*net.g).ok());
  return net.g;
}

RangeTable calibrate(const Graph& g) {
  std::vector<std::map<std::string, Tensor>> batches;
  for (uint32_t i = 0; i < 3; ++i) batches.push_back({{"x", normal_tensor({2, 3, 8, 8}, 50 + i, 1.0f)}});
  auto r = collect_ranges(g, batches, *parse_calibration_algorithm("minmax"));
  EXPECT_TRUE(r.ok()) << r.status().message();
  return r.ok() ? *r : RangeTable{};
}

GraphPtr quantized_resnet(Dim batch, bool residuals, QuantizationReport* report = nullptr) {
  GraphPtr g = resnet(batch);
  QuantizationSpec spec;
  spec.quantize_residuals = residuals;
  spec.report = report;
  auto changed = insert_qdq(*g, calibrate(*g), spec);
  EXPECT_TRUE(changed.ok() && *changed);
  EXPECT_TRUE(infer_shapes(*g).ok());
  return g;
}

const Node* node(const Graph& g, const std::string& name) {
  for (const auto& n : g.nodes())
    if (n->name == name) return n.get();
  return nullptr;
}

const Value* value(const Graph& g, const std::string& name) {
  for (const auto& n : g.nodes())
    for (const Value* v : n->outputs)
      if (v && v->name == name) return v;
  return nullptr;
}

Tensor run(const GraphPtr& g, const Tensor& x) {
  auto exec = CpuExecutor::create(g);
  EXPECT_TRUE(exec.ok()) << exec.status().message();
  if (!exec.ok()) return Tensor();
  auto out = (*exec)->run({{"x", x}});
  EXPECT_TRUE(out.ok()) << out.status().message();
  return out.ok() ? (*out)[0] : Tensor();
}

// The CUDA build's graph passes (the clean-up, the CUDA pipeline, dead code), then shapes.
Status run_cuda_passes(Graph& g) {
  PassManager pm;
  add_cleanup_passes(pm, false);
  add_cuda_passes(pm);
  pm.add(make_dead_code_pass());
  KILN_RETURN_IF_ERROR(pm.run(g));
  return infer_shapes(g);
}

TEST(QdqChain, StemStaysFloatAndResidualAddsReadTheSharedPair) {
  QuantizationReport report;
  GraphPtr g = quantized_resnet(Dim::symbolic("n"), true, &report);
  EXPECT_EQ(report.quantized.size(), 10u);  // 3 blocks x 3 convs + the projection
  ASSERT_EQ(report.kept_float.size(), 1u);
  EXPECT_NE(report.kept_float[0].first.find("'stem'"), std::string::npos) << report.kept_float[0].first;
  EXPECT_EQ(report.kept_float[0].second,
            "3 input channels x 9 window taps, stride 1: the INT8 kernels need >= 16 channels, or 64-512 values "
            "per window and a stride s >= 2 with s*s*C <= 64; float16 is faster");
  ASSERT_NE(node(*g, "stem"), nullptr);
  EXPECT_EQ(node(*g, "stem")->inputs[0]->producer, nullptr);  // x read as float, W float
  EXPECT_TRUE(node(*g, "stem")->inputs[1]->is_constant());
  // b1 and b2 (the identity blocks' inputs) are read by their QuantizeLinear only: the Adds read
  // the shared DequantizeLinear.
  for (const char* name : {"b1", "b2"}) {
    const Value* v = value(*g, name);
    ASSERT_NE(v, nullptr) << name;
    auto readers = g->consumers(v);
    ASSERT_EQ(readers.size(), 1u) << name;
    EXPECT_EQ(readers[0]->op_type, "QuantizeLinear") << name;
  }
  for (const auto& [add, operand, name] :
       {std::tuple{"add2", size_t{1}, "b1"}, std::tuple{"add3", size_t{0}, "b2"}}) {
    const Node* a = node(*g, add);
    ASSERT_NE(a, nullptr);
    const Node* dq = a->inputs[operand]->producer;
    ASSERT_NE(dq, nullptr) << add;
    EXPECT_EQ(dq->op_type, "DequantizeLinear") << add;
    ASSERT_NE(dq->inputs[0]->producer, nullptr);
    EXPECT_EQ(dq->inputs[0]->producer->inputs[0]->name, name) << add;
    // The same pair the next block's first Conv reads.
    EXPECT_EQ(a->inputs[operand], node(*g, std::string("block") + add[3] + "/conv1")->inputs[0]) << add;
    EXPECT_EQ(a->inputs[1 - operand]->producer->op_type, "Conv") << add;
  }
  // The projection block's Add reads two Conv outputs (conv3's and the shortcut's): the one that
  // comes first in the graph through a new Q/DQ pair of its own, the other as it is.
  {
    const Node* a = node(*g, "add1");
    ASSERT_NE(a, nullptr);
    int through_pair = 0;
    for (size_t i = 0; i < 2; ++i) {
      const Node* p = a->inputs[i]->producer;
      ASSERT_NE(p, nullptr);
      if (p->op_type == "Conv") continue;
      ++through_pair;
      EXPECT_EQ(p->op_type, "DequantizeLinear");
      const Node* q = p->inputs[0]->producer;
      ASSERT_NE(q, nullptr);
      EXPECT_EQ(q->op_type, "QuantizeLinear");
      EXPECT_EQ(q->inputs[0]->producer->op_type, "Conv");
      const std::string name = q->inputs[0]->name;
      EXPECT_TRUE(name == "block1/conv3" || name == "block1/downsample") << name;
      EXPECT_EQ(g->consumers(q->inputs[0]).size(), 1u);  // the pair only
    }
    EXPECT_EQ(through_pair, 1);
  }
  // Without the flag the Adds read the float values.
  g = quantized_resnet(Dim::symbolic("n"), false);
  for (const Value* in : node(*g, "add1")->inputs) EXPECT_EQ(in->producer->op_type, "Conv");
  EXPECT_EQ(node(*g, "add2")->inputs[1]->name, "b1");
  EXPECT_EQ(node(*g, "add3")->inputs[0]->name, "b2");
  EXPECT_EQ(g->consumers(value(*g, "b1")).size(), 2u);
}

TEST(QdqChain, SimulatedInt8StaysCloseToFloat) {
  GraphPtr ref = resnet(Dim::symbolic("n"));
  const Tensor x = normal_tensor({2, 3, 8, 8}, 51, 1.0f);  // one of the calibration batches' distribution
  const Tensor want = run(ref, x);
  const Tensor with = run(quantized_resnet(Dim::symbolic("n"), true), x);
  const Tensor without = run(quantized_resnet(Dim::symbolic("n"), false), x);
  EXPECT_GT(cosine(with, want), 0.99);
  EXPECT_GT(cosine(without, want), 0.99);
  EXPECT_GT(rel_l2(with, without), 0.0);  // the residuals are quantized now
}

// The CUDA pipeline's graph passes (run here on the CPU, whose kiln.QConv/FusedConv kernels are the
// reference): every quantized Conv fuses, the block outputs are written as int8 by the QConv that
// produces them, the identity blocks' residuals are read as int8, and the chain is NHWC with one
// Transpose in (after the float stem's QuantizeLinear) and one out.
TEST(QdqChain, CudaPassesKeepTheBlocksInt8AndNhwc) {
  GraphPtr g = quantized_resnet(Dim(2), true);
  const Tensor x = normal_tensor({2, 3, 8, 8}, 52, 1.0f);
  const Tensor simulated = run(g, x);
  const Tensor float_out = run(resnet(Dim(2)), x);
  ASSERT_TRUE(run_cuda_passes(*g).ok());
  std::map<std::string, int> counts;
  for (const auto& n : g->nodes()) counts[n->op_type]++;
  const std::string text = graph_to_text(*g);
  EXPECT_EQ(counts["QConv"], 10) << text;
  EXPECT_EQ(counts["QuantizeLinear"], 1) << text;  // the float stem's output
  EXPECT_EQ(counts["DequantizeLinear"], 0) << text;
  EXPECT_EQ(counts["Transpose"], 2) << text;
  EXPECT_EQ(counts["Add"] + counts["Relu"] + counts["Conv"], 0) << text;
  int nhwc = 0, int8_out = 0, int8_z = 0;
  for (const auto& n : g->nodes()) {
    if (n->op_type != "QConv") continue;
    nhwc += n->attrs.s("layout", "NCHW") == "NHWC";
    int8_out += n->outputs[0]->type.dtype == DType::kInt8;
    int8_z += n->inputs.size() > 5 && n->inputs[5] && n->inputs[5]->type.dtype == DType::kInt8;
  }
  EXPECT_EQ(nhwc, 10);
  // All but the graph output's producer; every residual is read as int8 (the projection block's
  // conv3 writes int8 for the shortcut Conv, which adds it).
  EXPECT_EQ(int8_out, 9) << text;
  EXPECT_EQ(int8_z, 3) << text;
  const Tensor fused = run(g, x);
  EXPECT_LT(rel_l2(fused, simulated), 2e-2);  // exact int sums vs float: a rare rounding step apart
  EXPECT_GT(cosine(fused, float_out), 0.99);
}

// ResNet's real stem: Conv 3->32 7x7 stride 2 + Relu + MaxPool 3x3 stride 2, then two blocks. The
// 7x7 window holds 147 values, so the stem is quantized too (the CUDA layer gathers it into rows);
// the MaxPool's input gets a Q/DQ pair of its output's scale (the same values: max commutes with
// the quantization); after the CUDA passes the stem writes int8 NHWC, the pool is an int8
// kiln.NHWC MaxPool, the only QuantizeLinear left is the input's, and the stem reads it NCHW
// (x_layout: its CUDA layer copies it space-to-depth; no Transpose of the image).
GraphPtr rgb_stem_resnet() {
  Net net;
  Value* x = net.g->add_value("x", {DType::kFloat32, Shape({Dim(2), Dim(3), Dim(32), Dim(32)})});
  net.g->inputs = {x};
  Value* stem = net.conv("stem", x, 3, 32, 7);
  for (const auto& n : net.g->nodes())
    if (n->name == "stem") n->attrs.set("strides", Dims{2, 2});
  Value* pooled = net.g->add_value("pooled");
  Node* pool = net.g->add_node("MaxPool", {net.op("Relu", "stem_relu", {stem})}, {pooled}, "pool", "", 21);
  pool->attrs.set("kernel_shape", Dims{3, 3});
  pool->attrs.set("strides", Dims{2, 2});
  pool->attrs.set("pads", Dims{1, 1, 1, 1});
  Value* h = net.block(1, pooled, 32, true, false);
  h = net.block(2, h, 64, false, false);
  net.g->outputs = {h};
  EXPECT_TRUE(infer_shapes(*net.g).ok());
  return net.g;
}

TEST(QdqChain, RgbStemAndMaxPoolRunInt8) {
  GraphPtr ref = rgb_stem_resnet();
  std::vector<std::map<std::string, Tensor>> batches;
  for (uint32_t i = 0; i < 3; ++i) batches.push_back({{"x", normal_tensor({2, 3, 32, 32}, 60 + i, 1.0f)}});
  auto ranges = collect_ranges(*ref, batches, *parse_calibration_algorithm("minmax"));
  ASSERT_TRUE(ranges.ok()) << ranges.status().message();
  const Tensor input = normal_tensor({2, 3, 32, 32}, 61, 1.0f);
  const Tensor float_out = run(ref, input);

  GraphPtr g = rgb_stem_resnet();
  QuantizationReport report;
  QuantizationSpec spec;
  spec.report = &report;
  ASSERT_TRUE(insert_qdq(*g, *ranges, spec).ok());
  ASSERT_TRUE(infer_shapes(*g).ok());
  EXPECT_EQ(report.quantized.size(), 8u);  // the stem, 4 + 3 block convs
  EXPECT_TRUE(report.kept_float.empty());
  const Node* p = node(*g, "pool");
  ASSERT_NE(p, nullptr);
  ASSERT_EQ(p->inputs[0]->producer->op_type, "DequantizeLinear");
  const Node* q_in = p->inputs[0]->producer->inputs[0]->producer;
  ASSERT_EQ(q_in->op_type, "QuantizeLinear");
  EXPECT_EQ(q_in->inputs[0]->name, "stem_relu");
  const Node* q_out = g->consumers(p->outputs[0]).at(0);
  ASSERT_EQ(q_out->op_type, "QuantizeLinear");
  EXPECT_EQ(q_in->inputs[1]->constant->scalar_as_double(), q_out->inputs[1]->constant->scalar_as_double());
  const Tensor simulated = run(g, input);
  EXPECT_GT(cosine(simulated, float_out), 0.99);

  ASSERT_TRUE(run_cuda_passes(*g).ok());
  std::map<std::string, int> counts;
  for (const auto& n : g->nodes()) counts[n->op_type]++;
  const std::string text = graph_to_text(*g);
  EXPECT_EQ(counts["QConv"], 8) << text;
  EXPECT_EQ(counts["QuantizeLinear"], 1) << text;  // the input's
  EXPECT_EQ(counts["DequantizeLinear"] + counts["MaxPool"] + counts["Conv"], 0) << text;
  EXPECT_EQ(counts["Transpose"], 1) << text;  // the output back to NCHW (the stem reads NCHW X)
  ASSERT_EQ(counts["NHWC"], 1) << text;
  for (const auto& n : g->nodes()) {
    if (n->op_type == "NHWC") {
      EXPECT_EQ(n->attrs.s("op", ""), "MaxPool");
      EXPECT_EQ(n->inputs[0]->type.dtype, DType::kInt8);
      EXPECT_EQ(n->inputs[0]->producer->op_type, "QConv") << text;  // the stem writes int8 NHWC
    }
    if (n->op_type == "QConv") {
      EXPECT_EQ(n->attrs.s("layout", "NCHW"), "NHWC") << n->name;
      EXPECT_EQ(n->attrs.s("x_layout", "NHWC"), n->name == "stem" ? "NCHW" : "NHWC") << n->name;
    }
  }
  const Tensor fused = run(g, input);
  EXPECT_LT(rel_l2(fused, simulated), 2e-2);
  EXPECT_GT(cosine(fused, float_out), 0.99);
}

TEST(QdqChain, SmallChannelConvQuantizedWhenNamed) {
  GraphPtr g = resnet(Dim::symbolic("n"));
  const RangeTable ranges = calibrate(*g);
  QuantizationReport report;
  QuantizationSpec spec;
  spec.report = &report;
  spec.quantize = {"stem"};  // --layer-precision stem:int8
  ASSERT_TRUE(insert_qdq(*g, ranges, spec).ok());
  EXPECT_EQ(report.quantized.size(), 11u);
  EXPECT_TRUE(report.kept_float.empty());
  ASSERT_NE(node(*g, "stem")->inputs[0]->producer, nullptr);
  EXPECT_EQ(node(*g, "stem")->inputs[0]->producer->op_type, "DequantizeLinear");
  // keep_float wins over quantize.
  g = resnet(Dim::symbolic("n"));
  QuantizationReport r2;
  spec.report = &r2;
  spec.keep_float = {"stem"};
  ASSERT_TRUE(insert_qdq(*g, ranges, spec).ok());
  ASSERT_EQ(r2.kept_float.size(), 1u);
  EXPECT_EQ(r2.kept_float[0].second, "kept float by request");

  // The precision plan's int8 layers reach spec.quantize.
  PrecisionPlan plan;
  plan.quantize = {"stem"};
  plan.keep_float = {"block1/conv1"};
  QuantizationSpec s;
  s.keep_float = {"stem"};
  apply_to_quantization(plan, s);
  EXPECT_EQ(s.keep_float, std::set<std::string>{"block1/conv1"});
  EXPECT_EQ(s.quantize, std::set<std::string>{"stem"});
}

// A depthwise Conv (1 input channel per group) stays float too; a grouped one with 16 per group does not.
TEST(QdqChain, DepthwiseConvStaysFloat) {
  auto g = std::make_shared<Graph>();
  Value* x = g->add_value("x", {DType::kFloat32, Shape::from_dims({1, 32, 6, 6})});
  g->inputs = {x};
  Value *a = g->add_value("a"), *b = g->add_value("b");
  Node* dw = g->add_node("Conv", {x, g->add_constant("w1", normal_tensor({32, 1, 3, 3}, 1, 0.3f))}, {a}, "dw", "", 21);
  dw->attrs.set("group", int64_t{32});
  Node* grouped = g->add_node("Conv", {a, g->add_constant("w2", normal_tensor({32, 16, 1, 1}, 2, 0.3f))}, {b}, "grouped", "", 21);
  grouped->attrs.set("group", int64_t{2});
  g->outputs = {b};
  ASSERT_TRUE(infer_shapes(*g).ok());
  RangeTable ranges;
  ranges.amax = {{"x", 2.0f}, {"a", 2.0f}};
  QuantizationReport report;
  QuantizationSpec spec;
  spec.report = &report;
  ASSERT_TRUE(insert_qdq(*g, ranges, spec).ok());
  ASSERT_EQ(report.kept_float.size(), 1u);
  EXPECT_NE(report.kept_float[0].first.find("'dw'"), std::string::npos);
  EXPECT_EQ(report.kept_float[0].second, "1 input channels per group: the INT8 kernels need >= 16, float16 is faster");
  ASSERT_EQ(report.quantized.size(), 1u);
  EXPECT_NE(report.quantized[0].find("'grouped'"), std::string::npos);
}

}  // namespace
}  // namespace kiln::test
