// kiln.FusedConv through cuDNN's graph (backend) API: every graph-API engine config offered for
// the node against the CPU reference (NHWC and NCHW, float16/bfloat16/float32, with and without
// bias, residual and Relu, strides, dilations, groups, odd and 1-channel shapes), a chosen config
// surviving a plan save + load, and an unknown config falling back with a note.
#include <cstdio>

#include "backends/cuda/layers/conv_graph.hpp"
#include "ops/fused_conv.hpp"
#include "tactic_test_util.hpp"

namespace kiln::test {
namespace {

BuildOptions layer_only() {
  BuildOptions o;
  o.backend = "cuda";
  o.tf32 = false;
  o.disabled_passes = {"nhwc-layout"};
  return o;
}

double tol_for(DType t) { return t == DType::kFloat32 ? 2e-5 : t == DType::kFloat16 ? 5e-3 : 2e-2; }

Tensor permute(const Tensor& x, const std::vector<int64_t>& perm) {
  OpCall call{.op_type = "Transpose", .inputs = {x}};
  call.attrs.set("perm", perm);
  auto r = run_op(call);
  EXPECT_TRUE(r.ok()) << r.status().message();
  return r.ok() ? (*r)[0] : Tensor();
}

struct Case {
  const char* what;
  DType dtype;
  bool nhwc;
  Dims x, w;  // NCHW, MCRS
  int64_t group;
  Dims strides, pads, dilations;
  bool bias, residual, relu;
};

Dims conv_out(const Case& c) {
  Dims y{c.x[0], c.w[0]};
  for (size_t i = 0; i < 2; ++i) {
    const int64_t span = (c.w[2 + i] - 1) * c.dilations[i] + 1;
    y.push_back((c.x[2 + i] + c.pads[i] + c.pads[i + 2] - span) / c.strides[i] + 1);
  }
  return y;
}

OpCall call_for(const Case& c) {
  auto lay = [&](Tensor t) { return c.nhwc ? permute(t, nchw_to_nhwc_perm(4)) : t; };
  OpCall call{.op_type = "FusedConv", .domain = "kiln"};
  call.inputs = {lay(random_tensor(c.dtype, c.x, 1)), lay(random_tensor(c.dtype, c.w, 2, -1.0, 1.0)),
                 c.bias ? random_tensor(c.dtype, {c.w[0]}, 3) : Tensor()};
  call.constant_inputs = {false, true, true, false};
  if (c.residual) call.inputs.push_back(lay(random_tensor(c.dtype, conv_out(c), 4)));
  call.attrs.set("strides", c.strides);
  call.attrs.set("pads", c.pads);
  call.attrs.set("dilations", c.dilations);
  call.attrs.set("group", c.group);
  call.attrs.set("activation", std::string(c.relu ? "Relu" : ""));
  call.attrs.set("layout", std::string(c.nhwc ? "NHWC" : "NCHW"));
  return call;
}

const Case kMain = {"fp16 nhwc 3x3 bias+z+relu", DType::kFloat16, true, {1, 32, 17, 15}, {64, 32, 3, 3}, 1,
                    {1, 1}, {1, 1, 1, 1}, {1, 1}, true, true, true};

const std::vector<Case>& cases() {
  static const std::vector<Case> all = {
      kMain,
      {"fp16 nhwc 1x1 plain", DType::kFloat16, true, {1, 64, 9, 9}, {32, 64, 1, 1}, 1, {1, 1}, {0, 0, 0, 0}, {1, 1},
       false, false, false},
      {"fp16 nhwc 1-channel input", DType::kFloat16, true, {1, 1, 33, 31}, {16, 1, 3, 3}, 1, {1, 1}, {1, 1, 1, 1},
       {1, 1}, true, false, true},
      {"fp16 nhwc 1-channel output", DType::kFloat16, true, {1, 16, 20, 20}, {1, 16, 1, 1}, 1, {1, 1},
       {0, 0, 0, 0}, {1, 1}, true, false, false},
      {"fp16 nhwc stride2 dilation2", DType::kFloat16, true, {1, 16, 20, 18}, {24, 16, 3, 3}, 1, {2, 2},
       {2, 2, 2, 2}, {2, 2}, true, false, true},
      {"fp16 nhwc grouped", DType::kFloat16, true, {2, 16, 12, 12}, {16, 8, 3, 3}, 2, {1, 1}, {1, 1, 1, 1}, {1, 1},
       true, false, true},
      {"fp16 nhwc depthwise", DType::kFloat16, true, {1, 32, 14, 14}, {32, 1, 3, 3}, 32, {2, 2}, {1, 1, 1, 1},
       {1, 1}, true, false, true},
      {"fp16 nhwc unequal pads", DType::kFloat16, true, {1, 8, 12, 11}, {8, 8, 3, 3}, 1, {2, 2}, {0, 0, 1, 1},
       {1, 1}, true, false, true},
      {"fp16 nhwc residual only", DType::kFloat16, true, {1, 16, 10, 10}, {16, 16, 3, 3}, 1, {1, 1}, {1, 1, 1, 1},
       {1, 1}, false, true, false},
      {"bf16 nhwc 3x3 bias+z+relu", DType::kBFloat16, true, {2, 16, 10, 10}, {16, 16, 3, 3}, 1, {1, 1},
       {1, 1, 1, 1}, {1, 1}, true, true, true},
      {"bf16 nhwc odd channels", DType::kBFloat16, true, {1, 13, 9, 7}, {11, 13, 3, 3}, 1, {1, 1}, {1, 1, 1, 1},
       {1, 1}, true, false, false},
      {"fp16 nchw 3x3 bias+relu", DType::kFloat16, false, {1, 16, 13, 13}, {32, 16, 3, 3}, 1, {1, 1},
       {1, 1, 1, 1}, {1, 1}, true, false, true},
      {"fp32 nchw 3x3 bias+z+relu", DType::kFloat32, false, {1, 8, 13, 11}, {16, 8, 3, 3}, 1, {1, 1},
       {1, 1, 1, 1}, {1, 1}, true, true, true},
  };
  return all;
}

// The plan of one call and the index of its FusedConv layer.
struct Built {
  Plan plan;
  size_t index = 0;
};

Expected<Built> build(const OpCall& call, BuildOptions o) {
  Model model;
  model.graph = make_op_graph(call);
  KILN_ASSIGN_OR_RETURN(Plan plan, build_plan(std::move(model), o));
  Built b{std::move(plan), 0};
  const auto& nodes = b.plan.graph->nodes();
  b.index = nodes.size();
  for (size_t i = 0; i < nodes.size(); ++i)
    if (nodes[i]->op_type == "FusedConv") b.index = i;
  if (b.index == nodes.size()) return internal_error("no FusedConv in the plan");
  return b;
}

std::vector<std::string> graph_tactics(const Built& b, const BuildOptions& o) {
  const Node& node = *b.plan.graph->nodes()[b.index];
  std::vector<std::string> out;
  for (const std::string& t : cuda::find_cuda_layer(node)->tactics(node, o))
    if (cuda::is_graph_tactic(t)) out.push_back(t);
  return out;
}

Expected<std::vector<Tensor>> run_plan(Plan plan, const OpCall& call, bool cuda_graph = false) {
  KILN_ASSIGN_OR_RETURN(auto engine, Engine::from_plan(std::move(plan)));
  ContextOptions co;
  co.cuda_graph = cuda_graph;
  KILN_ASSIGN_OR_RETURN(auto ctx, engine->create_context(co));
  std::map<std::string, Tensor> feeds;
  for (const BindingInfo& bi : engine->inputs())
    feeds[bi.name] = call.inputs[static_cast<size_t>(std::stoi(bi.name.substr(2)))];
  return ctx->run(feeds);
}

TEST(CudaConvGraph, ConfigNamesRoundTrip) {
  cuda::GraphConfig c{.engine = 12, .knobs = {{3, 1}, {5, -1}, {17, 256}}};
  EXPECT_EQ(c.name(), "graph_e12_k3.1_k5.-1_k17.256");
  auto p = cuda::GraphConfig::parse(c.name());
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->engine, 12);
  EXPECT_EQ(p->knobs, c.knobs);
  EXPECT_TRUE(cuda::GraphConfig::parse("graph_e7").has_value());
  EXPECT_FALSE(cuda::GraphConfig::parse("graph_e7_x").has_value());
  EXPECT_FALSE(cuda::GraphConfig::parse("cudnn_algo1_math1").has_value());
  auto plain = cuda::GraphConfig::parse("graphp_e3_k1.0");
  ASSERT_TRUE(plain.has_value());
  EXPECT_TRUE(plain->plain);
  EXPECT_EQ(plain->name(), "graphp_e3_k1.0");
}

// Every config (graph-API and legacy) of every case against the CPU; the main case must offer
// graph-API configs (the others print how many they got).
TEST(CudaConvGraph, AllConfigsMatchCpu) {
  KILN_REQUIRE_GPU();
  for (const Case& c : cases()) {
    OpCall call = call_for(c);
    auto b = build(call, layer_only());
    ASSERT_TRUE(b.ok()) << c.what << ": " << b.status().message();
    auto g = graph_tactics(*b, layer_only());
    std::printf("[ graph ] %-28s %zu graph configs, timer chose '%s'\n", c.what, g.size(),
                b->plan.layers[b->index].tactic.c_str());
    if (&c == &cases()[0]) { EXPECT_GE(g.size(), 1u) << c.what; }
    EXPECT_TRUE(all_tactics_match_cpu(call, tol_for(c.dtype), layer_only())) << c.what;
  }
}

// ConvTranspose as the graph API's data gradient (with its bias in the graph where cuDNN fuses
// it): UNet-like 2x2 stride 2 in NHWC float16, and NCHW float16/float32 with groups and pads.
TEST(CudaConvGraph, ConvTransposeConfigsMatchCpu) {
  KILN_REQUIRE_GPU();
  struct TCase {
    const char* what;
    DType t;
    bool nhwc;
    Dims x, w;  // NCHW, (C, M/g, kh, kw)
    int64_t group;
    Dims strides, pads;
  };
  for (const TCase& c : {TCase{"fp16 nhwc 2x2 s2", DType::kFloat16, true, {1, 32, 16, 16}, {32, 16, 2, 2}, 1, {2, 2},
                               {0, 0, 0, 0}},
                         TCase{"fp16 nchw 3x3 s2 g2", DType::kFloat16, false, {1, 12, 7, 6}, {12, 3, 3, 3}, 2,
                               {2, 2}, {1, 1, 1, 1}},
                         TCase{"fp32 nchw 3x3 s1", DType::kFloat32, false, {2, 6, 5, 4}, {6, 4, 3, 3}, 1, {1, 1},
                               {1, 1, 1, 1}}}) {
    auto lay = [&](Tensor t) { return c.nhwc ? permute(t, nchw_to_nhwc_perm(4)) : t; };
    OpCall call{.op_type = c.nhwc ? "NHWC" : "ConvTranspose",
                .inputs = {lay(random_tensor(c.t, c.x, 1)), lay(random_tensor(c.t, c.w, 2, -1.0, 1.0)),
                           random_tensor(c.t, {c.w[1] * c.group}, 3)},
                .constant_inputs = {false, true, true},
                .domain = c.nhwc ? "kiln" : ""};
    if (c.nhwc) call.attrs.set("op", std::string("ConvTranspose"));
    call.attrs.set("strides", c.strides);
    call.attrs.set("pads", c.pads);
    call.attrs.set("group", c.group);
    BuildOptions o;
    o.backend = "cuda";
    o.tf32 = false;
    o.disabled_passes = {"nhwc-layout"};
    Model model;
    model.graph = make_op_graph(call);
    auto plan = build_plan(std::move(model), o);
    ASSERT_TRUE(plan.ok()) << c.what << ": " << plan.status().message();
    size_t graph = 0;
    for (size_t i = 0; i < plan->graph->nodes().size(); ++i) {
      const Node& node = *plan->graph->nodes()[i];
      if (node.op_type != call.op_type) continue;
      for (const std::string& t : cuda::find_cuda_layer(node)->tactics(node, o)) graph += cuda::is_graph_tactic(t);
      std::printf("[ graph ] ConvTranspose %-20s %zu graph configs, timer chose '%s'\n", c.what, graph,
                  plan->layers[i].tactic.c_str());
    }
    EXPECT_TRUE(all_tactics_match_cpu(call, tol_for(c.t), o)) << c.what;
  }
}

// A graph-API choice is stored in the plan by name and re-created from it after save + load (also
// under CUDA graph capture).
TEST(CudaConvGraph, PlanRoundTrip) {
  KILN_REQUIRE_GPU();
  OpCall call = call_for(kMain);
  auto cpu = run_op(call);
  ASSERT_TRUE(cpu.ok()) << cpu.status().message();
  auto b = build(call, layer_only());
  ASSERT_TRUE(b.ok()) << b.status().message();
  auto g = graph_tactics(*b, layer_only());
  ASSERT_FALSE(g.empty());
  const std::string chosen = g.back();  // not necessarily the heuristics' first
  b->plan.layers[b->index].tactic = chosen;
  const std::string path = ::testing::TempDir() + "/kiln_conv_graph.kplan";
  ASSERT_TRUE(save_plan(b->plan, path).ok());
  auto loaded = load_plan(path);
  ASSERT_TRUE(loaded.ok()) << loaded.status().message();
  EXPECT_EQ(loaded->layers[b->index].tactic, chosen);
  for (bool cuda_graph : {false, true}) {
    cuda::clear_graph_plan_cache();  // re-created from the name, not reused from the build
    Plan p = *loaded;
    ::testing::internal::CaptureStderr();
    auto gpu = run_plan(std::move(p), call, cuda_graph);
    const std::string err = ::testing::internal::GetCapturedStderr();
    ASSERT_TRUE(gpu.ok()) << gpu.status().message();
    EXPECT_EQ(err.find("not available"), std::string::npos) << err;  // re-created, no fallback
    EXPECT_LT(rel_l2((*gpu)[0], (*cpu)[0]), tol_for(kMain.dtype)) << "cuda_graph " << cuda_graph;
  }
}

// An engine config this cuDNN does not have (a plan from another version or GPU) falls back to
// the heuristics' first config, saying so, and still computes the right result.
TEST(CudaConvGraph, UnavailableConfigFallsBack) {
  KILN_REQUIRE_GPU();
  OpCall call = call_for(kMain);
  auto cpu = run_op(call);
  ASSERT_TRUE(cpu.ok()) << cpu.status().message();
  auto b = build(call, layer_only());
  ASSERT_TRUE(b.ok()) << b.status().message();
  b->plan.layers[b->index].tactic = "graph_e987654_k1.3";
  cuda::clear_graph_plan_cache();
  ::testing::internal::CaptureStderr();
  auto gpu = run_plan(std::move(b->plan), call);
  const std::string err = ::testing::internal::GetCapturedStderr();
  ASSERT_TRUE(gpu.ok()) << gpu.status().message();
  EXPECT_NE(err.find("graph_e987654_k1.3' is not available here"), std::string::npos) << err;
  EXPECT_LT(rel_l2((*gpu)[0], (*cpu)[0]), tol_for(kMain.dtype));
}

}  // namespace
}  // namespace kiln::test
