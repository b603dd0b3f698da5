#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "builder/builder.hpp"
#include "builder/memory_planner.hpp"
#include "ops/shape_inference.hpp"
#include "runtime/engine.hpp"

namespace kiln {
namespace {

// x -> Identity -> a -> Identity -> b (output); c = Identity(const) is foldable.
Model chain_model(Shape input_shape) {
  Model m;
  m.graph = std::make_shared<Graph>();
  Graph& g = *m.graph;
  Value* x = g.add_value("x", {DType::kFloat32, std::move(input_shape)});
  Value* k = g.add_constant("k", Tensor::from_vector<float>({2}, {3.f, 4.f}));
  Value* a = g.add_value("a");
  Value* b = g.add_value("b");
  Value* c = g.add_value("c");
  Value* unused = g.add_value("unused");
  g.inputs = {x};
  g.add_node("Identity", {x}, {a}, "first");
  g.add_node("Identity", {a}, {b}, "second");
  g.add_node("Identity", {k}, {c}, "fold_me");
  g.add_node("Identity", {a}, {unused}, "dead");
  g.outputs = {b, c};
  return m;
}

TEST(Builder, FoldsConstantsRemovesDeadNodesAndRuns) {
  BuildOptions o;
  o.backend = "cpu";
  auto plan = build_plan(chain_model(Shape({Dim::symbolic("n"), Dim(2)})), o);
  ASSERT_TRUE(plan.ok()) << plan.status().message();
  const Graph& g = *plan->graph;
  // fold_me folded, dead removed, `first` bypassed; `second` stays (it binds input x to output b).
  ASSERT_EQ(g.nodes().size(), 1u);
  EXPECT_TRUE(g.outputs[1]->is_constant());
  EXPECT_EQ(g.find_value("unused"), nullptr);
  EXPECT_EQ(plan->layers.size(), 1u);

  std::string path = (std::filesystem::temp_directory_path() / "kiln_builder_test.kplan").string();
  ASSERT_TRUE(save_plan(*plan, path).ok());
  auto engine = Engine::load(path);
  ASSERT_TRUE(engine.ok()) << engine.status().message();
  auto ctx = (*engine)->create_context();
  ASSERT_TRUE(ctx.ok());
  auto out = (*ctx)->run({{"x", Tensor::from_vector<float>({3, 2}, {1, 2, 3, 4, 5, 6})}});
  ASSERT_TRUE(out.ok()) << out.status().message();
  EXPECT_EQ(out->at(0).dims(), (Dims{3, 2}));
  EXPECT_EQ(out->at(1).data<float>()[1], 4.f);
  std::filesystem::remove(path);
}

TEST(Builder, UnknownShapesInputAndBackendAreClearErrors) {
  BuildOptions o;
  o.input_shapes["nope"] = {1, 2};
  auto plan = build_plan(chain_model(Shape::from_dims({1, 2})), o);
  ASSERT_FALSE(plan.ok());
  EXPECT_NE(plan.status().message().find("'nope'"), std::string::npos);
  EXPECT_NE(plan.status().message().find("'x'"), std::string::npos);

  BuildOptions bad_shape;
  bad_shape.input_shapes["x"] = {1, 5};
  plan = build_plan(chain_model(Shape({Dim::symbolic("n"), Dim(2)})), bad_shape);
  ASSERT_FALSE(plan.ok());
  EXPECT_NE(plan.status().message().find("does not fit"), std::string::npos) << plan.status().message();

  BuildOptions other;
  other.backend = "tpu";
  plan = build_plan(chain_model(Shape::from_dims({1, 2})), other);
  ASSERT_FALSE(plan.ok());
  EXPECT_NE(plan.status().message().find("unknown backend 'tpu'"), std::string::npos);
}

TEST(MemoryPlanner, ReusesMemoryOfDeadValuesAndAliasesViews) {
  Graph g;
  auto f32 = [](Dims d) { return TensorType{DType::kFloat32, Shape::from_dims(d)}; };
  Value* x = g.add_value("x", f32({256}));
  Value* a = g.add_value("a", f32({256}));
  Value* b = g.add_value("b", f32({256}));
  Value* c = g.add_value("c", f32({256}));
  Value* d = g.add_value("d", f32({256}));
  g.inputs = {x};
  g.add_node("Relu", {x}, {a}, "n0");
  g.add_node("Relu", {a}, {b}, "n1");
  g.add_node("Identity", {b}, {c}, "view");  // c aliases b
  g.add_node("Relu", {c}, {d}, "n3");
  g.outputs = {d};
  auto plan = plan_memory(g);
  ASSERT_TRUE(plan.ok()) << plan.status().message();
  std::map<std::string, uint64_t> off;
  for (const auto& s : plan->slots) off[s.value] = s.offset;
  EXPECT_EQ(off["b"], off["c"]);
  // x and d live the whole run; a dies before d is made, so d can take a's place.
  EXPECT_EQ(off["a"], off["d"]);
  EXPECT_NE(off["x"], off["a"]);
  EXPECT_NE(off["b"], off["a"]);
  EXPECT_EQ(plan->arena_bytes, 3u * 1024u);
}

TEST(MemoryPlanner, GatherOfOneConstantIndexAliasesItsBlock) {
  Graph g;
  auto f32 = [](Dims d) { return TensorType{DType::kFloat32, Shape::from_dims(d)}; };
  Value* x = g.add_value("x", f32({3, 1, 64}));
  Value* qkv = g.add_value("qkv", f32({3, 1, 64}));
  Value* k = g.add_value("k", f32({1, 64}));
  Value* v = g.add_value("v", f32({1, 64}));
  Value* r = g.add_value("r", f32({1, 64}));
  Value* odd = g.add_value("odd", f32({1, 3}));
  Value* small = g.add_value("small", f32({3, 1, 3}));
  Value* rows = g.add_value("rows", f32({2, 64}));
  Value* xr = g.add_value("xr", f32({2, 3, 64}));
  g.inputs = {x, xr, small};
  g.add_node("Relu", {x}, {qkv}, "n0");
  g.add_node("Gather", {qkv, g.add_constant("i1", Tensor::scalar<int64_t>(1))}, {k}, "gk");
  g.add_node("Gather", {qkv, g.add_constant("i2", Tensor::scalar<int64_t>(-1))}, {v}, "gv");
  g.add_node("Add", {k, v}, {r}, "add");
  // A block at an unaligned offset (4 floats in) is copied, not aliased.
  g.add_node("Gather", {small, g.add_constant("i3", Tensor::scalar<int64_t>(1))}, {odd}, "godd");
  // Axis 1 of a tensor with a leading dim of 2: two blocks, no alias.
  Node* gr = g.add_node("Gather", {xr, g.add_constant("i4", Tensor::scalar<int64_t>(0))}, {rows}, "grows");
  gr->attrs.set("axis", int64_t{1});
  g.outputs = {r, odd, rows};
  auto plan = plan_memory(g);
  ASSERT_TRUE(plan.ok()) << plan.status().message();
  std::map<std::string, uint64_t> off;
  for (const auto& s : plan->slots) off[s.value] = s.offset;
  EXPECT_EQ(off["k"], off["qkv"] + 256u);
  EXPECT_EQ(off["v"], off["qkv"] + 512u);
  // qkv stays live while k and v are read.
  EXPECT_TRUE(off["r"] >= off["qkv"] + 768u || off["r"] + 256u <= off["qkv"]);
  EXPECT_NE(off["odd"], off["small"] + 12u);
  EXPECT_NE(off["rows"], off["xr"]);
}

}  // namespace
}  // namespace kiln

namespace kiln {
namespace {

TEST(PrecisionPass, Float16KeepsFloat32BindingsAndConvertsWeights) {
  Model m;
  m.graph = std::make_shared<Graph>();
  Graph& g = *m.graph;
  Value* x = g.add_value("x", {DType::kFloat32, Shape::from_dims({2, 3})});
  Value* w = g.add_constant("w", Tensor::from_vector<float>({2, 3}, {1, 2, 3, 4, 5, 6}));
  Value* y = g.add_value("y");
  g.inputs = {x};
  Node* n = g.add_node("Identity", {x}, {y}, "id");
  (void)n;
  Value* z = g.add_value("z");
  g.add_node("Identity", {w}, {z}, "wid");
  g.outputs = {y, z};
  BuildOptions o;
  o.fp16 = true;
  // Keep the weight's node so its input shows the conversion.
  o.disabled_passes = {"constant-folding", "identity-elimination"};
  auto plan = build_plan(std::move(m), o);
  ASSERT_TRUE(plan.ok()) << plan.status().message();
  const Graph& pg = *plan->graph;
  EXPECT_EQ(pg.inputs[0]->type.dtype, DType::kFloat32);
  EXPECT_EQ(pg.outputs[0]->type.dtype, DType::kFloat32);
  bool saw_low_weight = false, saw_cast_in = false;
  for (const auto& node : pg.nodes()) {
    if (node->op_type == "Cast" && node->inputs[0] == pg.inputs[0]) {
      saw_cast_in = true;
      EXPECT_EQ(node->outputs[0]->type.dtype, DType::kFloat16);
    }
    if (node->name == "wid") saw_low_weight = node->inputs[0]->constant->dtype() == DType::kFloat16;
  }
  EXPECT_TRUE(saw_cast_in);
  EXPECT_TRUE(saw_low_weight);
  auto engine = Engine::from_plan(std::move(*plan));
  ASSERT_TRUE(engine.ok()) << engine.status().message();
  auto ctx = (*engine)->create_context();
  ASSERT_TRUE(ctx.ok());
  auto out = (*ctx)->run({{"x", Tensor::from_vector<float>({2, 3}, {0.1f, 2, 3, 4, 5, 65504.f * 4})}});
  ASSERT_TRUE(out.ok()) << out.status().message();
  EXPECT_NEAR(out->at(0).data<float>()[0], 0.1f, 1e-4);  // went through float16
  EXPECT_NE(out->at(0).data<float>()[0], 0.1f);
  EXPECT_TRUE(std::isinf(out->at(0).data<float>()[5]));
  EXPECT_EQ(out->at(1).dtype(), DType::kFloat32);
}

}  // namespace
}  // namespace kiln
