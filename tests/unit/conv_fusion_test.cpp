// kiln.FusedConv (CPU reference) and the CUDA backend's graph passes: conv fusion, NHWC layout and
// transpose cancellation. Structure after the passes, and equal CPU outputs before and after.
#include <gtest/gtest.h>

#include <algorithm>

#include "op_test_util.hpp"
#include "ops/fused_conv.hpp"
#include "passes/pass.hpp"

namespace kiln::test {
namespace {

// y = Transpose(x, perm).
Tensor permute(const Tensor& x, const std::vector<int64_t>& perm) {
  OpCall call{.op_type = "Transpose", .inputs = {x}};
  call.attrs.set("perm", perm);
  auto r = run_op(call);
  EXPECT_TRUE(r.ok()) << r.status().message();
  return r.ok() ? (*r)[0] : Tensor();
}

// Conv, then Z added and ReLU applied in float64 (the naive reference).
Tensor reference_fused(const Tensor& x, const Tensor& w, const Tensor& b, const Tensor* z, bool relu,
                       const Attributes& conv_attrs) {
  OpCall conv{.op_type = "Conv", .inputs = {x.cast(DType::kFloat32), w.cast(DType::kFloat32),
                                            b.defined() ? b.cast(DType::kFloat32) : Tensor()}};
  conv.attrs = conv_attrs;
  auto r = run_op(conv);
  EXPECT_TRUE(r.ok()) << r.status().message();
  Tensor y = (*r)[0];
  float* yd = y.data<float>();
  std::vector<double> zd = z ? z->to_double_vector() : std::vector<double>();
  for (int64_t i = 0; i < y.numel(); ++i) {
    double v = yd[i] + (z ? zd[static_cast<size_t>(i)] : 0.0);
    yd[i] = static_cast<float>(relu && v < 0 ? 0.0 : v);
  }
  return y.cast(x.dtype());
}

Attributes conv_attrs(Dims strides, Dims pads, Dims dilations, int64_t group) {
  Attributes a;
  a.set("strides", strides);
  a.set("pads", pads);
  a.set("dilations", dilations);
  a.set("group", group);
  return a;
}

struct FusedCase {
  DType dtype;
  int64_t n, c, h, w, m, k, group;
  Dims strides, pads, dilations;
  bool bias, residual, relu;
};

void check_fused_conv(const FusedCase& fc, const std::string& layout) {
  Tensor x = random_tensor(fc.dtype, {fc.n, fc.c, fc.h, fc.w}, 1);
  Tensor w = random_tensor(fc.dtype, {fc.m, fc.c / fc.group, fc.k, fc.k}, 2);
  Tensor b = fc.bias ? random_tensor(fc.dtype, {fc.m}, 3) : Tensor();
  Attributes attrs = conv_attrs(fc.strides, fc.pads, fc.dilations, fc.group);
  Tensor y0 = reference_fused(x, w, b, nullptr, false, attrs);
  Tensor z = random_tensor(fc.dtype, y0.dims(), 4);
  Tensor expected = reference_fused(x, w, b, fc.residual ? &z : nullptr, fc.relu, attrs);
  const bool nhwc = layout == "NHWC";
  auto to_layout = [&](const Tensor& t) { return nhwc ? permute(t, nchw_to_nhwc_perm(4)) : t; };
  OpCall call{.op_type = "FusedConv", .inputs = {to_layout(x), to_layout(w), b}, .domain = "kiln"};
  if (fc.residual) call.inputs.push_back(to_layout(z));
  call.attrs = attrs;
  call.attrs.set("activation", std::string(fc.relu ? "Relu" : ""));
  call.attrs.set("layout", layout);
  auto r = run_op(call);
  ASSERT_TRUE(r.ok()) << r.status().message();
  Tensor got = nhwc ? permute((*r)[0], nhwc_to_nchw_perm(4)) : (*r)[0];
  const double tol = fc.dtype == DType::kFloat32 ? 1e-5 : 1e-2;
  EXPECT_TRUE(tensors_close(got, expected, tol, tol)) << layout;
}

TEST(FusedConvOp, MatchesConvAddReluNchwAndNhwc) {
  const std::vector<FusedCase> cases = {
      {DType::kFloat32, 2, 5, 9, 8, 7, 3, 1, {1, 1}, {1, 1, 1, 1}, {1, 1}, true, true, true},
      {DType::kFloat32, 1, 6, 10, 9, 4, 3, 2, {2, 1}, {1, 0, 2, 1}, {1, 2}, false, true, false},
      {DType::kFloat32, 1, 4, 7, 7, 4, 3, 4, {1, 1}, {1, 1, 1, 1}, {1, 1}, true, false, true},  // depthwise
      {DType::kFloat16, 2, 3, 6, 6, 5, 1, 1, {1, 1}, {0, 0, 0, 0}, {1, 1}, true, true, true},
      {DType::kBFloat16, 1, 8, 5, 5, 8, 3, 1, {2, 2}, {1, 1, 1, 1}, {1, 1}, true, false, false},
  };
  for (const auto& fc : cases)
    for (const char* layout : {"NCHW", "NHWC"}) check_fused_conv(fc, layout);
}

TEST(FusedConvOp, BadAttributesAreErrorsNamingTheNode) {
  Tensor x = random_tensor(DType::kFloat32, {1, 2, 4, 4}), w = random_tensor(DType::kFloat32, {3, 2, 1, 1});
  OpCall call{.op_type = "FusedConv", .inputs = {x, w}, .domain = "kiln"};
  call.attrs.set("activation", std::string("Gelu"));
  auto r = run_op(call);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("FusedConv_node"), std::string::npos) << r.status().message();
  call.attrs.set("activation", std::string(""));
  call.attrs.set("layout", std::string("NCWH"));
  EXPECT_FALSE(run_op(call).ok());
  call.attrs.set("layout", std::string("NCHW"));
  call.inputs.push_back(Tensor());
  call.inputs.push_back(random_tensor(DType::kFloat32, {1, 3, 4, 5}));  // Z of the wrong shape
  EXPECT_FALSE(run_op(call).ok());
}

// A ResNet-like stack: stem conv + ReLU, a bottleneck-ish block with an identity residual, a
// block with a downsample branch, and a side output read by two nodes.
GraphPtr resnet_like(DType dtype) {
  auto g = std::make_shared<Graph>();
  uint32_t seed = 10;
  int id = 0, conv_id = 0;
  Value* x = g->add_value("x", {dtype, Shape::from_dims({2, 3, 12, 12})});
  g->inputs = {x};
  auto conv = [&](Value* in, int64_t cin, int64_t cout, int64_t k, int64_t stride, bool bias) {
    const std::string s = std::to_string(conv_id++);
    Value* w = g->add_constant("w" + s, random_tensor(dtype, {cout, cin, k, k}, seed++, -0.5, 0.5));
    Value* b = bias ? g->add_constant("b" + s, random_tensor(dtype, {cout}, seed++, -0.5, 0.5)) : nullptr;
    Value* y = g->add_value("conv" + s);
    Node* n = g->add_node("Conv", {in, w, b}, {y}, "conv" + s, "", 21);
    n->attrs.set("strides", Dims{stride, stride});
    n->attrs.set("pads", Dims{k / 2, k / 2, k / 2, k / 2});
    return y;
  };
  auto op = [&](const char* type, std::vector<Value*> ins) {
    const std::string name = type + std::to_string(id++);
    Value* y = g->add_value(name);
    g->add_node(type, ins, {y}, name, "", 21);
    return y;
  };
  Value* h = op("Relu", {conv(x, 3, 8, 3, 1, true)});
  // Identity block: relu(conv(relu(conv(h))) + h).
  Value* a = op("Relu", {conv(h, 8, 8, 1, 1, true)});
  h = op("Relu", {op("Add", {conv(a, 8, 8, 3, 1, false), h})});
  // Downsample block: relu(conv_s2(h) + conv1x1_s2(h)); the residual Add's other operand comes
  // first.
  Value* down = conv(h, 8, 16, 1, 2, true);
  Value* main = conv(h, 8, 16, 3, 2, true);
  h = op("Relu", {op("Add", {down, main})});
  Value* side = conv(h, 16, 16, 3, 1, true);  // read twice: nothing fused after it
  Value* out = op("Add", {op("Relu", {side}), side});
  Value* pooled = op("GlobalAveragePool", {out});
  g->outputs = {pooled, h};
  return g;
}

std::vector<Tensor> run_cpu(const GraphPtr& g, const Tensor& x) {
  EXPECT_TRUE(infer_shapes(*g).ok());
  auto exec = CpuExecutor::create(g);
  EXPECT_TRUE(exec.ok()) << exec.status().message();
  auto out = (*exec)->run({{"x", x}});
  EXPECT_TRUE(out.ok()) << out.status().message();
  return out.ok() ? *out : std::vector<Tensor>{};
}

Status run_passes(Graph& g, bool nhwc) {
  KILN_RETURN_IF_ERROR(infer_shapes(g));
  PassManager pm;
  pm.add(make_conv_fusion_pass());
  if (nhwc) pm.add(make_nhwc_layout_pass());
  if (nhwc) pm.add(make_transpose_sinking_pass());
  pm.add(make_transpose_cancellation_pass());
  pm.add(make_constant_folding_pass());
  pm.add(make_dead_code_pass());
  return pm.run(g);
}

std::map<std::string, int> op_counts(const Graph& g) {
  std::map<std::string, int> c;
  for (const auto& n : g.nodes()) c[n->op_type]++;
  return c;
}

const Node* node_named(const Graph& g, const std::string& name) {
  for (const auto& n : g.nodes())
    if (n->name == name) return n.get();
  return nullptr;
}

TEST(ConvFusionPass, FusesResidualAddAndRelu) {
  Tensor x = random_tensor(DType::kFloat32, {2, 3, 12, 12}, 99);
  auto before = run_cpu(resnet_like(DType::kFloat32), x);
  GraphPtr g = resnet_like(DType::kFloat32);
  ASSERT_TRUE(run_passes(*g, false).ok());
  auto counts = op_counts(*g);
  EXPECT_EQ(counts["FusedConv"], 6);
  EXPECT_EQ(counts["Conv"], 0);
  EXPECT_EQ(counts["Add"], 1);   // the Add reading a multiply-used conv output
  EXPECT_EQ(counts["Relu"], 1);  // the ReLU of that output
  const Node* stem = node_named(*g, "conv0");
  ASSERT_NE(stem, nullptr);
  EXPECT_EQ(stem->attrs.s("activation"), "Relu");
  EXPECT_EQ(stem->inputs.size(), 3u);
  const Node* block = node_named(*g, "conv2");
  ASSERT_NE(block, nullptr);
  ASSERT_EQ(block->inputs.size(), 4u);  // X, W, no B, Z
  EXPECT_EQ(block->inputs[2], nullptr);
  EXPECT_EQ(block->attrs.s("activation"), "Relu");
  const std::string fused = block->attrs.s("kiln_fused");
  EXPECT_EQ(std::count(fused.begin(), fused.end(), ','), 2) << fused;
  EXPECT_EQ(fused.rfind("conv2,", 0), 0u) << fused;
  // The downsample Add: one of its convs takes the other as Z.
  int with_z = 0;
  for (const auto& n : g->nodes()) with_z += n->op_type == "FusedConv" && n->inputs.size() == 4;
  EXPECT_EQ(with_z, 2);
  auto after = run_cpu(g, x);
  ASSERT_EQ(before.size(), after.size());
  for (size_t i = 0; i < before.size(); ++i) EXPECT_TRUE(tensors_close(after[i], before[i], 1e-4, 1e-5)) << i;
}

TEST(ConvFusionPass, LeavesBroadcastingAddAlone) {
  auto g = std::make_shared<Graph>();
  Value* x = g->add_value("x", {DType::kFloat32, Shape::from_dims({1, 2, 5, 5})});
  g->inputs = {x};
  Value* w = g->add_constant("w", random_tensor(DType::kFloat32, {4, 2, 3, 3}));
  Value* bias = g->add_constant("bias", random_tensor(DType::kFloat32, {1, 4, 1, 1}));
  Value *y = g->add_value("y"), *s = g->add_value("s");
  g->add_node("Conv", {x, w}, {y}, "conv", "", 21);
  g->add_node("Add", {y, bias}, {s}, "add", "", 21);
  g->outputs = {s};
  Tensor xt = random_tensor(DType::kFloat32, {1, 2, 5, 5}, 5);
  auto before = run_cpu(g, xt);
  ASSERT_TRUE(run_passes(*g, false).ok());
  auto counts = op_counts(*g);
  EXPECT_EQ(counts["FusedConv"], 1);
  EXPECT_EQ(counts["Add"], 1);
  const Node* f = node_named(*g, "conv");
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(f->inputs.size(), 3u);
  EXPECT_EQ(f->attrs.s("kiln_fused"), "conv");
  auto after = run_cpu(g, xt);
  ASSERT_EQ(after.size(), 1u);
  EXPECT_TRUE(tensors_close(after[0], before[0], 1e-5, 1e-6));
}

TEST(NhwcLayoutPass, Float16RegionHasTransposesOnlyAtItsBorders) {
  Tensor x = random_tensor(DType::kFloat16, {2, 3, 12, 12}, 7);
  auto before = run_cpu(resnet_like(DType::kFloat16), x);
  GraphPtr g = resnet_like(DType::kFloat16);
  ASSERT_TRUE(run_passes(*g, true).ok());
  auto counts = op_counts(*g);
  EXPECT_EQ(counts["FusedConv"], 6);
  for (const auto& n : g->nodes()) {
    if (n->op_type != "FusedConv") continue;
    EXPECT_EQ(n->attrs.s("layout"), "NHWC") << n->name;
    EXPECT_TRUE(n->inputs[1]->is_constant()) << n->name << ": weights are transformed once";
    // KRSC weights and NHWC data: input channels last in both.
    const Dims wd = *n->inputs[1]->type.shape.to_dims(), xd = *n->inputs[0]->type.shape.to_dims();
    EXPECT_EQ(wd[3] * n->attrs.i("group", 1), xd[3]) << n->name;
  }
  // Into the region: the graph input. Out of it: the last block's output (a graph output, read
  // by the side conv too) and the side conv's output (read by ReLU and Add).
  EXPECT_EQ(counts["Transpose"], 3);
  auto after = run_cpu(g, x);
  ASSERT_EQ(before.size(), after.size());
  for (size_t i = 0; i < before.size(); ++i) {
    EXPECT_EQ(after[i].dims(), before[i].dims());
    EXPECT_LT(rel_l2(after[i], before[i]), 2e-3) << i;
  }
}

// conv -> HardSwish -> MaxPool -> conv, read by two convs whose outputs are concatenated, a conv,
// a per-channel scale by a constant and a global average pool: after sinking, Transposes remain
// only at the graph's input and output.
GraphPtr sinking_graph() {
  auto g = std::make_shared<Graph>();
  const DType t = DType::kFloat16;
  Value* x = g->add_value("x", {t, Shape::from_dims({1, 6, 9, 9})});
  g->inputs = {x};
  uint32_t seed = 40;
  int id = 0;
  auto node = [&](const char* type, std::vector<Value*> ins) {
    const std::string name = type + std::to_string(id++);
    Value* y = g->add_value(name);
    return std::make_pair(g->add_node(type, ins, {y}, name, "", 21), y);
  };
  auto conv = [&](Value* in, int64_t cin, int64_t cout) {
    Value* w = g->add_constant("w" + std::to_string(id), random_tensor(t, {cout, cin, 3, 3}, seed++, -0.4, 0.4));
    auto [n, y] = node("Conv", {in, w});
    n->attrs.set("pads", Dims{1, 1, 1, 1});
    return y;
  };
  auto [pool, pooled] = node("MaxPool", {node("HardSwish", {conv(x, 6, 8)}).second});
  pool->attrs.set("kernel_shape", Dims{3, 3});
  pool->attrs.set("strides", Dims{2, 2});
  pool->attrs.set("pads", Dims{1, 1, 1, 1});
  Value* c1 = conv(pooled, 8, 8);
  auto [cat, cat_out] = node("Concat", {conv(c1, 8, 5), conv(c1, 8, 3)});
  cat->attrs.set("axis", int64_t{-3});
  Value* scale = g->add_constant("scale", random_tensor(t, {1, 4, 1, 1}, seed++));
  g->outputs = {node("GlobalAveragePool", {node("Mul", {conv(cat_out, 8, 4), scale}).second}).second};
  return g;
}

TEST(TransposeSinkingPass, ElementwiseAndConcatJoinTheNhwcRegion) {
  Tensor x = random_tensor(DType::kFloat16, {1, 6, 9, 9}, 8);
  auto before = run_cpu(sinking_graph(), x);
  GraphPtr g = sinking_graph();
  ASSERT_TRUE(run_passes(*g, true).ok());
  auto counts = op_counts(*g);
  EXPECT_EQ(counts["FusedConv"], 5);
  EXPECT_EQ(counts["NHWC"], 2);  // the pools
  EXPECT_EQ(counts["Transpose"], 2);
  for (const auto& n : g->nodes()) {
    if (n->op_type == "Concat") {
      EXPECT_EQ(n->attrs.i("axis"), 3);
    }
    if (n->op_type == "Mul") {
      EXPECT_EQ(n->inputs[1]->type.shape.to_dims(), (Dims{1, 1, 1, 4}));
    }
  }
  auto after = run_cpu(g, x);
  ASSERT_EQ(after.size(), 1u);
  EXPECT_EQ(after[0].dims(), before[0].dims());
  EXPECT_LT(rel_l2(after[0], before[0]), 2e-3);
}

// conv -> Relu -> QuantizeLinear -> DequantizeLinear (per tensor) -> conv, and a per-channel
// DequantizeLinear (its axis is the layout's) -> conv: the per-tensor pair joins the NHWC region,
// the per-channel one keeps its Transposes.
GraphPtr qdq_sinking_graph(bool per_channel) {
  auto g = std::make_shared<Graph>();
  const DType t = DType::kFloat16;
  Value* x = g->add_value("x", {t, Shape::from_dims({2, 8, 6, 6})});
  g->inputs = {x};
  uint32_t seed = 60;
  int id = 0;
  auto node = [&](const char* type, std::vector<Value*> ins) {
    const std::string name = type + std::to_string(id++);
    Value* y = g->add_value(name);
    return std::make_pair(g->add_node(type, ins, {y}, name, "", 21), y);
  };
  auto conv = [&](Value* in) {
    Value* w = g->add_constant("w" + std::to_string(id), random_tensor(t, {8, 8, 3, 3}, seed++, -0.4, 0.4));
    auto [n, y] = node("Conv", {in, w});
    n->attrs.set("pads", Dims{1, 1, 1, 1});
    return y;
  };
  Value* scale = g->add_constant("scale", random_tensor(t, {}, seed++, 0.02, 0.03));
  Tensor zp_t(DType::kInt8, {});
  *zp_t.data<int8_t>() = 3;
  Value* zp = g->add_constant("zp", zp_t);
  Value* q = node("QuantizeLinear", {node("Relu", {conv(x)}).second, scale, zp}).second;
  Value* dq;
  if (per_channel) {
    Value* scales = g->add_constant("scales", random_tensor(t, {8}, seed++, 0.02, 0.03));
    auto [n, y] = node("DequantizeLinear", {q, scales});
    n->attrs.set("axis", int64_t{1});
    dq = y;
  } else {
    dq = node("DequantizeLinear", {q, scale, zp}).second;
  }
  g->outputs = {conv(dq)};
  return g;
}

TEST(TransposeSinkingPass, PerTensorQdqJoinsTheNhwcRegion) {
  Tensor x = random_tensor(DType::kFloat16, {2, 8, 6, 6}, 9);
  for (bool per_channel : {false, true}) {
    auto before = run_cpu(qdq_sinking_graph(per_channel), x);
    GraphPtr g = qdq_sinking_graph(per_channel);
    ASSERT_TRUE(run_passes(*g, true).ok());
    auto counts = op_counts(*g);
    EXPECT_EQ(counts["FusedConv"], 2);
    // In and out of the region; a per-channel DequantizeLinear also needs NCHW around it.
    EXPECT_EQ(counts["Transpose"], per_channel ? 4 : 2) << per_channel;
    auto after = run_cpu(g, x);
    ASSERT_EQ(after.size(), 1u);
    EXPECT_EQ(after[0].dims(), before[0].dims());
    EXPECT_LT(rel_l2(after[0], before[0]), 2e-3) << per_channel;
  }
}

TEST(NhwcOp, PoolsMatchTheirNchwForm) {
  Tensor x = random_tensor(DType::kFloat16, {2, 5, 7, 6}, 12);  // NCHW
  struct PoolCase {
    const char* op;
    Dims kernel, strides, pads;
  };
  for (const PoolCase& pc : {PoolCase{"MaxPool", {3, 3}, {2, 2}, {1, 1, 1, 1}}, PoolCase{"AveragePool", {2, 3}, {1, 2}, {}},
                             PoolCase{"GlobalAveragePool", {}, {}, {}}, PoolCase{"GlobalMaxPool", {}, {}, {}}}) {
    OpCall nchw{.op_type = pc.op, .inputs = {x}};
    if (!pc.kernel.empty()) nchw.attrs.set("kernel_shape", pc.kernel);
    if (!pc.strides.empty()) nchw.attrs.set("strides", pc.strides);
    if (!pc.pads.empty()) nchw.attrs.set("pads", pc.pads);
    auto expected = run_op(nchw);
    ASSERT_TRUE(expected.ok()) << expected.status().message();
    OpCall nhwc{.op_type = "NHWC", .inputs = {permute(x, nchw_to_nhwc_perm(4))}, .domain = "kiln"};
    nhwc.attrs = nchw.attrs;
    nhwc.attrs.set("op", std::string(pc.op));
    auto got = run_op(nhwc);
    ASSERT_TRUE(got.ok()) << got.status().message();
    EXPECT_TRUE(tensors_close(permute((*got)[0], nhwc_to_nchw_perm(4)), (*expected)[0], 0, 0)) << pc.op;
  }
  OpCall bad{.op_type = "NHWC", .inputs = {x}, .domain = "kiln"};
  bad.attrs.set("op", std::string("Softmax"));
  auto r = run_op(bad);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("NHWC_node"), std::string::npos) << r.status().message();
}

TEST(NhwcOp, ConvTransposeMatchesItsNchwForm) {
  Tensor x = random_tensor(DType::kFloat32, {2, 6, 5, 4}, 21), w = random_tensor(DType::kFloat32, {6, 2, 3, 2}, 22);
  Tensor b = random_tensor(DType::kFloat32, {4}, 23);
  OpCall nchw{.op_type = "ConvTranspose", .inputs = {x, w, b}};
  nchw.attrs.set("strides", Dims{2, 2});
  nchw.attrs.set("pads", Dims{1, 0, 1, 0});
  nchw.attrs.set("group", int64_t{2});
  auto expected = run_op(nchw);
  ASSERT_TRUE(expected.ok()) << expected.status().message();
  OpCall nhwc{.op_type = "NHWC",
              .inputs = {permute(x, nchw_to_nhwc_perm(4)), permute(w, nchw_to_nhwc_perm(4)), b},
              .domain = "kiln"};
  nhwc.attrs = nchw.attrs;
  nhwc.attrs.set("op", std::string("ConvTranspose"));
  auto got = run_op(nhwc);
  ASSERT_TRUE(got.ok()) << got.status().message();
  EXPECT_TRUE(tensors_close(permute((*got)[0], nhwc_to_nchw_perm(4)), (*expected)[0], 1e-6, 1e-6));
}

// A UNet level: conv+ReLU (the skip), MaxPool, conv+ReLU, ConvTranspose up, Concat with the
// skip, conv. In float16 all of it runs NHWC: Transposes only at the graph's input and output.
GraphPtr unet_level() {
  auto g = std::make_shared<Graph>();
  const DType t = DType::kFloat16;
  Value* x = g->add_value("x", {t, Shape::from_dims({1, 4, 16, 16})});
  g->inputs = {x};
  uint32_t seed = 60;
  int id = 0;
  auto node = [&](const char* type, std::vector<Value*> ins) {
    const std::string name = type + std::to_string(id++);
    Value* y = g->add_value(name);
    return std::make_pair(g->add_node(type, ins, {y}, name, "", 21), y);
  };
  auto conv_relu = [&](Value* in, int64_t cin, int64_t cout) {
    Value* w = g->add_constant("w" + std::to_string(id), random_tensor(t, {cout, cin, 3, 3}, seed++, -0.4, 0.4));
    auto [n, y] = node("Conv", {in, w});
    n->attrs.set("pads", Dims{1, 1, 1, 1});
    return node("Relu", {y}).second;
  };
  Value* skip = conv_relu(x, 4, 8);
  auto [pool, pooled] = node("MaxPool", {skip});
  pool->attrs.set("kernel_shape", Dims{2, 2});
  pool->attrs.set("strides", Dims{2, 2});
  Value* low = conv_relu(pooled, 8, 16);
  Value* wt = g->add_constant("wt", random_tensor(t, {16, 8, 2, 2}, seed++, -0.4, 0.4));
  Value* bt = g->add_constant("bt", random_tensor(t, {8}, seed++, -0.4, 0.4));
  auto [up, up_out] = node("ConvTranspose", {low, wt, bt});
  up->attrs.set("strides", Dims{2, 2});
  auto [cat, cat_out] = node("Concat", {up_out, skip});
  cat->attrs.set("axis", int64_t{1});
  g->outputs = {conv_relu(cat_out, 16, 3)};
  return g;
}

TEST(TransposeSinkingPass, UNetLevelRunsNhwcThroughout) {
  Tensor x = random_tensor(DType::kFloat16, {1, 4, 16, 16}, 31);
  auto before = run_cpu(unet_level(), x);
  GraphPtr g = unet_level();
  ASSERT_TRUE(run_passes(*g, true).ok());
  auto counts = op_counts(*g);
  EXPECT_EQ(counts["FusedConv"], 3);
  EXPECT_EQ(counts["NHWC"], 2);  // MaxPool, ConvTranspose
  EXPECT_EQ(counts["Transpose"], 2);
  EXPECT_EQ(counts["ConvTranspose"], 0);
  EXPECT_EQ(counts["MaxPool"], 0);
  auto after = run_cpu(g, x);
  ASSERT_EQ(after.size(), 1u);
  EXPECT_EQ(after[0].dims(), before[0].dims());
  EXPECT_LT(rel_l2(after[0], before[0]), 2e-3);
}

TEST(NhwcLayoutPass, Float32StaysNchw) {
  GraphPtr g = resnet_like(DType::kFloat32);
  ASSERT_TRUE(run_passes(*g, true).ok());
  EXPECT_EQ(op_counts(*g)["Transpose"], 0);
}

// A ViT-like patch embedding: the only convolution, read by a Reshape to tokens. NHWC would add
// a Transpose of the image and gain nothing: it stays NCHW.
TEST(NhwcLayoutPass, IsolatedConvStaysNchw) {
  auto g = std::make_shared<Graph>();
  const DType t = DType::kFloat16;
  Value* x = g->add_value("x", {t, Shape::from_dims({2, 3, 32, 32})});
  g->inputs = {x};
  Value* w = g->add_constant("w", random_tensor(t, {8, 3, 8, 8}, 3, -0.3, 0.3));
  Value *y = g->add_value("y"), *tokens = g->add_value("tokens"), *out = g->add_value("out");
  Node* conv = g->add_node("Conv", {x, w}, {y}, "patch", "", 21);
  conv->attrs.set("strides", Dims{8, 8});
  Value* shape = g->add_constant("shape", Tensor::from_vector<int64_t>({3}, {2, 8, 16}));
  g->add_node("Reshape", {y, shape}, {tokens}, "flatten", "", 21);
  Node* tr = g->add_node("Transpose", {tokens}, {out}, "to_tokens", "", 21);
  tr->attrs.set("perm", Dims{0, 2, 1});
  g->outputs = {out};
  Tensor xt = random_tensor(t, {2, 3, 32, 32}, 4);
  auto before = run_cpu(g, xt);
  ASSERT_TRUE(run_passes(*g, true).ok());
  auto counts = op_counts(*g);
  EXPECT_EQ(counts["FusedConv"], 1);
  EXPECT_EQ(counts["Transpose"], 1);  // the model's own
  const Node* f = node_named(*g, "patch");
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(f->attrs.s("layout"), "NCHW");
  auto after = run_cpu(g, xt);
  ASSERT_EQ(after.size(), 1u);
  EXPECT_LT(rel_l2(after[0], before[0]), 2e-3);
}

// MobileNet-like inverted residual (1x1 expand, depthwise 3x3, 1x1 project): depthwise-heavy
// graphs stay NCHW.
TEST(NhwcLayoutPass, DepthwiseHeavyGraphStaysNchw) {
  auto g = std::make_shared<Graph>();
  const DType t = DType::kFloat16;
  Value* x = g->add_value("x", {t, Shape::from_dims({1, 8, 10, 10})});
  g->inputs = {x};
  uint32_t seed = 70;
  int id = 0;
  auto conv = [&](Value* in, Dims wd, int64_t group) {
    const std::string s = std::to_string(id++);
    Value* w = g->add_constant("w" + s, random_tensor(t, wd, seed++, -0.3, 0.3));
    Value* y = g->add_value("c" + s);
    Node* n = g->add_node("Conv", {in, w}, {y}, "c" + s, "", 21);
    n->attrs.set("group", group);
    n->attrs.set("pads", Dims{wd[2] / 2, wd[3] / 2, wd[2] / 2, wd[3] / 2});
    return y;
  };
  Value* e = conv(x, {16, 8, 1, 1}, 1);
  Value* d = conv(e, {16, 1, 3, 3}, 16);
  g->outputs = {conv(d, {8, 16, 1, 1}, 1)};
  Tensor xt = random_tensor(t, {1, 8, 10, 10}, 5);
  auto before = run_cpu(g, xt);
  ASSERT_TRUE(run_passes(*g, true).ok());
  auto counts = op_counts(*g);
  EXPECT_EQ(counts["FusedConv"], 3);
  EXPECT_EQ(counts["Transpose"], 0);
  for (const auto& n : g->nodes())
    if (n->op_type == "FusedConv") { EXPECT_EQ(n->attrs.s("layout"), "NCHW") << n->name; }
  auto after = run_cpu(g, xt);
  ASSERT_EQ(after.size(), 1u);
  EXPECT_LT(rel_l2(after[0], before[0]), 2e-3);
}

TEST(TransposeCancellationPass, RemovesInversePairsOnly) {
  auto g = std::make_shared<Graph>();
  Value* x = g->add_value("x", {DType::kFloat32, Shape::from_dims({2, 3, 4, 5})});
  g->inputs = {x};
  auto transpose = [&](Value* in, Dims perm, const std::string& name) {
    Value* y = g->add_value(name);
    Node* n = g->add_node("Transpose", {in}, {y}, name, "", 21);
    n->attrs.set("perm", perm);
    return y;
  };
  Value* a = transpose(x, {0, 2, 3, 1}, "a");
  Value* back = transpose(a, {0, 3, 1, 2}, "back");  // cancels a
  Value* other = transpose(a, {0, 2, 3, 1}, "other"); // does not
  Value* r = g->add_value("r");
  g->add_node("Relu", {back}, {r}, "relu", "", 21);
  g->outputs = {r, other};
  Tensor xt = random_tensor(DType::kFloat32, {2, 3, 4, 5}, 3);
  auto before = run_cpu(g, xt);
  ASSERT_TRUE(run_passes(*g, false).ok());
  EXPECT_EQ(op_counts(*g)["Transpose"], 2);  // a and other
  EXPECT_EQ(node_named(*g, "relu")->inputs[0], x);
  auto after = run_cpu(g, xt);
  for (size_t i = 0; i < before.size(); ++i) EXPECT_TRUE(tensors_close(after[i], before[i], 0, 0));
}

TEST(UnitTransposeToReshapePass, OnlyTransposesOfUnitDimsBecomeReshapes) {
  auto g = std::make_shared<Graph>();
  Value* x = g->add_value("x", {DType::kFloat32, Shape::from_dims({2, 1, 4, 5})});
  g->inputs = {x};
  auto transpose = [&](Value* in, Dims perm, const std::string& name) {
    Value* y = g->add_value(name);
    Node* n = g->add_node("Transpose", {in}, {y}, name, "", 21);
    n->attrs.set("perm", perm);
    return y;
  };
  Value* nhwc = transpose(x, {0, 2, 3, 1}, "nhwc");   // moves only the 1-channel dim: a view
  Value* swap = transpose(x, {0, 1, 3, 2}, "swap");   // swaps 4 and 5: a real transpose
  g->outputs = {nhwc, swap};
  Tensor xt = random_tensor(DType::kFloat32, {2, 1, 4, 5}, 5);
  auto before = run_cpu(g, xt);
  ASSERT_TRUE(infer_shapes(*g).ok());
  PassManager pm;
  pm.add(make_unit_transpose_to_reshape_pass());
  pm.add(make_dead_code_pass());
  ASSERT_TRUE(pm.run(*g).ok());
  auto counts = op_counts(*g);
  EXPECT_EQ(counts["Transpose"], 1);
  EXPECT_EQ(counts["Reshape"], 1);
  ASSERT_NE(node_named(*g, "swap"), nullptr);
  ASSERT_NE(node_named(*g, "nhwc"), nullptr);
  EXPECT_EQ(node_named(*g, "swap")->op_type, "Transpose");
  EXPECT_EQ(node_named(*g, "nhwc")->op_type, "Reshape");
  EXPECT_EQ(g->outputs[0]->type.shape, Shape::from_dims({2, 4, 5, 1}));
  auto after = run_cpu(g, xt);
  ASSERT_EQ(after.size(), before.size());
  for (size_t i = 0; i < before.size(); ++i) EXPECT_TRUE(tensors_close(after[i], before[i], 0, 0));
}

namespace split {

// Two 64-channel branches of x, concatenated along the channels and read by a 3x3 conv with
// `outputs` channels (+ bias, Relu); `extra_reader`: the Concat is also a graph output.
GraphPtr concat_conv(int64_t outputs, bool extra_reader) {
  auto g = std::make_shared<Graph>();
  const DType t = DType::kFloat16;
  Value* x = g->add_value("x", {t, Shape::from_dims({1, 8, 10, 9})});
  g->inputs = {x};
  uint32_t seed = 80;
  int id = 0;
  auto node = [&](const char* type, std::vector<Value*> ins) {
    const std::string name = type + std::to_string(id++);
    Value* y = g->add_value(name);
    return std::make_pair(g->add_node(type, ins, {y}, name, "", 21), y);
  };
  auto conv = [&](Value* in, int64_t cin, int64_t cout, bool relu) {
    Value* w = g->add_constant("w" + std::to_string(id), random_tensor(t, {cout, cin, 3, 3}, seed++, -0.1, 0.1));
    Value* b = g->add_constant("b" + std::to_string(id), random_tensor(t, {cout}, seed++, -0.5, 0.5));
    auto [n, y] = node("Conv", {in, w, b});
    n->attrs.set("pads", Dims{1, 1, 1, 1});
    return relu ? node("Relu", {y}).second : y;
  };
  auto [cat, cat_out] = node("Concat", {conv(x, 8, 64, true), conv(x, 8, 64, false)});
  cat->attrs.set("axis", int64_t{1});
  g->outputs = {conv(cat_out, 128, outputs, true)};
  if (extra_reader) g->outputs.push_back(cat_out);
  return g;
}

Status run_with_split(Graph& g) {
  KILN_RETURN_IF_ERROR(run_passes(g, true));
  PassManager pm;
  pm.add(make_concat_conv_split_pass());
  pm.add(make_dead_code_pass());
  return pm.run(g);
}

}  // namespace split

TEST(ConcatConvSplitPass, ConvOverAChannelConcatBecomesAZChain) {
  Tensor x = random_tensor(DType::kFloat16, {1, 8, 10, 9}, 33);
  auto before = run_cpu(split::concat_conv(64, false), x);
  GraphPtr g = split::concat_conv(64, false);
  ASSERT_TRUE(split::run_with_split(*g).ok());
  auto counts = op_counts(*g);
  EXPECT_EQ(counts["Concat"], 0);
  EXPECT_EQ(counts["FusedConv"], 4);
  // The last conv reads the second part and adds the first part's conv (bias there, no Relu).
  const Node* last = g->outputs[0]->producer;
  while (last && last->op_type == "Transpose") last = last->inputs[0]->producer;
  ASSERT_TRUE(last && last->op_type == "FusedConv");
  EXPECT_EQ(last->attrs.s("activation"), "Relu");
  EXPECT_FALSE(last->has_input(2));
  ASSERT_TRUE(last->has_input(3));
  const Node* first = last->inputs[3]->producer;
  ASSERT_TRUE(first && first->op_type == "FusedConv");
  EXPECT_EQ(first->attrs.s("activation"), "");
  EXPECT_TRUE(first->has_input(2));
  EXPECT_FALSE(first->has_input(3));
  EXPECT_EQ(*first->inputs[1]->type.shape.to_dims(), (Dims{64, 3, 3, 64}));
  EXPECT_NE(last->attrs.s("kiln_fused").find(":Concat"), std::string::npos);
  auto after = run_cpu(g, x);
  ASSERT_EQ(after.size(), 1u);
  EXPECT_EQ(after[0].dims(), before[0].dims());
  EXPECT_LT(rel_l2(after[0], before[0]), 2e-3);
}

TEST(ConcatConvSplitPass, LeavesOtherOutputCountsAndSharedConcatsAlone) {
  for (bool shared : {false, true}) {
    GraphPtr g = split::concat_conv(shared ? 64 : 32, shared);
    ASSERT_TRUE(split::run_with_split(*g).ok());
    EXPECT_EQ(op_counts(*g)["Concat"], 1) << (shared ? "Concat also a graph output" : "32 outputs");
  }
}

namespace head {

// x (8 channels) -> 3x3 conv (64) + Relu -> 3x3 conv (64, pads 1) + Relu -> 1x1 conv (`classes`,
// + bias) [-> Relu]; `extra_reader`: the 64-channel Y is also a graph output.
GraphPtr conv_classifier(int64_t classes, bool head_relu, bool extra_reader) {
  auto g = std::make_shared<Graph>();
  const DType t = DType::kFloat16;
  Value* x = g->add_value("x", {t, Shape::from_dims({2, 8, 11, 9})});
  g->inputs = {x};
  uint32_t seed = 120;
  int id = 0;
  auto node = [&](const char* type, std::vector<Value*> ins) {
    const std::string name = type + std::to_string(id++);
    Value* y = g->add_value(name);
    return std::make_pair(g->add_node(type, ins, {y}, name, "", 21), y);
  };
  auto conv = [&](Value* in, int64_t cin, int64_t cout, int64_t k, bool relu) {
    Value* w = g->add_constant("w" + std::to_string(id), random_tensor(t, {cout, cin, k, k}, seed++, -0.2, 0.2));
    Value* b = g->add_constant("b" + std::to_string(id), random_tensor(t, {cout}, seed++, -0.5, 0.5));
    auto [n, y] = node("Conv", {in, w, b});
    const int64_t p = k / 2;
    n->attrs.set("pads", Dims{p, p, p, p});
    return relu ? node("Relu", {y}).second : y;
  };
  Value* y = conv(conv(x, 8, 64, 3, true), 64, 64, 3, true);
  g->outputs = {conv(y, 64, classes, 1, head_relu)};
  if (extra_reader) g->outputs.push_back(y);
  return g;
}

Status run_with_head_fusion(Graph& g) {
  KILN_RETURN_IF_ERROR(run_passes(g, true));
  PassManager pm;
  pm.add(make_conv_head_fusion_pass());
  pm.add(make_dead_code_pass());
  return pm.run(g);
}

}  // namespace head

TEST(ConvHeadFusionPass, ClassifierBecomesTheConvsHead) {
  Tensor x = random_tensor(DType::kFloat16, {2, 8, 11, 9}, 41);
  auto before = run_cpu(head::conv_classifier(3, false, false), x);
  GraphPtr g = head::conv_classifier(3, false, false);
  ASSERT_TRUE(head::run_with_head_fusion(*g).ok());
  EXPECT_EQ(op_counts(*g)["FusedConv"], 2);
  const Node* last = g->outputs[0]->producer;
  while (last && last->op_type == "Transpose") last = last->inputs[0]->producer;
  ASSERT_TRUE(last && last->op_type == "FusedConv");
  ASSERT_EQ(last->inputs.size(), 6u);
  EXPECT_EQ(*last->inputs[1]->type.shape.to_dims(), (Dims{64, 3, 3, 64}));
  EXPECT_EQ(*last->inputs[4]->type.shape.to_dims(), (Dims{3, 1, 1, 64}));
  EXPECT_EQ(*last->inputs[5]->type.shape.to_dims(), (Dims{3}));
  EXPECT_EQ(*last->outputs[0]->type.shape.to_dims(), (Dims{2, 11, 9, 3}));
  EXPECT_EQ(last->attrs.s("activation"), "Relu");
  const std::string fused = last->attrs.s("kiln_fused");  // conv, Relu, classifier
  EXPECT_EQ(std::count(fused.begin(), fused.end(), ','), 2) << fused;
  auto after = run_cpu(g, x);
  ASSERT_EQ(after.size(), 1u);
  EXPECT_EQ(after[0].dims(), before[0].dims());
  EXPECT_LT(rel_l2(after[0], before[0]), 1e-3);
}

TEST(ConvHeadFusionPass, LeavesSharedOutputsActivatedOrWideHeadsAlone) {
  struct Variant {
    int64_t classes;
    bool head_relu, extra_reader;
    const char* why;
  };
  for (const Variant& v : {Variant{3, false, true, "Y is also a graph output"},
                           Variant{3, true, false, "the classifier has a Relu"},
                           Variant{16, false, false, "16 classes"}}) {
    GraphPtr g = head::conv_classifier(v.classes, v.head_relu, v.extra_reader);
    ASSERT_TRUE(head::run_with_head_fusion(*g).ok());
    EXPECT_EQ(op_counts(*g)["FusedConv"], 3) << v.why;
    for (const auto& n : g->nodes()) EXPECT_LE(n->inputs.size(), 4u) << v.why;
  }
}

}  // namespace
}  // namespace kiln::test
