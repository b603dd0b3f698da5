// If, Loop and Scan on the CPU backend: graphs with subgraphs built directly in C++, checked
// against naive computations, plus inference of their output types and their error cases.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cmath>
#include <filesystem>

#include "builder/builder.hpp"
#include "control_flow_test_util.hpp"
#include "runtime/engine.hpp"

namespace kiln {
namespace {

using namespace cftest;

// ---- If. ----

// then: x + 1.5, a float[4], an int64[2]; else: x * x, a float[5], an int64[2,2].
GraphPtr make_if_graph() {
  auto g = std::make_shared<Graph>();
  g->name = "main";
  Value* cond = g->add_value("cond", tt(DType::kBool, {}));
  Value* x = g->add_value("x", tt(DType::kFloat32, {2, 3}));
  g->inputs = {cond, x};
  auto then_g = subgraph(*g, "then");
  Value* t0 = then_g->add_value("t0");
  op(*then_g, "Add", {x, then_g->add_constant("c", Tensor::scalar<float>(1.5f))}, t0);
  then_g->outputs = {t0, then_g->add_constant("t1", f32({4}, {1, 2, 3, 4})),
                     then_g->add_constant("t2", Tensor::from_vector<int64_t>({2}, {7, 8}))};
  auto else_g = subgraph(*g, "else");
  Value* e0 = else_g->add_value("e0");
  op(*else_g, "Mul", {x, x}, e0);
  else_g->outputs = {e0, else_g->add_constant("e1", f32({5}, {5, 4, 3, 2, 1})),
                     else_g->add_constant("e2", Tensor::from_vector<int64_t>({2, 2}, {1, 2, 3, 4}))};
  std::vector<Value*> outs{g->add_value("y0"), g->add_value("y1"), g->add_value("y2")};
  Node* n = g->add_node("If", {cond}, outs, "the_if", "", 21);
  n->attrs.set("then_branch", then_g);
  n->attrs.set("else_branch", else_g);
  g->outputs = outs;
  return g;
}

TEST(ControlFlowIf, UsesOuterScopeValuesAndMergesBranchShapes) {
  GraphPtr g = make_if_graph();
  ASSERT_TRUE(infer_shapes(*g).ok());
  EXPECT_EQ(g->outputs[0]->type.to_string(), "float32[2,3]");
  EXPECT_EQ(g->outputs[1]->type.to_string(), "float32[?]");  // [4] or [5]
  EXPECT_EQ(g->outputs[2]->type.to_string(), "int64[*]");    // rank 1 or 2
  Tensor x = test::random_tensor(DType::kFloat32, {2, 3}, 7);
  for (bool c : {true, false}) {
    auto out = run(g, {{"cond", Tensor::scalar<bool>(c)}, {"x", x}});
    ASSERT_TRUE(out.ok()) << out.status().message();
    Tensor want(DType::kFloat32, {2, 3});
    for (int i = 0; i < 6; ++i) {
      float v = x.data<float>()[i];
      want.data<float>()[i] = c ? v + 1.5f : v * v;
    }
    EXPECT_TRUE(test::tensors_close(out->at(0), want));
    EXPECT_EQ(out->at(1).dims(), (Dims{c ? 4 : 5}));
    EXPECT_FLOAT_EQ(out->at(1).data<float>()[0], c ? 1.f : 5.f);
    EXPECT_EQ(out->at(2).dims(), c ? (Dims{2}) : (Dims{2, 2}));
    EXPECT_EQ(out->at(2).data<int64_t>()[0], c ? 7 : 1);
  }
}

TEST(ControlFlowIf, KnownConditionSelectsTheBranchTypes) {
  GraphPtr g = make_if_graph();
  Value* c = g->add_constant("c_false", Tensor::scalar<bool>(false));
  g->nodes()[0]->inputs[0] = c;
  g->inputs = {g->find_value("x")};
  ASSERT_TRUE(infer_shapes(*g).ok());
  EXPECT_EQ(g->outputs[1]->type.to_string(), "float32[5]");
  EXPECT_EQ(g->outputs[2]->type.to_string(), "int64[2,2]");
  auto out = run(g, {{"x", test::random_tensor(DType::kFloat32, {2, 3}, 3)}});
  ASSERT_TRUE(out.ok()) << out.status().message();
  EXPECT_EQ(out->at(2).dims(), (Dims{2, 2}));
}

TEST(ControlFlowIf, NestedIfReadsValuesTwoScopesUp) {
  auto g = std::make_shared<Graph>();
  g->name = "main";
  Value* c1 = g->add_value("c1", tt(DType::kBool, {}));
  Value* c2 = g->add_value("c2", tt(DType::kBool, {}));
  Value* x = g->add_value("x", tt(DType::kFloat32, {4}));
  g->inputs = {c1, c2, x};
  auto outer_then = subgraph(*g, "outer_then");
  auto inner_then = subgraph(*outer_then, "inner_then");
  Value* a = inner_then->add_value("a");
  op(*inner_then, "Add", {x, x}, a);
  inner_then->outputs = {a};
  auto inner_else = subgraph(*outer_then, "inner_else");
  Value* m = inner_else->add_value("m");
  op(*inner_else, "Mul", {x, x}, m);
  inner_else->outputs = {m};
  Value* inner_out = outer_then->add_value("inner_out");
  Node* inner = outer_then->add_node("If", {c2}, {inner_out}, "inner_if", "", 21);
  inner->attrs.set("then_branch", inner_then);
  inner->attrs.set("else_branch", inner_else);
  outer_then->outputs = {inner_out};
  auto outer_else = subgraph(*g, "outer_else");
  Value* id = outer_else->add_value("id");
  op(*outer_else, "Identity", {x}, id);
  outer_else->outputs = {id};
  Value* y = g->add_value("y");
  Node* outer = g->add_node("If", {c1}, {y}, "outer_if", "", 21);
  outer->attrs.set("then_branch", outer_then);
  outer->attrs.set("else_branch", outer_else);
  g->outputs = {y};

  Tensor xv = test::random_tensor(DType::kFloat32, {4}, 11);
  for (auto [b1, b2] : {std::pair{true, true}, {true, false}, {false, true}}) {
    auto out = run(g, {{"c1", Tensor::scalar<bool>(b1)}, {"c2", Tensor::scalar<bool>(b2)}, {"x", xv}});
    ASSERT_TRUE(out.ok()) << out.status().message();
    Tensor want(DType::kFloat32, {4});
    for (int i = 0; i < 4; ++i) {
      float v = xv.data<float>()[i];
      want.data<float>()[i] = !b1 ? v : (b2 ? v + v : v * v);
    }
    EXPECT_TRUE(test::tensors_close(out->at(0), want)) << b1 << b2;
  }
  EXPECT_EQ(y->type.to_string(), "float32[4]");
}

TEST(ControlFlowIf, BranchWithWrongOutputCountNamesTheNode) {
  GraphPtr g = make_if_graph();
  const Graph* else_g = g->nodes()[0]->attrs.graph("else_branch");
  const_cast<Graph*>(else_g)->outputs.pop_back();
  Status st = infer_shapes(*g);
  EXPECT_TRUE(has_error(st, "node 'the_if' (If, opset 21)"));
  EXPECT_TRUE(has_error(st, "else_branch has 2 outputs, but the node has 3"));
}

TEST(ControlFlowIf, ErrorsNameTheNode) {
  {  // branches disagree on a dtype
    GraphPtr g = make_if_graph();
    Graph* else_g = const_cast<Graph*>(g->nodes()[0]->attrs.graph("else_branch"));
    else_g->outputs[1] = else_g->add_constant("bad", Tensor::from_vector<int64_t>({1}, {1}));
    EXPECT_TRUE(has_error(infer_shapes(*g), "'the_if' (If, opset 21): output 1 is float32 in then_branch but int64"));
  }
  {  // missing branch
    GraphPtr g = make_if_graph();
    g->nodes()[0]->attrs.erase("else_branch");
    EXPECT_TRUE(has_error(infer_shapes(*g), "'the_if' (If, opset 21): the graph attribute 'else_branch' is required"));
  }
  {  // cond of the wrong dtype / more than one element
    GraphPtr g = make_if_graph();
    g->inputs[0]->type = tt(DType::kFloat32, {});
    EXPECT_TRUE(has_error(infer_shapes(*g), "'the_if' (If, opset 21): cond must be bool"));
    g->inputs[0]->type = tt(DType::kBool, {2});
    EXPECT_TRUE(has_error(infer_shapes(*g), "cond must have one element"));
  }
}


// ---- Loop. ----

struct LoopSpec {
  bool with_m = true;
  bool m_constant = false;
  int64_t m = 10;
  bool with_cond = true;
  bool cond_constant = true;
  bool init_cond = true;
  int64_t stop_after = 4;  // body cond: i < stop_after
};

// Body: acc_out = acc_in + x (x from the outer scope), cond_out = i < stop_after,
// scan outputs acc_out * acc_out and i.
GraphPtr make_loop_graph(const LoopSpec& spec) {
  auto g = std::make_shared<Graph>();
  g->name = "main";
  Value* x = g->add_value("x", tt(DType::kFloat32, {3}));
  Value* acc0 = g->add_value("acc0", tt(DType::kFloat32, {3}));
  g->inputs = {x, acc0};
  Value* m = nullptr;
  if (spec.with_m && spec.m_constant) {
    m = g->add_constant("M", Tensor::scalar<int64_t>(spec.m));
  } else if (spec.with_m) {
    m = g->add_value("M", tt(DType::kInt64, {}));
    g->inputs.push_back(m);
  }
  Value* cond = nullptr;
  if (spec.with_cond && spec.cond_constant) {
    cond = g->add_constant("cond", Tensor::scalar<bool>(spec.init_cond));
  } else if (spec.with_cond) {
    cond = g->add_value("cond", tt(DType::kBool, {}));
    g->inputs.push_back(cond);
  }
  auto body = subgraph(*g, "body");
  Value* i = body->add_value("i", tt(DType::kInt64, {}));
  Value* cond_in = body->add_value("cond_in", tt(DType::kBool, {}));
  Value* acc_in = body->add_value("acc_in", tt(DType::kFloat32, {3}));
  body->inputs = {i, cond_in, acc_in};
  Value* acc_out = body->add_value("acc_out");
  Value* cond_out = body->add_value("cond_out");
  Value* sq = body->add_value("sq");
  Value* iter = body->add_value("iter");
  op(*body, "Add", {acc_in, x}, acc_out);
  op(*body, "Less", {i, body->add_constant("stop", Tensor::scalar<int64_t>(spec.stop_after))}, cond_out);
  op(*body, "Mul", {acc_out, acc_out}, sq);
  op(*body, "Identity", {i}, iter);
  body->outputs = {cond_out, acc_out, sq, iter};
  std::vector<Value*> outs{g->add_value("acc"), g->add_value("squares"), g->add_value("iters")};
  Node* n = g->add_node("Loop", {m, cond, acc0}, outs, "the_loop", "", 21);
  n->attrs.set("body", body);
  g->outputs = outs;
  return g;
}

// Runs the loop graph and checks it ran `trips` iterations.
void check_loop(const LoopSpec& spec, int64_t trips) {
  GraphPtr g = make_loop_graph(spec);
  Tensor x = test::random_tensor(DType::kFloat32, {3}, 5);
  Tensor acc0 = test::random_tensor(DType::kFloat32, {3}, 6);
  std::map<std::string, Tensor> feeds{{"x", x}, {"acc0", acc0}};
  if (spec.with_m && !spec.m_constant) feeds["M"] = Tensor::scalar<int64_t>(spec.m);
  if (spec.with_cond && !spec.cond_constant) feeds["cond"] = Tensor::scalar<bool>(spec.init_cond);
  auto out = run(g, feeds);
  ASSERT_TRUE(out.ok()) << out.status().message();
  Tensor acc = acc0.clone();
  Tensor squares(DType::kFloat32, {trips, 3});
  Tensor iters(DType::kInt64, {trips});
  for (int64_t t = 0; t < trips; ++t) {
    for (int k = 0; k < 3; ++k) {
      acc.data<float>()[k] += x.data<float>()[k];
      squares.data<float>()[t * 3 + k] = acc.data<float>()[k] * acc.data<float>()[k];
    }
    iters.data<int64_t>()[t] = t;
  }
  EXPECT_TRUE(test::tensors_close(out->at(0), acc));
  EXPECT_TRUE(test::tensors_close(out->at(1), squares));
  EXPECT_TRUE(test::tensors_close(out->at(2), iters));
}

TEST(ControlFlowLoop, CarriedStateScanOutputsAndEarlyExit) {
  LoopSpec spec;  // M = 10, cond = true, the body stops after i = 4: five iterations
  check_loop(spec, 5);
  GraphPtr g = make_loop_graph(spec);
  ASSERT_TRUE(infer_shapes(*g).ok());
  EXPECT_EQ(g->outputs[0]->type.to_string(), "float32[3]");
  EXPECT_EQ(g->outputs[1]->type.to_string(), "float32[?,3]");  // cond may end it early
  EXPECT_EQ(g->outputs[2]->type.to_string(), "int64[?]");
  spec.cond_constant = false;  // the same with runtime inputs
  spec.stop_after = 20;        // now M ends it
  spec.with_m = true;
  check_loop(spec, 10);
}

TEST(ControlFlowLoop, WithoutCondInputTheBodyCondIsIgnored) {
  LoopSpec spec;
  spec.with_cond = false;
  spec.m = 7;
  spec.stop_after = 2;  // would stop after 3 iterations if the body's cond counted
  check_loop(spec, 7);
  spec.m_constant = true;  // a constant M and no cond: the trip count is known at import
  check_loop(spec, 7);
  GraphPtr g = make_loop_graph(spec);
  ASSERT_TRUE(infer_shapes(*g).ok());
  EXPECT_EQ(g->outputs[1]->type.to_string(), "float32[7,3]");
  EXPECT_EQ(g->outputs[2]->type.to_string(), "int64[7]");
}

TEST(ControlFlowLoop, WhileLoopWithoutTripCount) {
  LoopSpec spec;
  spec.with_m = false;
  spec.stop_after = 2;  // i = 0, 1, 2
  check_loop(spec, 3);
  spec.cond_constant = false;
  check_loop(spec, 3);
}

TEST(ControlFlowLoop, ZeroIterationsGiveInitialValuesAndEmptyScanOutputs) {
  for (bool by_cond : {false, true}) {
    LoopSpec spec;
    if (by_cond) spec.init_cond = false;
    else spec.m = 0;
    spec.cond_constant = false;
    check_loop(spec, 0);  // squares: float32[0x3] from the body's declared [3]; iters: int64[0]
  }
  LoopSpec negative;
  negative.m = -3;
  negative.with_cond = false;
  check_loop(negative, 0);
}

TEST(ControlFlowLoop, CarriedValueMayChangeShapeBetweenIterations) {
  auto g = std::make_shared<Graph>();
  g->name = "main";
  Value* x = g->add_value("x", tt(DType::kFloat32, {2}));
  Value* m = g->add_value("M", tt(DType::kInt64, {}));
  g->inputs = {x, m};
  auto body = subgraph(*g, "body");
  Value* i = body->add_value("i", tt(DType::kInt64, {}));
  Value* c = body->add_value("c", tt(DType::kBool, {}));
  Value* seq_in = body->add_value("seq_in", tt(DType::kFloat32, {2}));
  body->inputs = {i, c, seq_in};
  Value* seq_out = body->add_value("seq_out");
  op(*body, "Concat0", {seq_in, x}, seq_out);
  body->outputs = {c, seq_out};
  Value* y = g->add_value("y");
  Node* n = g->add_node("Loop", {m, nullptr, x}, {y}, "grow", "", 21);
  n->attrs.set("body", body);
  g->outputs = {y};
  ASSERT_TRUE(infer_shapes(*g).ok());
  EXPECT_EQ(y->type.to_string(), "float32[?]");  // [2] after no iteration, more after some
  Tensor xv = test::random_tensor(DType::kFloat32, {2}, 9);
  auto out = run(g, {{"x", xv}, {"M", Tensor::scalar<int64_t>(3)}});
  ASSERT_TRUE(out.ok()) << out.status().message();
  ASSERT_EQ(out->at(0).dims(), (Dims{8}));
  for (int k = 0; k < 8; ++k) EXPECT_EQ(out->at(0).data<float>()[k], xv.data<float>()[k % 2]);

  // The same value as a scan output is an error: scan outputs must keep their shape.
  Value* carried = g->add_value("carried");
  n->outputs = {carried, y};
  body->outputs = {c, seq_out, seq_out};
  out = run(g, {{"x", xv}, {"M", Tensor::scalar<int64_t>(3)}});
  EXPECT_TRUE(has_error(out.status(), "node 'grow' (Loop, opset 21): scan output 1 is float32[6] in iteration 1 but float32[4] in iteration 0"));
}

// Subgraphs (a Loop body reading the outer scope, nested If branches) go through the builder's
// passes and the plan file, and run the same from the loaded plan.
TEST(ControlFlowPlan, LoopAndNestedIfRunFromASavedPlan) {
  LoopSpec spec;
  spec.cond_constant = false;
  Tensor v = test::random_tensor(DType::kFloat32, {3}, 21);
  std::map<std::string, Tensor> feeds{{"x", v}, {"acc0", v}, {"M", Tensor::scalar<int64_t>(6)},
                                      {"cond", Tensor::scalar<bool>(true)}};
  auto direct = run(make_loop_graph(spec), feeds);
  ASSERT_TRUE(direct.ok()) << direct.status().message();
  Model model;
  model.graph = make_loop_graph(spec);
  auto plan = build_plan(std::move(model), BuildOptions{});
  ASSERT_TRUE(plan.ok()) << plan.status().message();
  const std::string path =
      (std::filesystem::temp_directory_path() / ("kiln_cf_plan_" + std::to_string(::getpid()) + ".kplan")).string();
  ASSERT_TRUE(save_plan(*plan, path).ok());
  auto engine = Engine::load(path);
  std::filesystem::remove(path);
  ASSERT_TRUE(engine.ok()) << engine.status().message();
  auto ctx = (*engine)->create_context();
  ASSERT_TRUE(ctx.ok());
  auto planned = (*ctx)->run(feeds);
  ASSERT_TRUE(planned.ok()) << planned.status().message();
  ASSERT_EQ(planned->size(), 3u);
  for (size_t i = 0; i < 3; ++i) EXPECT_TRUE(test::tensors_close(planned->at(i), direct->at(i), 0, 0));
  EXPECT_EQ(planned->at(1).dims(), (Dims{5, 3}));
}

TEST(ControlFlowLoop, ErrorsNameTheNode) {
  {  // body with the wrong number of inputs
    GraphPtr g = make_loop_graph({});
    Graph* body = const_cast<Graph*>(g->nodes()[0]->attrs.graph("body"));
    body->inputs.pop_back();
    EXPECT_TRUE(has_error(infer_shapes(*g), "node 'the_loop' (Loop, opset 21): body takes 2 inputs, expected 3"));
  }
  {  // body with the wrong number of outputs
    GraphPtr g = make_loop_graph({});
    g->nodes()[0]->outputs.pop_back();
    g->outputs.pop_back();
    EXPECT_TRUE(has_error(infer_shapes(*g), "'the_loop' (Loop, opset 21): body has 4 outputs, expected 3"));
  }
  {  // neither M nor cond: the loop would never end
    LoopSpec spec;
    spec.with_m = spec.with_cond = false;
    GraphPtr g = make_loop_graph(spec);
    ShapeInferenceOptions strict;
    strict.allow_unknown_ops = false;
    Status st = infer_shapes(*g, strict);
    EXPECT_EQ(st.code(), StatusCode::kUnsupported);
    EXPECT_TRUE(has_error(st, "'the_loop' (Loop, opset 21): has neither a trip count"));
  }
  {  // M of the wrong dtype
    LoopSpec spec;
    spec.with_m = false;
    GraphPtr g = make_loop_graph(spec);
    g->nodes()[0]->inputs[0] = g->add_constant("M", Tensor::scalar<float>(3.f));
    EXPECT_TRUE(has_error(infer_shapes(*g), "'the_loop' (Loop, opset 21): trip count M must be int64"));
  }
  {  // the body's cond output is not a bool
    GraphPtr g = make_loop_graph({});
    Graph* body = const_cast<Graph*>(g->nodes()[0]->attrs.graph("body"));
    body->outputs[0] = body->inputs[0];
    Tensor v = Tensor::from_vector<float>({3}, {1, 2, 3});
    auto out = run(g, {{"x", v}, {"acc0", v}, {"M", Tensor::scalar<int64_t>(2)}});
    EXPECT_TRUE(has_error(out.status(), "'the_loop' (Loop, opset 21): the body's cond output must be bool"));
  }
}

}  // namespace
}  // namespace kiln
