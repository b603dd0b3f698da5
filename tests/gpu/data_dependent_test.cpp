// Data-dependent output shapes on the CUDA backend (docs/dynamic-shapes.md): NonZero,
// NonMaxSuppression and TopK (K constant or a graph input) against the CPU reference, and two small
// post-processing models (NonZero -> Transpose -> Gather -> Reshape by the synced count, and
// NMS -> Gather -> Gather) on one plan at inputs giving different counts, with and without CUDA
// graphs, through a saved and reloaded plan.
#include <cmath>
#include <random>
#include <set>

#include "gpu_test_util.hpp"
#include "kiln/kiln.hpp"

namespace kiln::test {
namespace {

::testing::AssertionResult same(const Tensor& gpu, const Tensor& cpu, double tol = 0) {
  if (gpu.dtype() != cpu.dtype() || gpu.dims() != cpu.dims())
    return ::testing::AssertionFailure() << "CUDA " << gpu.describe() << " vs CPU " << cpu.describe();
  if (tol > 0) {
    const double err = rel_l2(gpu, cpu);
    if (!(err <= tol)) return ::testing::AssertionFailure() << "rel L2 " << err;
    return ::testing::AssertionSuccess();
  }
  auto g = gpu.to_double_vector(), c = cpu.to_double_vector();
  for (size_t i = 0; i < g.size(); ++i)
    if (g[i] != c[i] && !(std::isnan(g[i]) && std::isnan(c[i])))
      return ::testing::AssertionFailure() << "element " << i << ": CUDA " << g[i] << " vs CPU " << c[i];
  return ::testing::AssertionSuccess();
}

// Random values, about `zero_fraction` of them exactly zero.
Tensor sparse_tensor(DType t, Dims dims, uint32_t seed, double zero_fraction = 0.5) {
  Tensor x = random_tensor(DType::kFloat32, dims, seed, 0.1, 2.0);
  std::mt19937 rng(seed + 100);
  std::uniform_real_distribution<double> u(0, 1);
  std::vector<double> v = x.to_double_vector();
  for (double& e : v) {
    if (u(rng) < zero_fraction) e = 0;
    else if (u(rng) < 0.5) e = -e;
  }
  Tensor f(DType::kFloat32, dims);
  for (size_t i = 0; i < v.size(); ++i) f.data<float>()[i] = static_cast<float>(v[i]);
  if (t == DType::kFloat32) return f;
  Tensor out(t, dims);
  for (size_t i = 0; i < v.size(); ++i) {
    switch (t) {
      case DType::kBool: out.data<bool>()[i] = v[i] != 0; break;
      case DType::kInt32: out.data<int32_t>()[i] = static_cast<int32_t>(v[i] * 10); break;
      case DType::kInt64: out.data<int64_t>()[i] = static_cast<int64_t>(v[i] * 10); break;
      case DType::kFloat16: out.data<Half>()[i] = Half(static_cast<float>(v[i])); break;
      default: break;
    }
  }
  return out;
}

Tensor scalar_i64(int64_t v) {
  Tensor t(DType::kInt64, {1});
  t.data<int64_t>()[0] = v;
  return t;
}
Tensor scalar_f32(float v) {
  Tensor t(DType::kFloat32, {1});
  t.data<float>()[0] = v;
  return t;
}

// Boxes [B, S, 4] that overlap: corners in [0, 8], sides 1..4 (center form when `center`).
Tensor random_boxes(int64_t b, int64_t s, uint32_t seed, bool center) {
  Tensor t(DType::kFloat32, {b, s, 4});
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> pos(0, 8), side(1, 4);
  float* p = t.data<float>();
  for (int64_t i = 0; i < b * s; ++i) {
    const float y = pos(rng), x = pos(rng), h = side(rng), w = side(rng);
    if (center) {
      p[i * 4 + 0] = x + w / 2; p[i * 4 + 1] = y + h / 2; p[i * 4 + 2] = w; p[i * 4 + 3] = h;
    } else if (i % 2) {  // corners in either order
      p[i * 4 + 0] = y + h; p[i * 4 + 1] = x + w; p[i * 4 + 2] = y; p[i * 4 + 3] = x;
    } else {
      p[i * 4 + 0] = y; p[i * 4 + 1] = x; p[i * 4 + 2] = y + h; p[i * 4 + 3] = x + w;
    }
  }
  return t;
}

::testing::AssertionResult op_matches(const OpCall& call, double tol = 0) {
  auto cpu = run_op(call);
  if (!cpu.ok()) return ::testing::AssertionFailure() << "CPU: " << cpu.status().message();
  auto gpu = run_op_cuda(call);
  if (!gpu.ok()) return ::testing::AssertionFailure() << "CUDA: " << gpu.status().message();
  if (gpu->size() != cpu->size()) return ::testing::AssertionFailure() << "output counts differ";
  for (size_t i = 0; i < cpu->size(); ++i) {
    auto r = same((*gpu)[i], (*cpu)[i], tol);
    if (!r) return r << " (output " << i << ")";
  }
  return ::testing::AssertionSuccess();
}

TEST(CudaDataDependent, NonZeroDtypesMatchCpu) {
  KILN_REQUIRE_GPU();
  const std::vector<Dims> shapes = {{37}, {3, 5, 7}, {2, 3, 4, 50}, {4100}};
  int checked = 0;
  for (DType t : {DType::kFloat32, DType::kFloat16, DType::kBool, DType::kInt32, DType::kInt64}) {
    for (size_t si = 0; si < shapes.size(); ++si) {
      OpCall call{"NonZero", {sparse_tensor(t, shapes[si], 7 + static_cast<uint32_t>(si))}};
      EXPECT_TRUE(op_matches(call)) << dtype_name(t) << " " << dims_to_string(shapes[si]);
      ++checked;
    }
  }
  EXPECT_EQ(checked, 20);
}

TEST(CudaDataDependent, NonZeroAllZeroAndAllNonZero) {
  KILN_REQUIRE_GPU();
  EXPECT_TRUE(op_matches(OpCall{"NonZero", {sparse_tensor(DType::kFloat32, {6, 9}, 3, 1.0)}}));
  EXPECT_TRUE(op_matches(OpCall{"NonZero", {sparse_tensor(DType::kFloat32, {6, 9}, 4, 0.0)}}));
}

TEST(CudaDataDependent, NmsMatchesCpu) {
  KILN_REQUIRE_GPU();
  for (int center = 0; center < 2; ++center) {
    for (bool constant : {true, false}) {
      Tensor boxes = random_boxes(2, 60, 21 + center, center != 0);
      Tensor scores = random_tensor(DType::kFloat32, {2, 3, 60}, 22, 0.0, 1.0);
      OpCall call{"NonMaxSuppression", {boxes, scores, scalar_i64(7), scalar_f32(0.3f), scalar_f32(0.2f)}};
      // Thresholds as initializers, or every input a graph input (read on the device at run time).
      call.constant_inputs = {false, false, constant, constant, constant};
      call.attrs.set("center_point_box", int64_t{center});
      EXPECT_TRUE(op_matches(call)) << "center_point_box " << center << (constant ? " constant" : " inputs");
    }
  }
}

TEST(CudaDataDependent, NmsWithoutThresholdsAndLargeMax) {
  KILN_REQUIRE_GPU();
  Tensor boxes = random_boxes(1, 200, 31, false);
  Tensor scores = random_tensor(DType::kFloat32, {1, 2, 200}, 32, 0.0, 1.0);
  OpCall call{"NonMaxSuppression", {boxes, scores, scalar_i64(1000), scalar_f32(0.5f)}};
  call.constant_inputs = {false, false, true, true};
  EXPECT_TRUE(op_matches(call));
}

TEST(CudaDataDependent, TopKConstantKMatchesCpu) {
  KILN_REQUIRE_GPU();
  for (DType t : {DType::kFloat32, DType::kFloat16, DType::kInt64}) {
    for (int64_t largest : {0, 1}) {
      Tensor x = t == DType::kInt64 ? sparse_tensor(t, {3, 40, 5}, 41, 0.3) : random_tensor(t, {3, 40, 5}, 41);
      OpCall call{"TopK", {x, scalar_i64(6)}};
      call.constant_inputs = {false, true};
      call.num_outputs = 2;
      call.attrs.set("axis", int64_t{1});
      call.attrs.set("largest", largest);
      EXPECT_TRUE(op_matches(call)) << dtype_name(t) << " largest " << largest;
    }
  }
}

// One plan, K a graph input: two values give two output shapes; K out of range is an error.
TEST(CudaDataDependent, TopKRuntimeKOnePlanTwoValues) {
  KILN_REQUIRE_GPU();
  Tensor x = random_tensor(DType::kFloat32, {4, 33}, 51);
  OpCall call{"TopK", {x, scalar_i64(3)}};
  call.num_outputs = 2;
  BuildOptions o;
  o.backend = "cuda";
  Model model;
  model.graph = make_op_graph(call);
  auto plan = build_plan(std::move(model), o);
  ASSERT_TRUE(plan.ok()) << plan.status().message();
  auto engine = Engine::from_plan(std::move(*plan));
  ASSERT_TRUE(engine.ok()) << engine.status().message();
  for (bool graphs : {false, true}) {
    ContextOptions co;
    co.cuda_graph = graphs;
    auto ctx = (*engine)->create_context(co);
    ASSERT_TRUE(ctx.ok()) << ctx.status().message();
    for (int64_t k : {3, 17, 3}) {
      OpCall c = call;
      c.inputs[1] = scalar_i64(k);
      auto cpu = run_op(c);
      ASSERT_TRUE(cpu.ok());
      auto gpu = (*ctx)->run({{"in0", x}, {"in1", scalar_i64(k)}});
      ASSERT_TRUE(gpu.ok()) << gpu.status().message();
      EXPECT_EQ((*gpu)[0].dims(), (Dims{4, k}));
      EXPECT_TRUE(same((*gpu)[0], (*cpu)[0])) << "K " << k;
      EXPECT_TRUE(same((*gpu)[1], (*cpu)[1])) << "K " << k;
    }
    auto bad = (*ctx)->run({{"in0", x}, {"in1", scalar_i64(34)}});
    ASSERT_FALSE(bad.ok());
    EXPECT_NE(bad.status().message().find("K = 34"), std::string::npos) << bad.status().message();
  }
}

// m[64] -> NonZero [1, n] -> Transpose [n, 1] -> Gather(data[64, 8]) [n, 1, 8]
//   -> Reshape to Concat(Shape(NonZero)[1], 8) = [n, 8] -> Relu.
Model nonzero_model() {
  Model m;
  m.graph = std::make_shared<Graph>();
  Graph& g = *m.graph;
  Value* mask = g.add_value("m", {DType::kFloat32, Shape({Dim(64)})});
  Value* data = g.add_value("data", {DType::kFloat32, Shape({Dim(64), Dim(8)})});
  g.inputs = {mask, data};
  Value* nz = g.add_value("nz");
  Value* t = g.add_value("t");
  Value* ga = g.add_value("ga");
  Value* s = g.add_value("s");
  Value* c = g.add_value("c");
  Value* shp = g.add_value("shp");
  Value* r = g.add_value("r");
  Value* y = g.add_value("y");
  g.add_node("NonZero", {mask}, {nz}, "nonzero");
  g.add_node("Transpose", {nz}, {t}, "transpose")->attrs.set("perm", std::vector<int64_t>{1, 0});
  g.add_node("Gather", {data, t}, {ga}, "gather");
  g.add_node("Shape", {nz}, {s}, "shape");
  Tensor one(DType::kInt64, {1});
  one.data<int64_t>()[0] = 1;
  g.add_node("Gather", {s, g.add_constant("one", one)}, {c}, "count");
  Tensor eight(DType::kInt64, {1});
  eight.data<int64_t>()[0] = 8;
  g.add_node("Concat", {c, g.add_constant("eight", eight)}, {shp}, "concat")->attrs.set("axis", int64_t{0});
  g.add_node("Reshape", {ga, shp}, {r}, "reshape");
  g.add_node("Relu", {r}, {y}, "relu");
  g.outputs = {y};
  return m;
}

// boxes[1, 80, 4], scores[1, 1, 80] -> NMS (max 25, IoU 0.4) [n, 3] -> Gather column 2 [n]
//   -> Gather(boxes[0]) [n, 4]
Model nms_model() {
  Model m;
  m.graph = std::make_shared<Graph>();
  Graph& g = *m.graph;
  Value* boxes = g.add_value("boxes", {DType::kFloat32, Shape({Dim(1), Dim(80), Dim(4)})});
  Value* scores = g.add_value("scores", {DType::kFloat32, Shape({Dim(1), Dim(1), Dim(80)})});
  g.inputs = {boxes, scores};
  Value* sel = g.add_value("sel");
  Value* col = g.add_value("col");
  Value* b2 = g.add_value("b2");
  Value* y = g.add_value("y");
  g.add_node("NonMaxSuppression",
             {boxes, scores, g.add_constant("max", scalar_i64(25)), g.add_constant("iou", scalar_f32(0.4f)),
              g.add_constant("thr", scalar_f32(0.05f))},
             {sel}, "nms");
  Tensor two(DType::kInt64, {});
  two.data<int64_t>()[0] = 2;
  g.add_node("Gather", {sel, g.add_constant("two", two)}, {col}, "column")->attrs.set("axis", int64_t{1});
  Tensor zero(DType::kInt64, {});
  zero.data<int64_t>()[0] = 0;
  Value* b0 = g.add_value("b0");
  g.add_node("Gather", {boxes, g.add_constant("zero", zero)}, {b0}, "batch0");
  g.add_node("Gather", {b0, col}, {b2}, "picked");
  g.add_node("Identity", {b2}, {y}, "out");
  g.outputs = {y};
  return m;
}

Expected<std::vector<Tensor>> run_cpu(Model model, const std::map<std::string, Tensor>& feeds) {
  KILN_ASSIGN_OR_RETURN(Plan plan, build_plan(std::move(model), BuildOptions{}));
  KILN_ASSIGN_OR_RETURN(auto engine, Engine::from_plan(std::move(plan)));
  KILN_ASSIGN_OR_RETURN(auto ctx, engine->create_context());
  return ctx->run(feeds);
}

void check_model_two_inputs(Model (*make)(), const std::vector<std::map<std::string, Tensor>>& feeds,
                            const std::string& name) {
  BuildOptions o;
  o.backend = "cuda";
  o.tf32 = false;
  auto plan = build_plan(make(), o);
  ASSERT_TRUE(plan.ok()) << plan.status().message();
  const std::string path = ::testing::TempDir() + "/kiln_datadep_" + name + ".kplan";
  ASSERT_TRUE(save_plan(*plan, path).ok());
  auto engine = Engine::load(path);
  ASSERT_TRUE(engine.ok()) << engine.status().message();
  std::set<Dims> shapes;
  for (bool graphs : {false, true}) {
    ContextOptions co;
    co.cuda_graph = graphs;
    auto ctx = (*engine)->create_context(co);
    ASSERT_TRUE(ctx.ok()) << ctx.status().message();
    for (int rep = 0; rep < 2; ++rep) {  // the second round replays cached stages (and graphs)
      for (const auto& f : feeds) {
        auto cpu = run_cpu(make(), f);
        ASSERT_TRUE(cpu.ok()) << cpu.status().message();
        auto gpu = (*ctx)->run(f);
        ASSERT_TRUE(gpu.ok()) << gpu.status().message();
        ASSERT_EQ(gpu->size(), 1u);
        EXPECT_TRUE(same((*gpu)[0], (*cpu)[0], 1e-6)) << name << (graphs ? " (graphs)" : "");
        shapes.insert((*gpu)[0].dims());
      }
    }
  }
  EXPECT_EQ(shapes.size(), feeds.size()) << name << ": the inputs should give different counts";
}

TEST(CudaDataDependent, NonZeroTransposeGatherReshapeModelTwoCounts) {
  KILN_REQUIRE_GPU();
  Tensor data = random_tensor(DType::kFloat32, {64, 8}, 61);
  check_model_two_inputs(nonzero_model,
                         {{{"m", sparse_tensor(DType::kFloat32, {64}, 62, 0.5)}, {"data", data}},
                          {{"m", sparse_tensor(DType::kFloat32, {64}, 63, 0.8)}, {"data", data}}},
                         "nonzero");
}

// Three boxes above the threshold: at most 3 selected (the random scores select more).
Tensor few_scores() {
  Tensor t = Tensor::zeros(DType::kFloat32, {1, 1, 80});
  t.data<float>()[5] = 0.9f;
  t.data<float>()[40] = 0.8f;
  t.data<float>()[77] = 0.7f;
  return t;
}

TEST(CudaDataDependent, NmsGatherModelTwoCounts) {
  KILN_REQUIRE_GPU();
  check_model_two_inputs(nms_model,
                         {{{"boxes", random_boxes(1, 80, 71, false)},
                           {"scores", random_tensor(DType::kFloat32, {1, 1, 80}, 72, 0.1, 1.0)}},
                          {{"boxes", random_boxes(1, 80, 73, false)}, {"scores", few_scores()}}},
                         "nms");
}

// The public API on a staged plan: outputs report the actual shape of each run.
TEST(CudaDataDependent, ApiOutputsReportActualShape) {
  KILN_REQUIRE_GPU();
  BuildOptions o;
  o.backend = "cuda";
  auto plan = build_plan(nonzero_model(), o);
  ASSERT_TRUE(plan.ok()) << plan.status().message();
  const std::string path = ::testing::TempDir() + "/kiln_datadep_api.kplan";
  ASSERT_TRUE(save_plan(*plan, path).ok());
  for (bool graph : {false, true}) {
    auto loaded = load(path, InferOptions{.cuda_graph = graph});
    ASSERT_TRUE(loaded.ok()) << loaded.status().message();
    Infer& infer = **loaded;
    Tensor data = random_tensor(DType::kFloat32, {64, 8}, 91);
    ASSERT_TRUE(infer.input("data")->copy_from(data.raw_data(), data.nbytes()).ok());
    for (double zeros : {0.25, 0.75}) {
      Tensor m = sparse_tensor(DType::kFloat32, {64}, 92, zeros);
      int64_t count = 0;
      for (int64_t i = 0; i < 64; ++i) count += m.data<float>()[i] != 0;
      ASSERT_TRUE(infer.input("m")->copy_from(m.raw_data(), m.nbytes()).ok());
      ASSERT_TRUE(infer.forward().ok());
      EXPECT_EQ(infer.output(0)->shape(), (std::vector<int64_t>{count, 8})) << "zeros " << zeros;
    }
  }
}

// Layer timing across the stages: one time per plan layer, each stage's layers at their plan
// index; the shape arithmetic folded with the synced count runs no layer (0 ms).
TEST(CudaDataDependent, LayerTimingCoversEveryStage) {
  KILN_REQUIRE_GPU();
  BuildOptions o;
  o.backend = "cuda";
  auto plan = build_plan(nonzero_model(), o);
  ASSERT_TRUE(plan.ok()) << plan.status().message();
  auto engine = Engine::from_plan(std::move(*plan));
  ASSERT_TRUE(engine.ok()) << engine.status().message();
  auto ctx = (*engine)->create_context(ContextOptions{.layer_timing = true});
  ASSERT_TRUE(ctx.ok()) << ctx.status().message();
  auto out = (*ctx)->run({{"m", sparse_tensor(DType::kFloat32, {64}, 93)},
                          {"data", random_tensor(DType::kFloat32, {64, 8}, 94)}});
  ASSERT_TRUE(out.ok()) << out.status().message();
  auto ms = (*ctx)->layer_times_ms();
  ASSERT_TRUE(ms.ok()) << ms.status().message();
  const Graph& g = *(*engine)->plan().graph;
  ASSERT_EQ(ms->size(), g.nodes().size());
  for (size_t i = 0; i < g.nodes().size(); ++i) {
    const std::string& name = g.nodes()[i]->name;
    if (name == "nonzero" || name == "gather") { EXPECT_GT((*ms)[i], 0.0) << name; }  // stage 0 and stage 1
    if (name == "shape" || name == "concat") { EXPECT_EQ((*ms)[i], 0.0) << name; }    // folded in stage 1
  }
}

// Ops whose data-dependent shape the CUDA backend does not resolve: a build error naming them.
TEST(CudaDataDependent, UnresolvableShapeIsABuildError) {
  KILN_REQUIRE_GPU();
  OpCall call{"Unique", {sparse_tensor(DType::kFloat32, {20}, 81)}};
  BuildOptions o;
  o.backend = "cuda";
  Model model;
  model.graph = make_op_graph(call);
  auto plan = build_plan(std::move(model), o);
  ASSERT_FALSE(plan.ok());
  EXPECT_NE(plan.status().message().find("Unique"), std::string::npos) << plan.status().message();
}

}  // namespace
}  // namespace kiln::test
