// Host-side logic of data-dependent shapes (docs/dynamic-shapes.md): specializing with resolved
// data-dependent outputs (downstream shape arithmetic folds with the synced count), resolving a
// graph at its largest outputs for the builder, per-stage memory segments, and the plan round trip
// of a graph whose shapes stay unresolved.
#include <gtest/gtest.h>

#include "builder/memory_planner.hpp"
#include "builder/specialize.hpp"
#include "op_test_util.hpp"
#include "ops/shape_inference.hpp"
#include "util/error.hpp"

namespace kiln::test {
namespace {

// x[6] -> NonZero nz[1, ?] -> Shape s -> Gather(s, [1]) c ; nz -> Transpose t[?, 1]; outputs t, c.
GraphPtr nonzero_graph() {
  auto g = std::make_shared<Graph>();
  Value* x = g->add_value("x", {DType::kFloat32, Shape({Dim(6)})});
  g->inputs = {x};
  Value* nz = g->add_value("nz");
  Value* s = g->add_value("s");
  Value* c = g->add_value("c");
  Value* t = g->add_value("t");
  g->add_node("NonZero", {x}, {nz}, "nonzero");
  g->add_node("Shape", {nz}, {s}, "shape");
  Tensor one(DType::kInt64, {1});
  one.data<int64_t>()[0] = 1;
  g->add_node("Gather", {s, g->add_constant("one", one)}, {c}, "count");
  g->add_node("Transpose", {nz}, {t}, "transpose")->attrs.set("perm", std::vector<int64_t>{1, 0});
  g->outputs = {t, c};
  EXPECT_TRUE(infer_shapes(*g).ok());
  return g;
}

Expected<std::vector<Dims>> nonzero_bounds(const Node& n) {
  if (n.op_type != "NonZero") return unsupported("no bound for {}", n.op_type);
  auto d = n.inputs[0]->type.shape.to_dims();
  if (!d) return unsupported("input not static");
  return std::vector<Dims>{{static_cast<int64_t>(d->size()), dims_numel(*d)}};
}

size_t index_of(const Graph& g, const std::string& name) {
  for (size_t i = 0; i < g.nodes().size(); ++i)
    if (g.nodes()[i]->name == name) return i;
  return g.nodes().size();
}

TEST(DataDependentShapes, UnresolvedNodeIsTheDataDependentOp) {
  GraphPtr g = nonzero_graph();
  EXPECT_EQ(first_unresolved_node(*g), index_of(*g, "nonzero"));
  // Shape and Gather of the count have static outputs (not yet values); Transpose does not.
  EXPECT_EQ(first_unresolved_node(*g, index_of(*g, "nonzero") + 1), index_of(*g, "transpose"));
  auto spec = specialize_graph(*g, {});
  ASSERT_TRUE(spec.ok()) << spec.status().message();
  ASSERT_LT(first_unresolved_node(**spec), (*spec)->nodes().size());
  EXPECT_EQ((*spec)->nodes()[first_unresolved_node(**spec)]->op_type, "NonZero");
}

TEST(DataDependentShapes, FixedCountFoldsDownstreamShapeArithmetic) {
  GraphPtr g = nonzero_graph();
  auto spec = specialize_graph(*g, {}, {}, {{"nz", {1, 4}}});
  ASSERT_TRUE(spec.ok()) << spec.status().message();
  const Graph& s = **spec;
  EXPECT_EQ(first_unresolved_node(s), s.nodes().size());
  EXPECT_EQ(s.find_value("nz")->type.shape.to_dims(), (Dims{1, 4}));
  EXPECT_EQ(s.find_value("t")->type.shape.to_dims(), (Dims{4, 1}));
  // The count reaches the host-side shape arithmetic as a constant: no device readback.
  const Value* c = s.find_value("c");
  ASSERT_TRUE(c->is_constant());
  EXPECT_EQ(c->constant->to_int64_vector().value(), (std::vector<int64_t>{4}));
  for (const auto& n : s.nodes()) EXPECT_NE(n->op_type, "Shape");
  // The original graph is untouched.
  EXPECT_FALSE(g->find_value("nz")->type.shape.is_static());
}

TEST(DataDependentShapes, FixingAnUnknownValueIsAnError) {
  auto spec = specialize_graph(*nonzero_graph(), {}, {}, {{"nope", {1}}});
  ASSERT_FALSE(spec.ok());
  EXPECT_NE(spec.status().message().find("nope"), std::string::npos);
}

TEST(DataDependentShapes, SpecializeAtBoundsResolvesEveryShape) {
  std::vector<std::string> resolved;
  auto at_max = specialize_at_bounds(*nonzero_graph(), {}, nonzero_bounds, {}, &resolved);
  ASSERT_TRUE(at_max.ok()) << at_max.status().message();
  EXPECT_EQ(first_unresolved_node(**at_max), (*at_max)->nodes().size());
  EXPECT_EQ(resolved, (std::vector<std::string>{"nz"}));
  EXPECT_EQ((*at_max)->find_value("t")->type.shape.to_dims(), (Dims{6, 1}));
}

TEST(DataDependentShapes, SpecializeAtBoundsNamesTheNodeItCannotBound) {
  auto refuse = [](const Node&) -> Expected<std::vector<Dims>> { return unsupported("cannot bound it"); };
  auto r = specialize_at_bounds(*nonzero_graph(), {}, refuse);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("cannot bound it"), std::string::npos) << r.status().message();
  EXPECT_NE(r.status().message().find("nonzero"), std::string::npos) << r.status().message();
}

// A Reshape whose shape is computed from the non-zero *values* (not their count) stays unresolved
// after bounding NonZero: the error names the Reshape.
TEST(DataDependentShapes, ShapeFromDeviceValuesIsRefused) {
  GraphPtr g = nonzero_graph();
  Value* flat_nz = g->add_value("flat_nz");
  Value* y = g->add_value("y");
  Tensor minus_one(DType::kInt64, {1});
  minus_one.data<int64_t>()[0] = -1;
  g->add_node("Reshape", {g->find_value("nz"), g->add_constant("minus_one", minus_one)}, {flat_nz}, "flatten_nz");
  g->add_node("Reshape", {g->find_value("x"), flat_nz}, {y}, "reshape_by_values");
  g->outputs.push_back(y);
  ASSERT_TRUE(infer_shapes(*g).ok());
  auto r = specialize_at_bounds(*g, {}, nonzero_bounds);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("reshape_by_values"), std::string::npos) << r.status().message();
}

// x[16] -> a = Relu(x) -> b = Relu(a) -> nz = NonZero(b) | d = Transpose(nz) -> e = Gather(a, d)
GraphPtr staged_graph() {
  auto g = std::make_shared<Graph>();
  Value* x = g->add_value("x", {DType::kFloat32, Shape({Dim(16)})});
  g->inputs = {x};
  Value* a = g->add_value("a");
  Value* b = g->add_value("b");
  Value* nz = g->add_value("nz");
  Value* d = g->add_value("d");
  Value* e = g->add_value("e");
  g->add_node("Relu", {x}, {a}, "relu_a");
  g->add_node("Relu", {a}, {b}, "relu_b");
  g->add_node("NonZero", {b}, {nz}, "nonzero");
  g->add_node("Transpose", {nz}, {d}, "transpose")->attrs.set("perm", std::vector<int64_t>{1, 0});
  g->add_node("Gather", {a, d}, {e}, "gather");
  g->outputs = {e};
  EXPECT_TRUE(infer_shapes(*g).ok());
  return g;
}

const ArenaSlot* slot(const MemoryPlan& p, const std::string& name) {
  for (const ArenaSlot& s : p.slots)
    if (s.value == name) return &s;
  return nullptr;
}

bool overlap(const ArenaSlot& a, const ArenaSlot& b) {
  return a.offset < b.offset + b.nbytes && b.offset < a.offset + a.nbytes;
}

TEST(DataDependentShapes, FirstSegmentPlansUpToTheSyncAtTheBound) {
  GraphPtr g = staged_graph();
  ASSERT_EQ(first_unresolved_node(*g), 2u);
  ASSERT_EQ(index_of(*g, "nonzero"), 2u);
  MemorySegment seg;
  seg.begin = 0;
  seg.end = 3;
  seg.max_bytes[g->find_value("nz")] = 16 * 8;
  auto plan = plan_memory(*g, seg);
  ASSERT_TRUE(plan.ok()) << plan.status().message();
  const ArenaSlot *x = slot(*plan, "x"), *a = slot(*plan, "a"), *b = slot(*plan, "b"), *nz = slot(*plan, "nz");
  ASSERT_TRUE(x && a && b && nz);
  EXPECT_EQ(nz->nbytes, 128u);
  EXPECT_EQ(slot(*plan, "d"), nullptr);  // later segments plan their own values
  EXPECT_EQ(slot(*plan, "e"), nullptr);
  // a is read after the sync (by the Gather), so it lives with nz to the segment's end.
  EXPECT_FALSE(overlap(*a, *nz));
  EXPECT_FALSE(overlap(*x, *nz));
  EXPECT_FALSE(overlap(*a, *x));
  EXPECT_GE(plan->arena_bytes, 3 * 256u);
  // Without a bound for nz the planner refuses, naming it.
  MemorySegment unbounded = seg;
  unbounded.max_bytes.clear();
  auto refused = plan_memory(*g, unbounded);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("nz"), std::string::npos);
}

TEST(DataDependentShapes, LaterSegmentPlansOnlyItsOwnValues) {
  auto spec = specialize_graph(*staged_graph(), {}, {}, {{"nz", {1, 5}}});
  ASSERT_TRUE(spec.ok()) << spec.status().message();
  const Graph& g = **spec;
  ASSERT_EQ(g.nodes().size(), 5u);
  ASSERT_EQ(index_of(g, "transpose"), 3u);
  const std::set<std::string> earlier = {"x", "a", "b", "nz"};
  MemorySegment seg;
  seg.begin = 3;
  seg.end = 5;
  seg.plan_inputs = false;
  seg.external = [&](const Value* v) { return earlier.count(v->name) > 0; };
  auto plan = plan_memory(g, seg);
  ASSERT_TRUE(plan.ok()) << plan.status().message();
  for (const std::string& name : earlier) EXPECT_EQ(slot(*plan, name), nullptr) << name;
  const ArenaSlot *d = slot(*plan, "d"), *e = slot(*plan, "e");
  ASSERT_TRUE(d && e);
  EXPECT_EQ(d->nbytes, 5 * 8u);
  EXPECT_EQ(e->nbytes, 5 * 4u);
  EXPECT_FALSE(overlap(*d, *e));  // the Gather reads d while writing e
}

TEST(DataDependentShapes, WholeGraphSegmentEqualsPlanMemory) {
  auto spec = specialize_graph(*staged_graph(), {}, {}, {{"nz", {1, 5}}});
  ASSERT_TRUE(spec.ok());
  auto whole = plan_memory(**spec);
  MemorySegment all;
  all.end = (*spec)->nodes().size();
  auto seg = plan_memory(**spec, all);
  ASSERT_TRUE(whole.ok() && seg.ok());
  EXPECT_EQ(whole->arena_bytes, seg->arena_bytes);
  ASSERT_EQ(whole->slots.size(), seg->slots.size());
  for (size_t i = 0; i < whole->slots.size(); ++i) {
    EXPECT_EQ(whole->slots[i].value, seg->slots[i].value);
    EXPECT_EQ(whole->slots[i].offset, seg->slots[i].offset);
  }
}

// A staged plan keeps its unresolved dims and layer choices through a save and load.
TEST(DataDependentShapes, PlanRoundTripKeepsUnresolvedShapes) {
  Plan plan;
  plan.kiln_version = kiln_version();
  plan.target.backend = "cuda";
  plan.graph = staged_graph();
  for (const auto& n : plan.graph->nodes()) plan.layers.push_back({n->op_type == "NonZero" ? "" : "t1", "fp32"});
  plan.arena_bytes = 4096;
  const std::string path = ::testing::TempDir() + "/kiln_datadep_roundtrip.kplan";
  ASSERT_TRUE(save_plan(plan, path).ok());
  auto loaded = load_plan(path);
  ASSERT_TRUE(loaded.ok()) << loaded.status().message();
  const Graph& g = *loaded->graph;
  EXPECT_EQ(first_unresolved_node(g), 2u);
  const Shape& nz = g.find_value("nz")->type.shape;
  ASSERT_TRUE(nz.has_rank());
  EXPECT_EQ(nz.rank(), 2u);
  EXPECT_TRUE(nz[0].known());
  EXPECT_FALSE(nz[1].known());
  EXPECT_TRUE(loaded->arena.empty());
  ASSERT_EQ(loaded->layers.size(), plan.layers.size());
  EXPECT_EQ(loaded->layers[index_of(g, "nonzero")].tactic, "");
  EXPECT_EQ(loaded->layers[index_of(g, "gather")].tactic, "t1");
  // And it specializes at run time as the original does.
  auto spec = specialize_graph(g, {}, {}, {{"nz", {1, 7}}});
  ASSERT_TRUE(spec.ok()) << spec.status().message();
  EXPECT_EQ((*spec)->find_value("e")->type.shape.to_dims(), (Dims{7, 1}));
}

}  // namespace
}  // namespace kiln::test
