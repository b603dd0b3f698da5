// The inline-constant-if pass: an If with a constant condition becomes its chosen branch (with a
// nested If that reads a branch-local value moving along); other Ifs stay; outputs are unchanged.
#include <gtest/gtest.h>

#include "control_flow_test_util.hpp"
#include "passes/pass.hpp"

namespace kiln {
namespace {

using namespace cftest;

// main(x, c2): y, k = If(c1 = <constant>) with
//   then: a = x + x; inner = If(c2) { then: a * x, else: Identity(a) }; return inner, [1, 2]
//   else: return Identity(x), [3, 4]
GraphPtr make_graph(bool c1) {
  auto g = std::make_shared<Graph>();
  g->name = "main";
  Value* x = g->add_value("x", tt(DType::kFloat32, {4}));
  Value* c2 = g->add_value("c2", tt(DType::kBool, {}));
  g->inputs = {x, c2};
  auto then_g = subgraph(*g, "then");
  Value* a = then_g->add_value("a");
  op(*then_g, "Add", {x, x}, a);
  auto inner_then = subgraph(*then_g, "inner_then");
  Value* m = inner_then->add_value("m");
  op(*inner_then, "Mul", {a, x}, m);  // reads `a`, local to the branch being inlined
  inner_then->outputs = {m};
  auto inner_else = subgraph(*then_g, "inner_else");
  Value* id = inner_else->add_value("id");
  op(*inner_else, "Identity", {a}, id);
  inner_else->outputs = {id};
  Value* inner_out = then_g->add_value("inner_out");
  Node* inner = then_g->add_node("If", {c2}, {inner_out}, "inner_if", "", 21);
  inner->attrs.set("then_branch", inner_then);
  inner->attrs.set("else_branch", inner_else);
  then_g->outputs = {inner_out, then_g->add_constant("k_then", f32({2}, {1, 2}))};
  auto else_g = subgraph(*g, "else");
  Value* ex = else_g->add_value("ex");
  op(*else_g, "Identity", {x}, ex);
  else_g->outputs = {ex, else_g->add_constant("k_else", f32({2}, {3, 4}))};
  Value* y = g->add_value("y");
  Value* k = g->add_value("k");
  Node* n = g->add_node("If", {g->add_constant("c1", Tensor::scalar<bool>(c1))}, {y, k}, "outer_if", "", 21);
  n->attrs.set("then_branch", then_g);
  n->attrs.set("else_branch", else_g);
  g->outputs = {y, k};
  return g;
}

TEST(InlineConstantIf, ReplacesTheIfByItsChosenBranch) {
  Tensor x = test::random_tensor(DType::kFloat32, {4}, 17);
  for (bool c1 : {true, false}) {
    SCOPED_TRACE(c1);
    for (bool c2 : {true, false}) {
      std::map<std::string, Tensor> feeds{{"x", x}, {"c2", Tensor::scalar<bool>(c2)}};
      auto before = run(make_graph(c1), feeds);
      ASSERT_TRUE(before.ok()) << before.status().message();
      GraphPtr g = make_graph(c1);
      ASSERT_TRUE(infer_shapes(*g).ok());
      auto changed = make_inline_constant_if_pass()->run(*g);
      ASSERT_TRUE(changed.ok() && *changed);
      // What is left: no If on a constant; the nested If (then) now hangs off the main graph.
      int ifs = 0;
      for (const auto& n : g->nodes()) {
        if (n->op_type != "If") continue;
        ++ifs;
        EXPECT_EQ(n->inputs[0]->name, "c2");
        for (const Graph* sg : n->subgraphs()) EXPECT_EQ(sg->parent, g.get());
      }
      EXPECT_EQ(ifs, c1 ? 1 : 0);
      EXPECT_EQ(g->outputs[0]->name, "y");  // graph outputs keep their names
      EXPECT_EQ(g->outputs[1]->name, "k");
      auto after = run(g, feeds);
      ASSERT_TRUE(after.ok()) << after.status().message();
      // Naive expectation, and the same as before the pass.
      Tensor want(DType::kFloat32, {4});
      for (int i = 0; i < 4; ++i) {
        float v = x.data<float>()[i];
        want.data<float>()[i] = !c1 ? v : (c2 ? (v + v) * v : v + v);
      }
      EXPECT_TRUE(test::tensors_close(after->at(0), want));
      EXPECT_TRUE(test::tensors_close(after->at(0), before->at(0), 0, 0));
      EXPECT_TRUE(test::tensors_close(after->at(1), c1 ? f32({2}, {1, 2}) : f32({2}, {3, 4})));
    }
  }
}

TEST(InlineConstantIf, KeepsIfsOnRuntimeConditions) {
  GraphPtr g = make_graph(true);
  g->nodes()[0]->inputs[0] = g->find_value("c2");
  ASSERT_TRUE(infer_shapes(*g).ok());
  auto changed = make_inline_constant_if_pass()->run(*g);
  ASSERT_TRUE(changed.ok());
  EXPECT_FALSE(*changed);
  ASSERT_EQ(g->nodes().size(), 1u);
  EXPECT_EQ(g->nodes()[0]->name, "outer_if");
}

TEST(InlineConstantIf, InlinesInsideSubgraphs) {
  // The outer If runs on c2 (a graph input); its then branch holds an If on a constant.
  GraphPtr g = make_graph(true);
  Node* outer = g->nodes()[0].get();
  outer->inputs[0] = g->find_value("c2");
  Graph* then_g = const_cast<Graph*>(outer->attrs.graph("then_branch"));
  Node* inner = nullptr;
  for (const auto& n : then_g->nodes())
    if (n->op_type == "If") inner = n.get();
  ASSERT_NE(inner, nullptr);
  inner->inputs[0] = then_g->add_constant("always", Tensor::scalar<bool>(true));
  ASSERT_TRUE(infer_shapes(*g).ok());
  auto changed = make_inline_constant_if_pass()->run(*g);
  ASSERT_TRUE(changed.ok() && *changed);
  for (const auto& n : then_g->nodes()) EXPECT_NE(n->op_type, "If");
  Tensor x = test::random_tensor(DType::kFloat32, {4}, 19);
  auto out = run(g, {{"x", x}, {"c2", Tensor::scalar<bool>(true)}});
  ASSERT_TRUE(out.ok()) << out.status().message();
  for (int i = 0; i < 4; ++i) {
    float v = x.data<float>()[i];
    EXPECT_FLOAT_EQ(out->at(0).data<float>()[i], (v + v) * v);
  }
}

}  // namespace
}  // namespace kiln
