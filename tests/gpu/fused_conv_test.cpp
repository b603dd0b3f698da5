// kiln.FusedConv on cuDNN (fused and unfused tactics, NCHW and NHWC) against the CPU reference,
// and the CUDA backend's conv-fusion / NHWC passes on whole small graphs.
#include "backends/cpu/cpu_executor.hpp"
#include "ops/fused_conv.hpp"
#include "tactic_test_util.hpp"

namespace kiln::test {
namespace {

constexpr double kFp32Tol = 2e-5;  // exact float32 (no TF32), Winograd/FFT rounding
constexpr double kFp16Tol = 5e-3;
constexpr double kBf16Tol = 2e-2;

double tol_for(DType t) { return t == DType::kFloat32 ? kFp32Tol : t == DType::kFloat16 ? kFp16Tol : kBf16Tol; }

// The layer as the node says (no NHWC rewrite of NCHW nodes), exact float32.
BuildOptions layer_only() {
  BuildOptions o;
  o.tf32 = false;
  o.disabled_passes = {"nhwc-layout"};
  return o;
}

Tensor permute(const Tensor& x, const std::vector<int64_t>& perm) {
  OpCall call{.op_type = "Transpose", .inputs = {x}};
  call.attrs.set("perm", perm);
  auto r = run_op(call);
  EXPECT_TRUE(r.ok()) << r.status().message();
  return r.ok() ? (*r)[0] : Tensor();
}

struct Case {
  DType dtype;
  Dims x;   // NCHW
  Dims w;   // MCRS (C per group)
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

OpCall fused_call(const Case& c, const std::string& layout) {
  const bool nhwc = layout == "NHWC";
  auto lay = [&](Tensor t) { return nhwc ? permute(t, nchw_to_nhwc_perm(4)) : t; };
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
  call.attrs.set("layout", layout);
  return call;
}

const std::vector<Case>& cases() {
  static const std::vector<Case> all = {
      // ResNet-like 3x3 with residual and ReLU; 1x1 without; odd channel counts; groups, strides,
      // dilations, unequal pads (pre-padded), depthwise.
      {DType::kFloat32, {2, 8, 13, 11}, {16, 8, 3, 3}, 1, {1, 1}, {1, 1, 1, 1}, {1, 1}, true, true, true},
      {DType::kFloat32, {2, 7, 9, 9}, {5, 7, 1, 1}, 1, {1, 1}, {0, 0, 0, 0}, {1, 1}, true, false, false},
      {DType::kFloat32, {1, 6, 15, 12}, {8, 3, 3, 3}, 2, {2, 1}, {1, 0, 2, 1}, {1, 2}, false, true, false},
      {DType::kFloat32, {2, 12, 10, 10}, {12, 1, 3, 3}, 12, {2, 2}, {1, 1, 1, 1}, {1, 1}, true, false, true},
      {DType::kFloat16, {2, 16, 14, 14}, {32, 16, 3, 3}, 1, {1, 1}, {1, 1, 1, 1}, {1, 1}, true, true, true},
      {DType::kFloat16, {2, 13, 9, 9}, {11, 13, 1, 1}, 1, {1, 1}, {0, 0, 0, 0}, {1, 1}, true, true, false},
      {DType::kFloat16, {1, 8, 12, 12}, {8, 4, 3, 3}, 2, {2, 2}, {0, 0, 1, 1}, {2, 2}, false, false, true},
      {DType::kFloat16, {1, 24, 11, 11}, {24, 1, 5, 5}, 24, {1, 1}, {2, 2, 2, 2}, {1, 1}, true, false, false},
      {DType::kBFloat16, {2, 16, 10, 10}, {16, 16, 3, 3}, 1, {1, 1}, {1, 1, 1, 1}, {1, 1}, true, true, true},
      {DType::kBFloat16, {1, 5, 8, 8}, {3, 5, 1, 1}, 1, {2, 2}, {0, 0, 0, 0}, {1, 1}, false, false, false},
  };
  return all;
}

std::string describe(const Case& c, const std::string& layout) {
  return fmt::format("{} {} x[{}] w[{}] g{} bias{} z{} relu{}", layout, dtype_name(c.dtype), fmt::join(c.x, ","),
                     fmt::join(c.w, ","), c.group, c.bias, c.residual, c.relu);
}

TEST(CudaFusedConv, NchwAllTactics) {
  KILN_REQUIRE_GPU();
  for (const Case& c : cases())
    EXPECT_TRUE(all_tactics_match_cpu(fused_call(c, "NCHW"), tol_for(c.dtype), layer_only())) << describe(c, "NCHW");
}

TEST(CudaFusedConv, NhwcAllTactics) {
  KILN_REQUIRE_GPU();
  for (const Case& c : cases())
    EXPECT_TRUE(all_tactics_match_cpu(fused_call(c, "NHWC"), tol_for(c.dtype), layer_only())) << describe(c, "NHWC");
}

// Stems with 1-4 input channels in NHWC also offer the direct small-channel kernel; every tactic
// (that one included) matches the CPU.
TEST(CudaFusedConv, SmallChannelStemsOfferTheDirectKernel) {
  KILN_REQUIRE_GPU();
  const std::vector<Case> stems = {
      {DType::kFloat16, {1, 1, 37, 35}, {64, 1, 3, 3}, 1, {1, 1}, {1, 1, 1, 1}, {1, 1}, true, false, true},
      {DType::kFloat16, {2, 3, 30, 31}, {32, 3, 7, 7}, 1, {2, 2}, {3, 3, 3, 3}, {1, 1}, true, false, true},
      {DType::kFloat32, {2, 4, 11, 9}, {8, 4, 3, 3}, 1, {1, 2}, {1, 0, 2, 1}, {1, 1}, true, true, false},
      {DType::kBFloat16, {1, 2, 16, 16}, {16, 2, 3, 3}, 1, {1, 1}, {2, 2, 2, 2}, {2, 2}, false, true, true},
      // reductions of <= 12 (weights in registers)
      {DType::kFloat32, {2, 1, 9, 10}, {16, 1, 3, 3}, 1, {2, 1}, {1, 0, 1, 2}, {1, 1}, true, true, false},
      {DType::kBFloat16, {1, 3, 12, 13}, {16, 3, 2, 2}, 1, {2, 2}, {0, 0, 0, 0}, {1, 1}, true, true, true},
      {DType::kFloat16, {1, 1, 20, 19}, {24, 1, 3, 3}, 1, {1, 1}, {1, 1, 1, 1}, {1, 1}, true, false, true},
      // more pixels than one sweep of the resident grid: each thread walks several
      {DType::kFloat16, {2, 1, 130, 97}, {64, 1, 3, 3}, 1, {1, 1}, {1, 1, 1, 1}, {1, 1}, true, false, true},
  };
  for (const Case& c : stems) {
    auto call = fused_call(c, "NHWC");
    auto graph = make_op_graph(call);
    ASSERT_TRUE(infer_shapes(*graph).ok());
    const Node& node = *graph->nodes().back();
    auto tactics = cuda::find_cuda_layer(node)->tactics(node, layer_only());
    EXPECT_TRUE(std::find(tactics.begin(), tactics.end(), "direct_smallc") != tactics.end()) << describe(c, "NHWC");
    EXPECT_TRUE(all_tactics_match_cpu(call, tol_for(c.dtype), layer_only(), 2)) << describe(c, "NHWC");
  }
  // 16 input channels: not offered (cuDNN's tensor-core kernels are the right tool there).
  auto call = fused_call(cases()[4], "NHWC");
  auto graph = make_op_graph(call);
  ASSERT_TRUE(infer_shapes(*graph).ok());
  const Node& node = *graph->nodes().back();
  auto tactics = cuda::find_cuda_layer(node)->tactics(node, layer_only());
  EXPECT_TRUE(std::find(tactics.begin(), tactics.end(), "direct_smallc") == tactics.end());
}

// A FusedConv with a 1x1 head (conv-head-fusion's form): every tactic (the halo-tile kernel's
// epilogue on Hopper, the others' body-then-head) matches the CPU, with and without Z, bias and
// head bias, over partial tiles and batches.
TEST(CudaFusedConv, HeadOnEveryTactic) {
  KILN_REQUIRE_GPU();
  struct HeadCase {
    Case conv;
    int64_t classes;
    bool head_bias;
  };
  const std::vector<HeadCase> convs = {
      {{DType::kFloat16, {1, 64, 37, 35}, {64, 64, 3, 3}, 1, {1, 1}, {1, 1, 1, 1}, {1, 1}, true, false, true}, 2, true},
      {{DType::kFloat16, {2, 64, 20, 17}, {64, 64, 3, 3}, 1, {1, 1}, {1, 1, 1, 1}, {1, 1}, true, true, true}, 8, false},
      {{DType::kFloat16, {1, 64, 64, 40}, {64, 64, 3, 3}, 1, {1, 1}, {1, 1, 1, 1}, {1, 1}, false, false, false}, 1, true},
      {{DType::kFloat16, {1, 16, 9, 13}, {64, 16, 3, 3}, 1, {1, 1}, {1, 1, 1, 1}, {1, 1}, true, false, true}, 3, true},
  };
  for (const HeadCase& h : convs) {
    OpCall call = fused_call(h.conv, "NHWC");
    call.inputs.resize(4);
    call.inputs.push_back(random_tensor(DType::kFloat16, {h.classes, 1, 1, 64}, 7, -0.3, 0.3));
    call.inputs.push_back(h.head_bias ? random_tensor(DType::kFloat16, {h.classes}, 8) : Tensor());
    call.constant_inputs = {false, true, true, false, true, true};
    auto graph = make_op_graph(call);
    ASSERT_TRUE(infer_shapes(*graph).ok()) << describe(h.conv, "NHWC");
    EXPECT_TRUE(all_tactics_match_cpu(call, tol_for(h.conv.dtype), layer_only(), 2)) << describe(h.conv, "NHWC")
                                                                                     << " head " << h.classes;
  }
}

// float16/bfloat16 NHWC convolutions with kh*kw*C <= 16 and 16, 32 or 64 outputs offer the
// tensor-core small-reduction kernel; it matches the CPU at image edges (pads, strides,
// dilations), pixel counts that are not a multiple of its 16-pixel groups, batches, and more
// groups than its resident grid covers in one sweep.
TEST(CudaFusedConv, SmallReductionTensorCoreKernel) {
  KILN_REQUIRE_GPU();
  const std::vector<Case> convs = {
      {DType::kFloat16, {1, 1, 37, 35}, {64, 1, 3, 3}, 1, {1, 1}, {1, 1, 1, 1}, {1, 1}, true, false, true},
      {DType::kFloat16, {2, 1, 30, 31}, {32, 1, 3, 3}, 1, {2, 2}, {1, 0, 2, 1}, {1, 1}, false, false, false},
      {DType::kBFloat16, {1, 2, 17, 16}, {16, 2, 2, 2}, 1, {1, 1}, {2, 2, 2, 2}, {2, 2}, true, false, true},
      {DType::kFloat16, {1, 1, 21, 19}, {64, 1, 4, 4}, 1, {2, 1}, {1, 2, 1, 2}, {1, 1}, true, false, false},
      {DType::kBFloat16, {3, 1, 9, 7}, {64, 1, 3, 3}, 1, {1, 1}, {0, 0, 0, 0}, {1, 1}, true, false, true},
      // more groups of 16 pixels than one sweep of the resident grid
      {DType::kFloat16, {2, 1, 300, 301}, {64, 1, 3, 3}, 1, {1, 1}, {1, 1, 1, 1}, {1, 1}, true, false, true},
  };
  for (const Case& c : convs) {
    auto call = fused_call(c, "NHWC");
    auto graph = make_op_graph(call);
    ASSERT_TRUE(infer_shapes(*graph).ok());
    const Node& node = *graph->nodes().back();
    auto tactics = cuda::find_cuda_layer(node)->tactics(node, layer_only());
    EXPECT_TRUE(std::find(tactics.begin(), tactics.end(), "mma_smallk") != tactics.end()) << describe(c, "NHWC");
    EXPECT_TRUE(all_tactics_match_cpu(call, tol_for(c.dtype), layer_only(), 2)) << describe(c, "NHWC");
  }
  // A reduction of 18 (2 channels, 3x3), 48 outputs, float32, or a residual: not offered.
  for (const Case& c : {Case{DType::kFloat16, {1, 2, 16, 16}, {64, 2, 3, 3}, 1, {1, 1}, {1, 1, 1, 1}, {1, 1}, true,
                             false, true},
                        Case{DType::kFloat16, {1, 1, 16, 16}, {48, 1, 3, 3}, 1, {1, 1}, {1, 1, 1, 1}, {1, 1}, true,
                             false, true},
                        Case{DType::kFloat32, {1, 1, 16, 16}, {64, 1, 3, 3}, 1, {1, 1}, {1, 1, 1, 1}, {1, 1}, true,
                             false, true},
                        Case{DType::kFloat16, {1, 1, 16, 16}, {64, 1, 3, 3}, 1, {1, 1}, {1, 1, 1, 1}, {1, 1}, true,
                             true, true}}) {
    auto graph = make_op_graph(fused_call(c, "NHWC"));
    ASSERT_TRUE(infer_shapes(*graph).ok());
    const Node& node = *graph->nodes().back();
    auto tactics = cuda::find_cuda_layer(node)->tactics(node, layer_only());
    EXPECT_TRUE(std::find(tactics.begin(), tactics.end(), "mma_smallk") == tactics.end()) << describe(c, "NHWC");
  }
}

// float16 NHWC 3x3 stride-1 convolutions with 64 inputs and outputs offer the Hopper halo-tile
// kernel on an sm_90 GPU; it matches the CPU with partial tiles at the image's bottom and right
// edges, batches, Z, and more tiles than the persistent grid has CTAs.
TEST(CudaFusedConv, HaloTileKernelOnHopper) {
  KILN_REQUIRE_GPU();
  int device = 0, major = 0, minor = 0;
  ASSERT_EQ(cudaGetDevice(&device), cudaSuccess);
  ASSERT_EQ(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device), cudaSuccess);
  ASSERT_EQ(cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device), cudaSuccess);
  const bool hopper = major == 9 && minor == 0;
  const std::vector<Case> convs = {
      {DType::kFloat16, {1, 64, 37, 35}, {64, 64, 3, 3}, 1, {1, 1}, {1, 1, 1, 1}, {1, 1}, true, false, true},
      {DType::kFloat16, {2, 64, 20, 17}, {64, 64, 3, 3}, 1, {1, 1}, {1, 1, 1, 1}, {1, 1}, true, true, true},
      {DType::kFloat16, {1, 64, 8, 8}, {64, 64, 3, 3}, 1, {1, 1}, {1, 1, 1, 1}, {1, 1}, false, false, false},
      {DType::kFloat16, {1, 64, 200, 100}, {64, 64, 3, 3}, 1, {1, 1}, {1, 1, 1, 1}, {1, 1}, true, true, false},
      {DType::kFloat16, {3, 64, 96, 100}, {64, 64, 3, 3}, 1, {1, 1}, {1, 1, 1, 1}, {1, 1}, false, true, true},
  };
  for (const Case& c : convs) {
    auto call = fused_call(c, "NHWC");
    auto graph = make_op_graph(call);
    ASSERT_TRUE(infer_shapes(*graph).ok());
    const Node& node = *graph->nodes().back();
    auto tactics = cuda::find_cuda_layer(node)->tactics(node, layer_only());
    const bool offered = std::find(tactics.begin(), tactics.end(), "halo3x3") != tactics.end();
    EXPECT_EQ(offered, hopper) << describe(c, "NHWC");  // built for sm_90a, so offered on every Hopper
    EXPECT_TRUE(all_tactics_match_cpu(call, tol_for(c.dtype), layer_only(), 2)) << describe(c, "NHWC");
  }
  // 128 outputs, stride 2, 32 or 128 inputs, or bfloat16: not offered.
  for (const Case& c : {Case{DType::kFloat16, {1, 64, 16, 16}, {128, 64, 3, 3}, 1, {1, 1}, {1, 1, 1, 1}, {1, 1},
                             true, false, true},
                        Case{DType::kFloat16, {1, 64, 16, 16}, {64, 64, 3, 3}, 1, {2, 2}, {1, 1, 1, 1}, {1, 1}, true,
                             false, true},
                        Case{DType::kFloat16, {1, 32, 16, 16}, {64, 32, 3, 3}, 1, {1, 1}, {1, 1, 1, 1}, {1, 1}, true,
                             false, true},
                        Case{DType::kFloat16, {1, 128, 16, 16}, {64, 128, 3, 3}, 1, {1, 1}, {1, 1, 1, 1}, {1, 1},
                             true, false, true},
                        Case{DType::kBFloat16, {1, 64, 16, 16}, {64, 64, 3, 3}, 1, {1, 1}, {1, 1, 1, 1}, {1, 1},
                             true, false, true}}) {
    auto graph = make_op_graph(fused_call(c, "NHWC"));
    ASSERT_TRUE(infer_shapes(*graph).ok());
    const Node& node = *graph->nodes().back();
    auto tactics = cuda::find_cuda_layer(node)->tactics(node, layer_only());
    EXPECT_TRUE(std::find(tactics.begin(), tactics.end(), "halo3x3") == tactics.end()) << describe(c, "NHWC");
  }
}

// 1x1 NHWC convolutions with <= 8 outputs also offer the direct narrow kernel.
TEST(CudaFusedConv, NarrowOneByOneOffersTheDirectKernel) {
  KILN_REQUIRE_GPU();
  const std::vector<Case> heads = {
      {DType::kFloat16, {1, 64, 37, 35}, {2, 64, 1, 1}, 1, {1, 1}, {0, 0, 0, 0}, {1, 1}, true, false, false},
      {DType::kFloat32, {2, 12, 9, 10}, {5, 12, 1, 1}, 1, {1, 1}, {0, 0, 0, 0}, {1, 1}, true, true, true},
      {DType::kBFloat16, {1, 32, 6, 7}, {8, 32, 1, 1}, 1, {1, 1}, {0, 0, 0, 0}, {1, 1}, false, true, false},
      {DType::kFloat16, {2, 16, 5, 5}, {1, 16, 1, 1}, 1, {1, 1}, {0, 0, 0, 0}, {1, 1}, true, false, true},
  };
  for (const Case& c : heads) {
    auto call = fused_call(c, "NHWC");
    auto graph = make_op_graph(call);
    ASSERT_TRUE(infer_shapes(*graph).ok());
    const Node& node = *graph->nodes().back();
    auto tactics = cuda::find_cuda_layer(node)->tactics(node, layer_only());
    EXPECT_TRUE(std::find(tactics.begin(), tactics.end(), "direct_narrow") != tactics.end()) << describe(c, "NHWC");
    EXPECT_TRUE(all_tactics_match_cpu(call, tol_for(c.dtype), layer_only(), 2)) << describe(c, "NHWC");
  }
  // 3x3, or 16 outputs: not offered.
  for (const Case& c : {cases()[4], Case{DType::kFloat16, {1, 64, 8, 8}, {16, 64, 1, 1}, 1, {1, 1}, {0, 0, 0, 0}, {1, 1},
                                          true, false, false}}) {
    auto graph = make_op_graph(fused_call(c, "NHWC"));
    ASSERT_TRUE(infer_shapes(*graph).ok());
    const Node& node = *graph->nodes().back();
    auto tactics = cuda::find_cuda_layer(node)->tactics(node, layer_only());
    EXPECT_TRUE(std::find(tactics.begin(), tactics.end(), "direct_narrow") == tactics.end()) << describe(c, "NHWC");
  }
}

TEST(CudaFusedConv, ReluOffersFusedTactics) {
  KILN_REQUIRE_GPU();
  Case c = cases()[4];  // float16 3x3 + Z + ReLU
  auto call = fused_call(c, "NHWC");
  Model model;
  model.graph = make_op_graph(call);
  BuildOptions o = layer_only();
  o.backend = "cuda";
  auto plan = build_plan(std::move(model), o);
  ASSERT_TRUE(plan.ok()) << plan.status().message();
  const Node& node = *plan->graph->nodes()[0];
  auto tactics = cuda::find_cuda_layer(node)->tactics(node, o);
  size_t fused = 0;
  for (const auto& t : tactics) fused += t.rfind("fused_", 0) == 0;
  EXPECT_GE(fused, 1u);
  EXPECT_GT(tactics.size(), fused);  // unfused tactics too
  EXPECT_EQ(plan->layers[0].tactic.empty(), false);
}

// A plain ONNX Conv + Add + Relu graph through the whole CUDA pipeline (fusion, and for float16
// the NHWC layout with Transposes) against the same graph on the CPU.
GraphPtr residual_block(DType t) {
  auto g = std::make_shared<Graph>();
  Value* x = g->add_value("in0", {t, Shape::from_dims({2, 16, 14, 14})});
  g->inputs = {x};
  uint32_t seed = 5;
  int id = 0;
  auto conv = [&](Value* in, int64_t cin, int64_t cout, int64_t k, int64_t stride) {
    const std::string s = std::to_string(id++);
    Value* w = g->add_constant("w" + s, random_tensor(t, {cout, cin, k, k}, seed++, -0.3, 0.3));
    Value* b = g->add_constant("b" + s, random_tensor(t, {cout}, seed++, -0.3, 0.3));
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
  Value* h = op("Relu", {conv(x, 16, 24, 3, 1)});
  Value* a = op("Relu", {conv(h, 24, 24, 1, 1)});
  h = op("Relu", {op("Add", {conv(a, 24, 24, 3, 1), h})});
  h = op("Relu", {op("Add", {conv(h, 24, 32, 1, 2), conv(h, 24, 32, 3, 2)})});
  Value* pooled = op("MaxPool", {h});
  pooled->producer->attrs.set("kernel_shape", Dims{2, 2});
  g->outputs = {pooled, h};
  return g;
}

void check_block(DType t, double tol) {
  Tensor x = random_tensor(t, {2, 16, 14, 14}, 77);
  GraphPtr ref = residual_block(t);
  ASSERT_TRUE(infer_shapes(*ref).ok());
  auto exec = CpuExecutor::create(ref);
  ASSERT_TRUE(exec.ok()) << exec.status().message();
  auto cpu = (*exec)->run({{"in0", x}});
  ASSERT_TRUE(cpu.ok()) << cpu.status().message();
  Model model;
  model.graph = residual_block(t);
  BuildOptions o;
  o.backend = "cuda";
  o.tf32 = false;
  auto plan = build_plan(std::move(model), o);
  ASSERT_TRUE(plan.ok()) << plan.status().message();
  size_t fused = 0, transposes = 0;
  for (const auto& n : plan->graph->nodes()) {
    fused += n->op_type == "FusedConv";
    transposes += n->op_type == "Transpose";
    EXPECT_NE(n->op_type, "Add");
  }
  EXPECT_EQ(fused, 5u);
  // float16: into the region and out of it (the block output feeds MaxPool and is a graph output).
  EXPECT_EQ(transposes, t == DType::kFloat16 ? 2u : 0u);
  auto engine = Engine::from_plan(std::move(*plan));
  ASSERT_TRUE(engine.ok()) << engine.status().message();
  auto ctx = (*engine)->create_context();
  ASSERT_TRUE(ctx.ok()) << ctx.status().message();
  auto gpu = (*ctx)->run({{"in0", x}});
  ASSERT_TRUE(gpu.ok()) << gpu.status().message();
  ASSERT_EQ(gpu->size(), cpu->size());
  for (size_t i = 0; i < cpu->size(); ++i) {
    EXPECT_EQ((*gpu)[i].dims(), (*cpu)[i].dims());
    EXPECT_LT(rel_l2((*gpu)[i], (*cpu)[i]), tol) << "output " << i;
  }
}

TEST(CudaFusedConv, ResidualBlockFloat32) {
  KILN_REQUIRE_GPU();
  check_block(DType::kFloat32, 1e-4);
}

TEST(CudaFusedConv, ResidualBlockFloat16Nhwc) {
  KILN_REQUIRE_GPU();
  check_block(DType::kFloat16, 1e-2);
}

TEST(CudaFusedConv, SupportChecks) {
  KILN_REQUIRE_GPU();
  Case c = cases()[0];
  auto call = fused_call(c, "NCHW");
  call.attrs.set("activation", std::string("Sigmoid"));
  EXPECT_FALSE(cuda_builds(call, layer_only()));
  auto wrong_z = fused_call(c, "NCHW");
  wrong_z.inputs[3] = random_tensor(c.dtype, {2, 16, 1, 1}, 9);  // broadcasting Z: not fused by cuDNN
  EXPECT_FALSE(cuda_builds(wrong_z, layer_only()));
}

}  // namespace
}  // namespace kiln::test
