// Transformer paths of the CUDA backend against the CPU reference: wide-unit Transposes, Gathers of
// one constant index (copied or aliased by the memory planner), the register Softmax (in
// softmax_test.cpp) and kiln.FusedMatMul, alone and as made by the fusion pass in the builder.
#include "gpu_test_util.hpp"
#include "xformer_graphs.hpp"

namespace kiln::test {
namespace {

// Builds `g` for CUDA (fusion passes included) and runs it; compares with the CPU executor.
::testing::AssertionResult graph_matches_cpu(const std::function<GraphPtr()>& make,
                                            const std::map<std::string, Tensor>& feeds, double tol,
                                            BuildOptions options = {}) {
  GraphPtr cpu_graph = make();
  if (Status st = infer_shapes(*cpu_graph); !st.ok()) return ::testing::AssertionFailure() << st.message();
  auto exec = CpuExecutor::create(cpu_graph);
  if (!exec.ok()) return ::testing::AssertionFailure() << "CPU: " << exec.status().message();
  auto cpu = (*exec)->run(feeds);
  if (!cpu.ok()) return ::testing::AssertionFailure() << "CPU: " << cpu.status().message();
  options.backend = "cuda";
  Model model;
  model.graph = make();
  auto plan = build_plan(std::move(model), options);
  if (!plan.ok()) return ::testing::AssertionFailure() << "build: " << plan.status().message();
  auto engine = Engine::from_plan(std::move(*plan));
  if (!engine.ok()) return ::testing::AssertionFailure() << "engine: " << engine.status().message();
  for (bool graph : {false, true}) {
    auto ctx = (*engine)->create_context(ContextOptions{.cuda_graph = graph});
    if (!ctx.ok()) return ::testing::AssertionFailure() << "context: " << ctx.status().message();
    auto gpu = (*ctx)->run(feeds);
    if (!gpu.ok()) return ::testing::AssertionFailure() << "CUDA: " << gpu.status().message();
    for (size_t i = 0; i < cpu->size(); ++i) {
      double err = rel_l2((*gpu)[i], (*cpu)[i]);
      if (!(err <= tol)) return ::testing::AssertionFailure() << "output " << i << ": rel L2 " << err << " > " << tol;
    }
  }
  return ::testing::AssertionSuccess();
}

OpCall transpose_call(DType t, Dims x, Dims perm) {
  OpCall call{.op_type = "Transpose", .inputs = {random_tensor(t, std::move(x), 3, -100, 100)}};
  call.attrs.set("perm", perm);
  return call;
}

TEST(CudaTranspose, InnermostKeptMovesWideUnits) {
  KILN_REQUIRE_GPU();
  // Attention head split/merge: (L, N*H, D) <-> (N*H, L, D); 16-byte units.
  EXPECT_TRUE(matches_cpu(transpose_call(DType::kFloat16, {7, 2, 3, 8}, {1, 2, 0, 3}), 0.0));
  EXPECT_TRUE(matches_cpu(transpose_call(DType::kFloat16, {2, 3, 7, 64}, {0, 2, 1, 3}), 0.0));
  EXPECT_TRUE(matches_cpu(transpose_call(DType::kFloat32, {4, 3, 6}, {1, 0, 2}), 0.0));    // 24-byte runs: 8-byte units
  EXPECT_TRUE(matches_cpu(transpose_call(DType::kInt8, {3, 4, 12}, {1, 0, 2}), 0.0));      // 4-byte units
  EXPECT_TRUE(matches_cpu(transpose_call(DType::kFloat16, {3, 5, 7}, {1, 0, 2}), 0.0));    // 14 bytes: element size
  EXPECT_TRUE(matches_cpu(transpose_call(DType::kBFloat16, {1, 5, 2, 3, 16}, {3, 1, 2, 0, 4}), 0.0));
  EXPECT_TRUE(matches_cpu(transpose_call(DType::kInt64, {5, 3, 2, 2}, {2, 0, 1, 3}), 0.0));
}

OpCall gather_call(DType t, Dims x, int64_t index, int64_t axis) {
  OpCall call{.op_type = "Gather", .inputs = {random_tensor(t, std::move(x), 4), Tensor::scalar<int64_t>(index)},
              .constant_inputs = {false, true}};
  call.attrs.set("axis", axis);
  return call;
}

TEST(CudaGather, ConstantIndexCopiesOrAliasesABlock) {
  KILN_REQUIRE_GPU();
  EXPECT_TRUE(matches_cpu(gather_call(DType::kFloat32, {3, 64}, 1, 0), 0.0));      // aligned block: aliased
  EXPECT_TRUE(matches_cpu(gather_call(DType::kFloat32, {3, 4, 5}, -2, 0), 0.0));   // unaligned block: copied
  EXPECT_TRUE(matches_cpu(gather_call(DType::kFloat16, {2, 3, 8}, 2, 1), 0.0));    // rows of blocks
  EXPECT_TRUE(matches_cpu(gather_call(DType::kInt64, {4, 3, 5}, -1, -1), 0.0));    // last axis
  OpCall one{.op_type = "Gather",
             .inputs = {random_tensor(DType::kBFloat16, {3, 2, 16}, 4), Tensor::from_vector<int64_t>({1}, {2})},
             .constant_inputs = {false, true}};  // a 1-element index keeps the axis
  EXPECT_TRUE(matches_cpu(one, 0.0));
}

// torchvision's q/k/v split: x -> Relu -> qkv [3, 2, 64]; q, k, v = Gather 0/1/2; y = (q + k) * v.
GraphPtr qkv_graph() {
  auto g = std::make_shared<Graph>();
  Value* x = g->add_value("x", {DType::kFloat32, Shape::from_dims({3, 2, 64})});
  g->inputs = {x};
  Value* qkv = g->add_value("qkv");
  g->add_node("Relu", {x}, {qkv}, "relu");
  Value* part[3];
  for (int i = 0; i < 3; ++i) {
    part[i] = g->add_value("p" + std::to_string(i));
    g->add_node("Gather", {qkv, g->add_constant("i" + std::to_string(i), Tensor::scalar<int64_t>(i))}, {part[i]},
                "gather" + std::to_string(i));
  }
  Value* s = g->add_value("s");
  Value* y = g->add_value("y");
  g->add_node("Add", {part[0], part[1]}, {s}, "add");
  g->add_node("Mul", {s, part[2]}, {y}, "mul");
  g->outputs = {y, qkv};
  return g;
}

TEST(CudaGather, QkvSplitInAGraph) {
  KILN_REQUIRE_GPU();
  const std::map<std::string, Tensor> feeds{{"x", random_tensor(DType::kFloat32, {3, 2, 64}, 8)}};
  EXPECT_TRUE(graph_matches_cpu(qkv_graph, feeds, 0.0));
  BuildOptions fp16;
  fp16.fp16 = true;
  EXPECT_TRUE(graph_matches_cpu(qkv_graph, feeds, 2e-3, fp16));
}

OpCall fused_call(DType t, Dims a, int64_t n, const std::string& act) {
  const int64_t k = a.back();
  OpCall call{.op_type = "FusedMatMul",
              .inputs = {random_tensor(t, a, 1), random_tensor(t, {k, n}, 2), random_tensor(t, {n}, 3)},
              .constant_inputs = {false, true, true},
              .domain = "kiln"};
  call.attrs.set("activation", act);
  return call;
}

TEST(CudaFusedMatMul, BiasReluAndGeluEpilogues) {
  KILN_REQUIRE_GPU();
  BuildOptions exact;
  exact.tf32 = false;
  for (const std::string act : {"", "Relu", "GeluTanh"}) {
    SCOPED_TRACE("activation '" + act + "'");
    EXPECT_TRUE(matches_cpu(fused_call(DType::kFloat32, {2, 5, 24}, 40, act), 1e-5, exact));
    EXPECT_TRUE(matches_cpu(fused_call(DType::kFloat16, {3, 17, 64}, 48, act), 2e-3));
    EXPECT_TRUE(matches_cpu(fused_call(DType::kBFloat16, {33, 16}, 24, act), 2e-2));
    // With a residual (C, beta = 1).
    OpCall res32 = fused_call(DType::kFloat32, {2, 5, 24}, 40, act);
    res32.inputs.push_back(random_tensor(DType::kFloat32, {2, 5, 40}, 6));
    res32.constant_inputs.push_back(false);
    EXPECT_TRUE(matches_cpu(res32, 1e-5, exact));
    OpCall res16 = fused_call(DType::kFloat16, {3, 17, 64}, 48, act);
    res16.inputs.push_back(random_tensor(DType::kFloat16, {3, 17, 48}, 6));
    res16.constant_inputs.push_back(false);
    EXPECT_TRUE(matches_cpu(res16, 2e-3));
  }
}

// x [2, 7, 32] -> MatMul(W [32, 48]) -> Add(bias [48]) -> Relu -> MatMul(W2 [48, 32]) -> Add(b2)
// -> Add(x) -> y: the pass makes two kiln.FusedMatMul layers (the second with x as residual).
GraphPtr mlp_graph() {
  auto g = std::make_shared<Graph>();
  Value* x = g->add_value("x", {DType::kFloat32, Shape::from_dims({2, 7, 32})});
  g->inputs = {x};
  Value *h = g->add_value("h"), *hb = g->add_value("hb"), *r = g->add_value("r"), *o = g->add_value("o"),
        *ob = g->add_value("ob"), *y = g->add_value("y");
  g->add_node("MatMul", {x, g->add_constant("w1", random_tensor(DType::kFloat32, {32, 48}, 11))}, {h}, "mm1");
  g->add_node("Add", {g->add_constant("b1", random_tensor(DType::kFloat32, {48}, 12)), h}, {hb}, "add1");
  g->add_node("Relu", {hb}, {r}, "relu");
  g->add_node("MatMul", {r, g->add_constant("w2", random_tensor(DType::kFloat32, {48, 32}, 13))}, {o}, "mm2");
  g->add_node("Add", {o, g->add_constant("b2", random_tensor(DType::kFloat32, {1, 32}, 14))}, {ob}, "add2");
  g->add_node("Add", {x, ob}, {y}, "residual");
  g->outputs = {y};
  return g;
}

TEST(CudaFusedMatMul, MadeByTheBuilderPass) {
  KILN_REQUIRE_GPU();
  const std::map<std::string, Tensor> feeds{{"x", random_tensor(DType::kFloat32, {2, 7, 32}, 15)}};
  BuildOptions exact;
  exact.tf32 = false;
  EXPECT_TRUE(graph_matches_cpu(mlp_graph, feeds, 1e-5, exact));
  BuildOptions fp16;
  fp16.fp16 = true;
  EXPECT_TRUE(graph_matches_cpu(mlp_graph, feeds, 5e-3, fp16));
  // The plan holds the fused layers.
  Model model;
  model.graph = mlp_graph();
  exact.backend = "cuda";
  auto plan = build_plan(std::move(model), exact);
  ASSERT_TRUE(plan.ok()) << plan.status().message();
  int fused = 0;
  for (const auto& n : plan->graph->nodes()) fused += n->op_type == "FusedMatMul";
  EXPECT_EQ(fused, 2);
}

double softmax_tol(DType t) { return t == DType::kFloat32 ? 1e-5 : t == DType::kFloat16 ? 5e-3 : 2e-2; }

TEST(CudaMaskedSoftmax, ScaleAndMaskShapesDtypes) {
  KILN_REQUIRE_GPU();
  struct Case {
    Dims x, mask;  // empty mask: none
    bool constant_mask;
  };
  const Case cases[] = {
      {{2, 3, 7, 128}, {2, 1, 1, 128}, false},  // BERT: 16-byte vectors
      {{2, 3, 5, 197}, {2, 1, 1, 197}, true},   // ViT length: scalar accesses
      {{2, 3, 4, 64}, {4, 64}, false},          // a mask per query row
      {{4, 1000}, {}, false},                   // no mask, long rows
      {{3, 5, 24}, {24}, true},
  };
  for (DType t : {DType::kFloat32, DType::kFloat16, DType::kBFloat16})
    for (const Case& c : cases) {
      SCOPED_TRACE(std::string(dtype_name(t)) + " " + dims_to_string(c.x) + " mask " + dims_to_string(c.mask));
      OpCall call{.op_type = "MaskedSoftmax", .inputs = {random_tensor(t, c.x, 1, -20, 20)}, .domain = "kiln"};
      if (!c.mask.empty()) {
        call.inputs.push_back(random_tensor(t, c.mask, 2, -5, 5));
        call.constant_inputs = {false, c.constant_mask};
      }
      call.attrs.set("scale", 0.125f);
      EXPECT_TRUE(matches_cpu(call, softmax_tol(t)));
    }
}

// BERT's scores path: Div(scores, 8) -> Add(mask [2, 1, 1, 128]) -> Softmax, fused by the builder.
GraphPtr bert_scores_graph() {
  auto g = std::make_shared<Graph>();
  Value* x = g->add_value("x", {DType::kFloat32, Shape::from_dims({2, 4, 128, 128})});
  Value* m = g->add_value("m", {DType::kFloat32, Shape::from_dims({2, 1, 1, 128})});
  g->inputs = {x, m};
  Value *d = g->add_value("d"), *a = g->add_value("a"), *y = g->add_value("y");
  g->add_node("Div", {x, g->add_constant("eight", Tensor::scalar<float>(8.f))}, {d}, "div");
  g->add_node("Add", {d, m}, {a}, "add");
  g->add_node("Softmax", {a}, {y}, "softmax");
  g->outputs = {y};
  return g;
}

TEST(CudaMaskedSoftmax, MadeByTheBuilderPass) {
  KILN_REQUIRE_GPU();
  Tensor mask = random_tensor(DType::kFloat32, {2, 1, 1, 128}, 2, -3, 3);
  for (int64_t k = 100; k < 128; ++k) mask.data<float>()[k] = -10000.f;  // padding of sequence 0
  const std::map<std::string, Tensor> feeds{{"x", random_tensor(DType::kFloat32, {2, 4, 128, 128}, 1, -40, 40)},
                                            {"m", mask}};
  EXPECT_TRUE(graph_matches_cpu(bert_scores_graph, feeds, 1e-5));
  BuildOptions fp16;
  fp16.fp16 = true;
  EXPECT_TRUE(graph_matches_cpu(bert_scores_graph, feeds, 5e-3, fp16));
  Model model;
  model.graph = bert_scores_graph();
  BuildOptions o;
  o.backend = "cuda";
  auto plan = build_plan(std::move(model), o);
  ASSERT_TRUE(plan.ok()) << plan.status().message();
  ASSERT_EQ(plan->graph->nodes().size(), 1u);
  EXPECT_EQ(plan->graph->nodes()[0]->op_type, "MaskedSoftmax");
}

// The op types of a CUDA plan's graph built from `g` with `options`.
std::vector<std::string> plan_ops(GraphPtr g, BuildOptions options) {
  Model model;
  model.graph = std::move(g);
  options.backend = "cuda";
  auto plan = build_plan(std::move(model), options);
  EXPECT_TRUE(plan.ok()) << plan.status().message();
  if (!plan.ok()) return {};
  return passtest::ops(*plan->graph);
}

int count_of(const std::vector<std::string>& ops, const std::string& op) {
  return static_cast<int>(std::count(ops.begin(), ops.end(), op));
}

// patchify-conv: the 16x16 stride-16 patch embedding as space-to-depth + one GEMM.
TEST(CudaPatchify, PatchEmbeddingAsAGemm) {
  KILN_REQUIRE_GPU();
  for (bool tokens : {true, false}) {
    SCOPED_TRACE(tokens ? "ViT tokens" : "conv alone (NCHW output)");
    auto make = [&] { return xformer_graphs::patch_embedding(true, tokens, DType::kFloat32, 4, 64); };
    const auto feeds = make().feeds;
    BuildOptions exact;
    exact.tf32 = false;
    EXPECT_TRUE(graph_matches_cpu([&] { return make().g; }, feeds, 1e-5, exact));
    BuildOptions fp16;
    fp16.fp16 = true;
    EXPECT_TRUE(graph_matches_cpu([&] { return make().g; }, feeds, 5e-3, fp16));
    auto ops = plan_ops(make().g, fp16);
    EXPECT_EQ(count_of(ops, "FusedConv") + count_of(ops, "Conv"), 0);
    EXPECT_EQ(count_of(ops, "FusedMatMul"), 1);
  }
}

// mha-transpose: batch-first nn.MultiheadAttention with no Transpose left in the float16 plan.
TEST(CudaMhaTranspose, BatchFirstAttentionReadsAndWritesThroughStrides) {
  KILN_REQUIRE_GPU();
  auto make = [] { return xformer_graphs::batch_first_mha(DType::kFloat32); };
  const auto feeds = make().feeds;
  BuildOptions fp16;
  fp16.fp16 = true;
  EXPECT_TRUE(graph_matches_cpu([&] { return make().g; }, feeds, 5e-3, fp16));
  auto ops = plan_ops(make().g, fp16);
  EXPECT_EQ(count_of(ops, "Attention"), 1);
  EXPECT_EQ(count_of(ops, "Transpose"), 0);
  EXPECT_EQ(count_of(ops, "FusedMatMul"), 2);
  BuildOptions exact;  // float32: no kiln.Attention, the Gemm still becomes a FusedMatMul
  exact.tf32 = false;
  EXPECT_TRUE(graph_matches_cpu([&] { return make().g; }, feeds, 1e-5, exact));
}

// qkv-merge: BERT's three projections as one GEMM the attention reads as slices.
TEST(CudaQkvMerge, OneGemmForQueryKeyValue) {
  KILN_REQUIRE_GPU();
  auto make = [] { return xformer_graphs::bert_attention(DType::kFloat32, false); };
  const auto feeds = make().feeds;
  for (bool bf16 : {false, true}) {
    BuildOptions o;
    (bf16 ? o.bf16 : o.fp16) = true;
    EXPECT_TRUE(graph_matches_cpu([&] { return make().g; }, feeds, bf16 ? 3e-2 : 5e-3, o)) << (bf16 ? "bf16" : "fp16");
    auto ops = plan_ops(make().g, o);
    EXPECT_EQ(count_of(ops, "Attention"), 1);
    EXPECT_EQ(count_of(ops, "FusedMatMul"), 1);
  }
}

}  // namespace
}  // namespace kiln::test
