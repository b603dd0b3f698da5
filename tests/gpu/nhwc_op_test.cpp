// kiln.NHWC pools (cuDNN pooling on NHWC descriptors) and ConvTranspose (cuDNN backward-data in
// NHWC) against the CPU reference, and float16 graphs whose pools and ConvTransposes join the
// NHWC region.
#include "backends/cuda/layers/sm90a.hpp"
#include "ops/fused_conv.hpp"
#include "tactic_test_util.hpp"

namespace kiln::test {
namespace {

Tensor permute(const Tensor& x, const std::vector<int64_t>& perm) {
  OpCall call{.op_type = "Transpose", .inputs = {x}};
  call.attrs.set("perm", perm);
  auto r = run_op(call);
  EXPECT_TRUE(r.ok()) << r.status().message();
  return r.ok() ? (*r)[0] : Tensor();
}

OpCall nhwc_pool(DType t, const char* op, Dims nchw, std::initializer_list<std::pair<const char*, Dims>> ints,
                 int64_t count_include_pad = 0) {
  OpCall call{.op_type = "NHWC", .inputs = {permute(random_tensor(t, nchw, 3), nchw_to_nhwc_perm(4))}, .domain = "kiln"};
  call.attrs.set("op", std::string(op));
  for (const auto& [name, v] : ints) call.attrs.set(name, v);
  if (count_include_pad) call.attrs.set("count_include_pad", count_include_pad);
  return call;
}

TEST(CudaNhwcPool, MaxAverageGlobal) {
  KILN_REQUIRE_GPU();
  // Windowed pools: both tactics (cuDNN and our direct kernel); C = 16 and 64 take the direct
  // kernel's 16-byte path, 13 and 5 its one-element path.
  for (DType t : {DType::kFloat32, DType::kFloat16, DType::kBFloat16}) {
    const double tol = t == DType::kFloat32 ? 1e-6 : t == DType::kFloat16 ? 2e-3 : 1e-2;
    EXPECT_TRUE(all_tactics_match_cpu(nhwc_pool(t, "MaxPool", {2, 13, 11, 12}, {{"kernel_shape", {3, 3}}, {"strides", {2, 2}},
                                                                                 {"pads", {1, 1, 1, 1}}}),
                                      tol, {}, 2))
        << dtype_name(t);
    EXPECT_TRUE(all_tactics_match_cpu(nhwc_pool(t, "MaxPool", {1, 8, 16, 16}, {{"kernel_shape", {2, 2}}, {"strides", {2, 2}}}),
                                      tol, {}, 2))
        << dtype_name(t);
    EXPECT_TRUE(all_tactics_match_cpu(nhwc_pool(t, "MaxPool", {2, 64, 33, 30}, {{"kernel_shape", {2, 2}}, {"strides", {2, 2}}}),
                                      tol, {}, 2))
        << dtype_name(t);
    // 2x2 stride 2 (the direct kernel's unrolled path), odd sizes and a 1-element channel run.
    for (const char* op : {"MaxPool", "AveragePool"})
      for (Dims x : {Dims{2, 16, 10, 12}, Dims{1, 3, 7, 9}})
        EXPECT_TRUE(all_tactics_match_cpu(nhwc_pool(t, op, x, {{"kernel_shape", {2, 2}}, {"strides", {2, 2}}}), tol, {}, 2))
            << dtype_name(t) << " " << op;
    for (int64_t include : {0, 1}) {
      EXPECT_TRUE(all_tactics_match_cpu(nhwc_pool(t, "AveragePool", {2, 5, 9, 7},
                                                  {{"kernel_shape", {3, 2}}, {"strides", {1, 2}}, {"pads", {1, 0, 1, 0}}}, include),
                                        tol, {}, 2))
          << dtype_name(t) << " count_include_pad " << include;
      EXPECT_TRUE(all_tactics_match_cpu(nhwc_pool(t, "AveragePool", {1, 16, 10, 9},
                                                  {{"kernel_shape", {3, 3}}, {"strides", {2, 2}}, {"pads", {1, 1, 1, 1}}}, include),
                                        tol, {}, 2))
          << dtype_name(t) << " count_include_pad " << include;
    }
    EXPECT_TRUE(matches_cpu(nhwc_pool(t, "GlobalAveragePool", {2, 33, 7, 7}, {}), tol)) << dtype_name(t);
    EXPECT_TRUE(matches_cpu(nhwc_pool(t, "GlobalMaxPool", {2, 6, 5, 4}, {}), tol)) << dtype_name(t);
  }
}

// int8 MaxPool (an int8 chain's pool, made by qdq-fusion): our direct kernel only, exact; C 64
// (16-byte path, ResNet's 3x3 stride-2 pad-1 window) and 5 (one element at a time); 2x2 stride 2.
TEST(CudaNhwcPool, Int8MaxPool) {
  KILN_REQUIRE_GPU();
  auto call = [](Dims nchw, Dims k, Dims s, Dims pads) {
    Tensor x = permute(random_tensor(DType::kInt8, nchw, 7, -128, 127), nchw_to_nhwc_perm(4));
    OpCall c{.op_type = "NHWC", .inputs = {x}, .domain = "kiln"};
    c.attrs.set("op", std::string("MaxPool"));
    c.attrs.set("kernel_shape", k);
    c.attrs.set("strides", s);
    c.attrs.set("pads", pads);
    return c;
  };
  EXPECT_TRUE(all_tactics_match_cpu(call({2, 64, 23, 21}, {3, 3}, {2, 2}, {1, 1, 1, 1}), 0.0, {}, 1));
  EXPECT_TRUE(all_tactics_match_cpu(call({3, 5, 9, 8}, {3, 3}, {2, 2}, {1, 1, 1, 1}), 0.0, {}, 1));
  EXPECT_TRUE(all_tactics_match_cpu(call({2, 32, 10, 12}, {2, 2}, {2, 2}, {0, 0, 0, 0}), 0.0, {}, 1));
}

TEST(CudaNhwcPool, WindowsCuDnnCannotPoolAreUnsupported) {
  KILN_REQUIRE_GPU();
  EXPECT_FALSE(cuda_builds(nhwc_pool(DType::kFloat16, "MaxPool", {1, 4, 8, 8},
                                     {{"kernel_shape", {2, 2}}, {"pads", {0, 0, 1, 1}}})));
  EXPECT_FALSE(cuda_builds(nhwc_pool(DType::kFloat16, "MaxPool", {1, 4, 8, 8},
                                     {{"kernel_shape", {2, 2}}, {"dilations", {2, 2}}})));
}

TEST(CudaNhwcPool, Float16ConvPoolConvGraph) {
  KILN_REQUIRE_GPU();
  auto make = [] {
    auto g = std::make_shared<Graph>();
    const DType t = DType::kFloat16;
    Value* x = g->add_value("in0", {t, Shape::from_dims({2, 8, 20, 20})});
    g->inputs = {x};
    Value* w0 = g->add_constant("w0", random_tensor(t, {16, 8, 3, 3}, 1, -0.3, 0.3));
    Value* w1 = g->add_constant("w1", random_tensor(t, {16, 16, 3, 3}, 2, -0.3, 0.3));
    Value *c0 = g->add_value("c0"), *r0 = g->add_value("r0"), *p0 = g->add_value("p0"), *c1 = g->add_value("c1");
    Value* out = g->add_value("out");
    g->add_node("Conv", {x, w0}, {c0}, "conv0", "", 21)->attrs.set("pads", Dims{1, 1, 1, 1});
    g->add_node("Relu", {c0}, {r0}, "relu0", "", 21);
    Node* mp = g->add_node("MaxPool", {r0}, {p0}, "pool", "", 21);
    mp->attrs.set("kernel_shape", Dims{2, 2});
    mp->attrs.set("strides", Dims{2, 2});
    g->add_node("Conv", {p0, w1}, {c1}, "conv1", "", 21)->attrs.set("pads", Dims{1, 1, 1, 1});
    g->add_node("GlobalAveragePool", {c1}, {out}, "gap", "", 21);
    g->outputs = {out};
    return g;
  };
  Tensor x = random_tensor(DType::kFloat16, {2, 8, 20, 20}, 9);
  GraphPtr ref = make();
  ASSERT_TRUE(infer_shapes(*ref).ok());
  auto exec = CpuExecutor::create(ref);
  ASSERT_TRUE(exec.ok());
  auto cpu = (*exec)->run({{"in0", x}});
  ASSERT_TRUE(cpu.ok()) << cpu.status().message();
  Model model;
  model.graph = make();
  BuildOptions o;
  o.backend = "cuda";
  auto plan = build_plan(std::move(model), o);
  ASSERT_TRUE(plan.ok()) << plan.status().message();
  size_t nhwc = 0, transposes = 0;
  for (const auto& n : plan->graph->nodes()) {
    nhwc += n->op_type == "NHWC";
    transposes += n->op_type == "Transpose";
  }
  EXPECT_EQ(nhwc, 2u);        // MaxPool and GlobalAveragePool
  // The graph input's; the output's NHWC [2,1,1,16] -> NCHW [2,16,1,1] moves only unit dims, so
  // unit-transpose-to-reshape made it a Reshape.
  EXPECT_EQ(transposes, 1u);
  auto engine = Engine::from_plan(std::move(*plan));
  ASSERT_TRUE(engine.ok()) << engine.status().message();
  auto ctx = (*engine)->create_context();
  ASSERT_TRUE(ctx.ok());
  auto gpu = (*ctx)->run({{"in0", x}});
  ASSERT_TRUE(gpu.ok()) << gpu.status().message();
  EXPECT_EQ((*gpu)[0].dims(), (*cpu)[0].dims());
  EXPECT_LT(rel_l2((*gpu)[0], (*cpu)[0]), 1e-2);
}

TEST(CudaNhwcConvTranspose, AllTactics) {
  KILN_REQUIRE_GPU();
  struct Case {
    DType t;
    Dims x, w;  // NCHW, (C, M/g, kh, kw)
    int64_t group;
    Dims strides, pads;
    bool bias;
  };
  for (const Case& c : {Case{DType::kFloat16, {2, 16, 9, 9}, {16, 8, 2, 2}, 1, {2, 2}, {0, 0, 0, 0}, true},
                        Case{DType::kFloat16, {1, 12, 7, 6}, {12, 3, 3, 3}, 2, {2, 2}, {1, 1, 1, 1}, false},
                        Case{DType::kBFloat16, {1, 8, 5, 5}, {8, 5, 3, 3}, 1, {1, 1}, {1, 1, 1, 1}, true},
                        Case{DType::kFloat32, {2, 6, 5, 4}, {6, 2, 3, 2}, 2, {2, 2}, {1, 0, 1, 0}, true},
                        // kernel == stride, group 1, no padding: cuBLASLt GEMM tactics as well
                        Case{DType::kFloat32, {2, 32, 5, 7}, {32, 24, 2, 2}, 1, {2, 2}, {0, 0, 0, 0}, true},
                        Case{DType::kBFloat16, {1, 64, 8, 6}, {64, 32, 3, 3}, 1, {3, 3}, {0, 0, 0, 0}, true},
                        Case{DType::kFloat16, {3, 16, 4, 5}, {16, 16, 2, 2}, 1, {2, 2}, {0, 0, 0, 0}, false},
                        Case{DType::kFloat16, {2, 128, 16, 16}, {128, 64, 2, 2}, 1, {2, 2}, {0, 0, 0, 0}, true}}) {
    OpCall call{.op_type = "NHWC",
                .inputs = {permute(random_tensor(c.t, c.x, 1), nchw_to_nhwc_perm(4)),
                           permute(random_tensor(c.t, c.w, 2, -1.0, 1.0), nchw_to_nhwc_perm(4)),
                           c.bias ? random_tensor(c.t, {c.w[1] * c.group}, 3) : Tensor()},
                .constant_inputs = {false, true, true},
                .domain = "kiln"};
    call.attrs.set("op", std::string("ConvTranspose"));
    call.attrs.set("strides", c.strides);
    call.attrs.set("pads", c.pads);
    call.attrs.set("group", c.group);
    BuildOptions o;
    o.tf32 = false;
    const bool gemm_form = c.group == 1 && c.strides == Dims{c.w[2], c.w[3]} && c.pads == Dims{0, 0, 0, 0};
    {  // the GEMM form is offered exactly where it applies
      auto model = make_op_graph(call);
      ASSERT_TRUE(infer_shapes(*model).ok());
      const Node& node = *model->nodes().back();
      std::vector<std::string> tactics = cuda::find_cuda_layer(node)->tactics(node, o);
      size_t gemm = 0;
      for (const auto& t : tactics) gemm += t.rfind("gemm:", 0) == 0;
      EXPECT_EQ(gemm > 0, gemm_form) << dtype_name(c.t) << " x[" << fmt::format("{}", fmt::join(c.x, ",")) << "]";
    }
    const double tol = c.t == DType::kFloat32 ? 2e-5 : c.t == DType::kFloat16 ? 5e-3 : 2e-2;
    EXPECT_TRUE(all_tactics_match_cpu(call, tol, o)) << dtype_name(c.t) << " x[" << fmt::format("{}", fmt::join(c.x, ","))
                                                     << "]";
  }
}

// float16 ConvTransposes with kernel == stride and channels in multiples of 64 offer kiln's Hopper
// GEMM on an sm_90 GPU ("tma_wgmma", "tma_wgmma_n128"); both tile widths match the CPU when a
// tile's 128 pixels span several input rows (W = 8, 16) or part of one (W = 64, 128), at partial
// pixel tiles (the bottom rows clipped), partial column tiles (kh*kw*M not a multiple of the
// width), 64-column chunks that cross from one output pixel (a, b) to the next, 3x3 stride-3
// kernels, more channel slices than the stage ring holds, and more tiles than the persistent grid
// has CTAs.
TEST(CudaNhwcConvTranspose, HopperGemmTactic) {
  KILN_REQUIRE_GPU();
  int device = 0, major = 0, minor = 0;
  ASSERT_EQ(cudaGetDevice(&device), cudaSuccess);
  ASSERT_EQ(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device), cudaSuccess);
  ASSERT_EQ(cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device), cudaSuccess);
  const bool hopper = major == 9 && minor == 0;
  struct Case {
    Dims x, w;  // NCHW, (C, M, kh, kw)
    bool bias;
    bool fits;
  };
  for (const Case& c : {Case{{1, 64, 8, 16}, {64, 64, 2, 2}, true, true},
                        Case{{2, 128, 5, 64}, {128, 128, 2, 2}, false, true},
                        Case{{3, 64, 3, 8}, {64, 192, 2, 2}, true, true},
                        Case{{1, 64, 4, 4}, {64, 64, 3, 3}, true, true},
                        Case{{1, 512, 4, 32}, {512, 64, 2, 2}, true, true},
                        Case{{1, 256, 3, 128}, {256, 128, 2, 2}, true, true},
                        Case{{2, 64, 96, 64}, {64, 128, 2, 2}, true, true},
                        // not offered: 96 input channels, 32 outputs, width 48 (neither multiple nor divisor of 64)
                        Case{{1, 96, 4, 8}, {96, 64, 2, 2}, true, false},
                        Case{{1, 64, 4, 8}, {64, 32, 2, 2}, true, false},
                        Case{{1, 64, 2, 48}, {64, 64, 2, 2}, true, false}}) {
    OpCall call{.op_type = "NHWC",
                .inputs = {permute(random_tensor(DType::kFloat16, c.x, 1), nchw_to_nhwc_perm(4)),
                           permute(random_tensor(DType::kFloat16, c.w, 2, -1.0, 1.0), nchw_to_nhwc_perm(4)),
                           c.bias ? random_tensor(DType::kFloat16, {c.w[1]}, 3) : Tensor()},
                .constant_inputs = {false, true, true},
                .domain = "kiln"};
    call.attrs.set("op", std::string("ConvTranspose"));
    call.attrs.set("strides", Dims{c.w[2], c.w[3]});
    const std::string what = fmt::format("x[{}] w[{}]", fmt::join(c.x, ","), fmt::join(c.w, ","));
    auto model = make_op_graph(call);
    ASSERT_TRUE(infer_shapes(*model).ok());
    const Node& node = *model->nodes().back();
    const auto tactics = cuda::find_cuda_layer(node)->tactics(node, BuildOptions{});
    for (const char* tactic : {"tma_wgmma", "tma_wgmma_n128"}) {
      const bool offered = std::find(tactics.begin(), tactics.end(), tactic) != tactics.end();
      EXPECT_EQ(offered, hopper && c.fits) << what << " " << tactic;  // built for sm_90a: offered on every Hopper
    }
    if (c.fits) EXPECT_TRUE(all_tactics_match_cpu(call, 5e-3, {}, 2)) << what;
  }
}

// Two ConvTransposes on the Hopper GEMM in one plan, their shared-memory layouts different (one
// keeps two 64-channel slices of W resident, the other one): each layer's setup must leave the
// other's launch valid (the kernel's shared-memory attribute is per kernel, not per layer).
TEST(CudaNhwcConvTranspose, HopperGemmLayersShareTheKernel) {
  KILN_REQUIRE_GPU();
  if (!cuda::kernels::sm90a_kernels_available()) GTEST_SKIP() << "needs an sm_90 GPU and sm_90a code";
  auto make = [] {
    auto g = std::make_shared<Graph>();
    const DType t = DType::kFloat16;
    Value* x = g->add_value("in0", {t, Shape::from_dims({1, 128, 8, 8})});
    g->inputs = {x};
    Value* y = x;
    int64_t c = 128;
    for (int64_t m : {64, 128}) {
      const std::string id = std::to_string(m);
      Value* w = g->add_constant("w" + id, random_tensor(t, {c, m, 2, 2}, static_cast<uint32_t>(m), -0.3, 0.3));
      Value* b = g->add_constant("b" + id, random_tensor(t, {m}, static_cast<uint32_t>(m + 1), -0.3, 0.3));
      Value* out = g->add_value("up" + id);
      g->add_node("ConvTranspose", {y, w, b}, {out}, "up" + id, "", 21)->attrs.set("strides", Dims{2, 2});
      y = out;
      c = m;
    }
    g->outputs = {y};
    return g;
  };
  Tensor x = random_tensor(DType::kFloat16, {1, 128, 8, 8}, 9);
  GraphPtr ref = make();
  ASSERT_TRUE(infer_shapes(*ref).ok());
  auto exec = CpuExecutor::create(ref);
  ASSERT_TRUE(exec.ok());
  auto cpu = (*exec)->run({{"in0", x}});
  ASSERT_TRUE(cpu.ok()) << cpu.status().message();
  Model model;
  model.graph = make();
  BuildOptions o;
  o.backend = "cuda";
  auto plan = build_plan(std::move(model), o);
  ASSERT_TRUE(plan.ok()) << plan.status().message();
  size_t forced = 0;
  for (size_t i = 0; i < plan->graph->nodes().size(); ++i)
    if (plan->graph->nodes()[i]->op_type == "NHWC") {
      plan->layers[i].tactic = "tma_wgmma";
      ++forced;
    }
  ASSERT_EQ(forced, 2u);
  auto engine = Engine::from_plan(std::move(*plan));
  ASSERT_TRUE(engine.ok()) << engine.status().message();
  auto ctx = (*engine)->create_context();
  ASSERT_TRUE(ctx.ok());
  auto gpu = (*ctx)->run({{"in0", x}});
  ASSERT_TRUE(gpu.ok()) << gpu.status().message();
  EXPECT_EQ((*gpu)[0].dims(), (*cpu)[0].dims());
  EXPECT_LT(rel_l2((*gpu)[0], (*cpu)[0]), 5e-3);
}

// One UNet level (skip conv, MaxPool, conv, ConvTranspose, Concat, conv) in float16: all NHWC.
TEST(CudaNhwcConvTranspose, UNetLevelGraph) {
  KILN_REQUIRE_GPU();
  auto make = [] {
    auto g = std::make_shared<Graph>();
    const DType t = DType::kFloat16;
    Value* x = g->add_value("in0", {t, Shape::from_dims({1, 8, 32, 32})});
    g->inputs = {x};
    uint32_t seed = 60;
    int id = 0;
    auto node = [&](const char* type, std::vector<Value*> ins) {
      const std::string name = type + std::to_string(id++);
      Value* y = g->add_value(name);
      return std::make_pair(g->add_node(type, ins, {y}, name, "", 21), y);
    };
    auto conv_relu = [&](Value* in, int64_t cin, int64_t cout) {
      Value* w = g->add_constant("w" + std::to_string(id), random_tensor(t, {cout, cin, 3, 3}, seed++, -0.3, 0.3));
      Value* b = g->add_constant("b" + std::to_string(id), random_tensor(t, {cout}, seed++, -0.3, 0.3));
      auto [n, y] = node("Conv", {in, w, b});
      n->attrs.set("pads", Dims{1, 1, 1, 1});
      return node("Relu", {y}).second;
    };
    Value* skip = conv_relu(x, 8, 16);
    auto [pool, pooled] = node("MaxPool", {skip});
    pool->attrs.set("kernel_shape", Dims{2, 2});
    pool->attrs.set("strides", Dims{2, 2});
    Value* low = conv_relu(pooled, 16, 32);
    Value* wt = g->add_constant("wt", random_tensor(t, {32, 16, 2, 2}, seed++, -0.3, 0.3));
    Value* bt = g->add_constant("bt", random_tensor(t, {16}, seed++, -0.3, 0.3));
    auto [up, up_out] = node("ConvTranspose", {low, wt, bt});
    up->attrs.set("strides", Dims{2, 2});
    auto [cat, cat_out] = node("Concat", {up_out, skip});
    cat->attrs.set("axis", int64_t{1});
    g->outputs = {conv_relu(cat_out, 32, 4)};
    return g;
  };
  Tensor x = random_tensor(DType::kFloat16, {1, 8, 32, 32}, 9);
  GraphPtr ref = make();
  ASSERT_TRUE(infer_shapes(*ref).ok());
  auto exec = CpuExecutor::create(ref);
  ASSERT_TRUE(exec.ok());
  auto cpu = (*exec)->run({{"in0", x}});
  ASSERT_TRUE(cpu.ok()) << cpu.status().message();
  Model model;
  model.graph = make();
  BuildOptions o;
  o.backend = "cuda";
  auto plan = build_plan(std::move(model), o);
  ASSERT_TRUE(plan.ok()) << plan.status().message();
  size_t nhwc = 0, transposes = 0;
  for (const auto& n : plan->graph->nodes()) {
    nhwc += n->op_type == "NHWC";
    transposes += n->op_type == "Transpose";
  }
  EXPECT_EQ(nhwc, 2u);
  EXPECT_EQ(transposes, 2u);
  auto engine = Engine::from_plan(std::move(*plan));
  ASSERT_TRUE(engine.ok()) << engine.status().message();
  auto ctx = (*engine)->create_context();
  ASSERT_TRUE(ctx.ok());
  auto gpu = (*ctx)->run({{"in0", x}});
  ASSERT_TRUE(gpu.ok()) << gpu.status().message();
  EXPECT_EQ((*gpu)[0].dims(), (*cpu)[0].dims());
  EXPECT_LT(rel_l2((*gpu)[0], (*cpu)[0]), 1e-2);
}

}  // namespace
}  // namespace kiln::test
