// Optimization profiles: parsing/validation errors, the plan round trip, the runtime range check
// (CPU plans), the builder's profile path for static-shape backends (through a test backend that
// records what it was asked), and the two dynamic models against PyTorch at 3 sizes x 2 batches.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "builder/backend.hpp"
#include "builder/builder.hpp"
#include "builder/memory_planner.hpp"
#include "builder/specialize.hpp"
#include "io/npy.hpp"
#include "onnx/importer.hpp"
#include "op_test_util.hpp"
#include "runtime/engine.hpp"

namespace kiln {
namespace {

bool has(const Status& st, const std::string& text) { return st.message().find(text) != std::string::npos; }

// y = Relu(x) + 1 on x float32[n, 2].
Model relu_model() {
  Model m;
  m.graph = std::make_shared<Graph>();
  Graph& g = *m.graph;
  Value* x = g.add_value("x", {DType::kFloat32, Shape({Dim::symbolic("n"), Dim(2)})});
  Value* one = g.add_constant("one", Tensor::from_vector<float>({1}, {1.f}));
  Value* r = g.add_value("r");
  Value* y = g.add_value("y");
  g.inputs = {x};
  g.add_node("Relu", {x}, {r}, "relu");
  g.add_node("Add", {r, one}, {y}, "add");
  g.outputs = {y};
  return m;
}

OptimizationProfile profile(Dims min, Dims opt, Dims max, const std::string& name = "x") {
  OptimizationProfile p;
  p.inputs[name] = {std::move(min), std::move(opt), std::move(max)};
  return p;
}

TEST(Profiles, MakeProfilesNeedsAllThreeEnds) {
  using L = std::vector<std::map<std::string, Dims>>;
  auto ok = make_profiles(L{{{"x", {1, 2}}}}, L{{{"x", {2, 2}}}}, L{{{"x", {4, 2}}}});
  ASSERT_TRUE(ok.ok()) << ok.status().message();
  ASSERT_EQ(ok->size(), 1u);
  EXPECT_EQ(ok->at(0).inputs.at("x").opt, (Dims{2, 2}));
  auto counts = make_profiles(L{{{"x", {1, 2}}}}, L{}, L{{{"x", {4, 2}}}});
  ASSERT_FALSE(counts.ok());
  EXPECT_TRUE(has(counts.status(), "--min-shapes, --opt-shapes and --max-shapes")) << counts.status().message();
  auto missing = make_profiles(L{{{"x", {1, 2}}}}, L{{{"x", {2, 2}}}}, L{{{"y", {4, 2}}}});
  ASSERT_FALSE(missing.ok());
  EXPECT_TRUE(has(missing.status(), "input 'x' has --min-shapes but no --max-shapes")) << missing.status().message();
}

TEST(Profiles, ValidateNamesInputAndRange) {
  Model m = relu_model();
  EXPECT_TRUE(validate_profiles(*m.graph, {profile({1, 2}, {2, 2}, {8, 2})}).ok());
  Status st = validate_profiles(*m.graph, {profile({1, 2}, {2, 2}, {8, 2}, "z")});
  EXPECT_TRUE(has(st, "names input 'z'") && has(st, "'x'")) << st.message();
  st = validate_profiles(*m.graph, {profile({4, 2}, {2, 2}, {8, 2})});
  EXPECT_TRUE(has(st, "min <= opt <= max")) << st.message();
  st = validate_profiles(*m.graph, {profile({1, 2, 1}, {2, 2, 1}, {8, 2, 1})});
  EXPECT_TRUE(has(st, "rank 3")) << st.message();
  st = validate_profiles(*m.graph, {profile({1, 2}, {2, 3}, {8, 4})});
  EXPECT_TRUE(has(st, "fixed to 2")) << st.message();
  st = validate_profiles(*m.graph, {profile({1, 2}, {2}, {8, 2})});
  EXPECT_TRUE(has(st, "differ in rank")) << st.message();
}

TEST(Profiles, CheckShapeNamesBindingDimsAndRange) {
  std::vector<OptimizationProfile> ps = {profile({1, 2}, {2, 2}, {4, 2})};
  EXPECT_TRUE(check_profile_shape(ps, 0, "x", {3, 2}).ok());
  EXPECT_TRUE(check_profile_shape(ps, 0, "other", {100}).ok());  // not in the profile: static
  Status st = check_profile_shape(ps, 0, "x", {5, 2});
  ASSERT_FALSE(st.ok());
  EXPECT_TRUE(has(st, "input 'x'") && has(st, "5x2") && has(st, "1x2 .. 4x2")) << st.message();
  st = check_profile_shape(ps, 0, "x", {2});
  EXPECT_TRUE(has(st, "outside")) << st.message();
  EXPECT_FALSE(check_profile_shape(ps, 1, "x", {2, 2}).ok());
}

TEST(Profiles, PlanRoundTripAndCpuRangeCheck) {
  BuildOptions o;
  o.backend = "cpu";
  o.profiles = {profile({1, 2}, {2, 2}, {4, 2}), profile({8, 2}, {8, 2}, {16, 2})};
  auto plan = build_plan(relu_model(), o);
  ASSERT_TRUE(plan.ok()) << plan.status().message();
  std::string path = (std::filesystem::temp_directory_path() / "kiln_profiles_test.kplan").string();
  ASSERT_TRUE(save_plan(*plan, path).ok());
  auto loaded = load_plan(path);
  ASSERT_TRUE(loaded.ok()) << loaded.status().message();
  ASSERT_EQ(loaded->profiles.size(), 2u);
  EXPECT_EQ(loaded->profiles[1].inputs.at("x").min, (Dims{8, 2}));
  EXPECT_EQ(loaded->profiles[1].inputs.at("x").max, (Dims{16, 2}));
  EXPECT_EQ(loaded->profiles[0].inputs.at("x").opt, (Dims{2, 2}));
  EXPECT_FALSE(loaded->graph->inputs[0]->type.shape.is_static());  // the dynamic dim is kept

  auto engine = Engine::load(path);
  ASSERT_TRUE(engine.ok()) << engine.status().message();
  auto ctx = (*engine)->create_context();
  ASSERT_TRUE(ctx.ok());
  EXPECT_EQ((*ctx)->num_optimization_profiles(), 2u);
  auto out = (*ctx)->run({{"x", Tensor::from_vector<float>({3, 2}, {-1, 2, -3, 4, 5, -6})}});
  ASSERT_TRUE(out.ok()) << out.status().message();
  EXPECT_EQ(out->at(0).data<float>()[1], 3.f);
  auto big = Tensor::from_vector<float>({8, 2}, std::vector<float>(16, 1.f));
  auto bad = (*ctx)->run({{"x", big}});
  ASSERT_FALSE(bad.ok());
  EXPECT_TRUE(has(bad.status(), "input 'x'") && has(bad.status(), "8x2") && has(bad.status(), "1x2 .. 4x2"))
      << bad.status().message();
  Status shape_st = (*ctx)->set_input_shape("x", {5, 2});
  EXPECT_TRUE(has(shape_st, "1x2 .. 4x2")) << shape_st.message();
  ASSERT_TRUE((*ctx)->set_optimization_profile(1).ok());
  EXPECT_TRUE((*ctx)->set_input_shape("x", {8, 2}).ok());
  out = (*ctx)->run({{"x", big}});
  ASSERT_TRUE(out.ok()) << out.status().message();
  EXPECT_EQ(out->at(0).dims(), (Dims{8, 2}));
  Status no_profile = (*ctx)->set_optimization_profile(2);
  EXPECT_TRUE(has(no_profile, "profile 2 does not exist")) << no_profile.message();
  std::filesystem::remove(path);
}

TEST(Profiles, BuildErrorsNameTheInput) {
  BuildOptions o;
  o.backend = "cpu";
  o.profiles = {profile({1, 2}, {2, 2}, {4, 2}, "nope")};
  auto plan = build_plan(relu_model(), o);
  ASSERT_FALSE(plan.ok());
  EXPECT_TRUE(has(plan.status(), "'nope'")) << plan.status().message();
  BuildOptions both;
  both.backend = "cpu";
  both.profiles = {profile({1, 2}, {2, 2}, {4, 2})};
  both.input_shapes["x"] = {2, 2};
  plan = build_plan(relu_model(), both);
  ASSERT_FALSE(plan.ok());
  EXPECT_TRUE(has(plan.status(), "both --shapes and an optimization profile")) << plan.status().message();
}

TEST(Specialize, CloneFixesShapesAndFoldsShapeArithmetic) {
  // y = Reshape(x, Shape(x)): the shape input becomes a constant once x's shape is fixed.
  Graph g;
  Value* x = g.add_value("x", {DType::kFloat32, Shape({Dim::symbolic("n"), Dim(3)})});
  Value* s = g.add_value("s");
  Value* y = g.add_value("y");
  g.inputs = {x};
  g.add_node("Shape", {x}, {s}, "shape");
  g.add_node("Reshape", {x, s}, {y}, "reshape");
  g.outputs = {y};
  auto spec = specialize_graph(g, {{"x", {5, 3}}});
  ASSERT_TRUE(spec.ok()) << spec.status().message();
  ASSERT_EQ((*spec)->nodes().size(), 1u);
  EXPECT_EQ((*spec)->nodes()[0]->op_type, "Reshape");
  EXPECT_TRUE((*spec)->nodes()[0]->inputs[1]->is_constant());
  EXPECT_EQ((*spec)->outputs[0]->type.shape.to_dims(), (Dims{5, 3}));
  EXPECT_EQ(node_key(*(*spec)->nodes()[0]), "y");
  EXPECT_FALSE(g.inputs[0]->type.shape.is_static());  // the original is untouched
  EXPECT_EQ(g.nodes().size(), 2u);
}

Model shape_reshape_model() {
  Model m;
  m.graph = std::make_shared<Graph>();
  Graph& g = *m.graph;
  Value* x = g.add_value("x", {DType::kFloat32, Shape({Dim::symbolic("n"), Dim(3)})});
  Value* s = g.add_value("s");
  Value* y = g.add_value("y");
  g.inputs = {x};
  g.add_node("Shape", {x}, {s}, "shape");
  g.add_node("Reshape", {x, s}, {y}, "reshape");
  g.outputs = {y};
  return m;
}

// A backend that needs static shapes like CUDA, but runs on the CPU: its tactic records the
// shape of the node's first output at which it was chosen.
class StaticTestBackend : public Backend {
 public:
  std::string name() const override { return "static_test"; }
  Status available() const override { return Status::Ok(); }
  PlanTarget target() const override { return PlanTarget{.backend = "static_test"}; }
  Status check_target(const PlanTarget&) const override { return Status::Ok(); }
  bool supports(const Node& n) const override {
    for (const Value* o : n.outputs)
      if (o && !o->type.shape.is_static()) return false;  // asked only with static shapes
    return find_backend("cpu")->supports(n);
  }
  bool needs_static_shapes() const override { return true; }
  Status choose_layers(Graph& g, const BuildOptions&, std::vector<LayerChoice>& layers) const override {
    layers.clear();
    for (const auto& n : g.nodes()) layers.push_back({"at:" + n->outputs[0]->type.shape.to_string(), "fp32"});
    return Status::Ok();
  }
  Expected<std::unique_ptr<EngineImpl>> create_engine(const Plan& plan) const override {
    return find_backend("cpu")->create_engine(plan);
  }
};
KILN_REGISTER_BACKEND(StaticTestBackend);

std::string data_path(const std::string& file) {
  return std::string(KILN_SOURCE_DIR) + "/tests/data/dynamic/" + file;
}

TEST(Profiles, StaticBackendTunesAtOptAndSizesArenaAtMax) {
  auto model = import_onnx_file(data_path("detector.onnx"));
  ASSERT_TRUE(model.ok()) << model.status().message();
  BuildOptions o;
  o.backend = "static_test";
  o.profiles = {profile({1, 3, 32, 32}, {2, 3, 48, 64}, {3, 3, 64, 96})};
  auto plan = build_plan(std::move(*model), o);
  ASSERT_TRUE(plan.ok()) << plan.status().message();
  ASSERT_EQ(plan->layers.size(), plan->graph->nodes().size());
  EXPECT_FALSE(plan->graph->inputs[0]->type.shape.is_static());
  // The first conv's output at opt: 2 x 8 x 24 x 32.
  EXPECT_EQ(plan->layers[0].tactic, "at:[2,8,24,32]") << plan->layers[0].tactic;
  auto max_graph = specialize_graph(*plan->graph, {{"x", {3, 3, 64, 96}}});
  ASSERT_TRUE(max_graph.ok());
  auto mem = plan_memory(**max_graph);
  ASSERT_TRUE(mem.ok());
  EXPECT_EQ(plan->arena_bytes, mem->arena_bytes);
  EXPECT_GT(plan->arena_bytes, 3u * 3 * 64 * 96 * 4);

  // A profile that changes a dim the model fixes is refused, naming the dim.
  auto model2 = import_onnx_file(data_path("recognizer.onnx"));
  ASSERT_TRUE(model2.ok());
  BuildOptions o2;
  o2.backend = "static_test";
  o2.profiles = {profile({1, 3, 31, 32}, {1, 3, 31, 64}, {2, 3, 31, 128})};
  auto bad = build_plan(std::move(*model2), o2);
  ASSERT_FALSE(bad.ok());
  EXPECT_TRUE(has(bad.status(), "fixed to 32")) << bad.status().message();
}

TEST(Profiles, StaticBuildFoldsShapeOfFixedInputs) {
  BuildOptions o;
  o.backend = "static_test";
  o.input_shapes["x"] = {4, 3};
  auto plan = build_plan(shape_reshape_model(), o);
  ASSERT_TRUE(plan.ok()) << plan.status().message();
  ASSERT_EQ(plan->graph->nodes().size(), 1u);
  EXPECT_EQ(plan->graph->nodes()[0]->op_type, "Reshape");
  // A CPU plan keeps the dynamic graph as it is.
  BuildOptions cpu;
  plan = build_plan(shape_reshape_model(), cpu);
  ASSERT_TRUE(plan.ok());
  EXPECT_EQ(plan->graph->nodes().size(), 2u);
}

TEST(Profiles, StaticBackendDefaultsDynamicDimsToOneAndSaysSo) {
  BuildOptions o;
  o.backend = "static_test";
  std::vector<std::string> lines;
  o.log = [&](std::string_view l) { lines.emplace_back(l); };
  auto plan = build_plan(relu_model(), o);
  ASSERT_TRUE(plan.ok()) << plan.status().message();
  EXPECT_EQ(plan->graph->inputs[0]->type.shape.to_dims(), (Dims{1, 2}));
  bool said = false;
  for (const auto& l : lines) said |= l.find("input 'x' has dynamic shape") != std::string::npos &&
                                      l.find("building for 1x2") != std::string::npos;
  EXPECT_TRUE(said);
  // Profiles must cover every dynamic input.
  Model two = relu_model();
  Value* z = two.graph->add_value("z", {DType::kFloat32, Shape({Dim::symbolic("m")})});
  two.graph->inputs.push_back(z);
  BuildOptions p;
  p.backend = "static_test";
  p.profiles = {profile({1, 2}, {2, 2}, {4, 2})};
  auto uncovered = build_plan(std::move(two), p);
  ASSERT_FALSE(uncovered.ok());
  EXPECT_TRUE(has(uncovered.status(), "input 'z'") && has(uncovered.status(), "profile 0 gives no range"))
      << uncovered.status().message();
}

// One plan with one profile runs the model at 3 sizes x 2 batches, matching PyTorch's outputs.
void run_model_cases(const std::string& name, const OptimizationProfile& prof, const std::string& backend) {
  auto model = import_onnx_file(data_path(name + ".onnx"));
  ASSERT_TRUE(model.ok()) << model.status().message();
  BuildOptions o;
  o.backend = backend;
  o.profiles = {prof};
  auto plan = build_plan(std::move(*model), o);
  ASSERT_TRUE(plan.ok()) << plan.status().message();
  auto engine = Engine::from_plan(std::move(*plan));
  ASSERT_TRUE(engine.ok()) << engine.status().message();
  auto ctx = (*engine)->create_context();
  ASSERT_TRUE(ctx.ok());
  for (int i = 0; i < 6; ++i) {
    auto x = load_npy(data_path(name + "_" + std::to_string(i) + "_input.npy"));
    auto want = load_npy(data_path(name + "_" + std::to_string(i) + "_output.npy"));
    ASSERT_TRUE(x.ok() && want.ok());
    auto out = (*ctx)->run({{"x", *x}});
    ASSERT_TRUE(out.ok()) << name << " case " << i << ": " << out.status().message();
    ASSERT_EQ(out->at(0).dims(), want->dims()) << name << " case " << i;
    EXPECT_LE(test::rel_l2(out->at(0), *want), 1e-4) << name << " case " << i << " " << dims_to_string(x->dims());
  }
}

TEST(DynamicModels, DetectorThreeSizesTwoBatchesCpu) {
  run_model_cases("detector", profile({1, 3, 32, 32}, {1, 3, 48, 64}, {3, 3, 64, 96}), "cpu");
}

TEST(DynamicModels, RecognizerThreeWidthsTwoBatchesCpu) {
  run_model_cases("recognizer", profile({1, 3, 32, 32}, {1, 3, 32, 64}, {2, 3, 32, 100}), "cpu");
}

TEST(DynamicModels, DetectorThroughStaticShapeBuilderPath) {
  // The static-shape builder path (specialization at min/opt/max) must accept both models.
  run_model_cases("detector", profile({1, 3, 32, 32}, {1, 3, 48, 64}, {3, 3, 64, 96}), "static_test");
  run_model_cases("recognizer", profile({1, 3, 32, 32}, {1, 3, 32, 64}, {2, 3, 32, 100}), "static_test");
}

}  // namespace
}  // namespace kiln
