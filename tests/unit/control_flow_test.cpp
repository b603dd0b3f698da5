// If, Loop and Scan on the CPU backend: graphs with subgraphs built directly in C++, checked
// against naive computations, plus inference of their output types and their error cases.
#include <gtest/gtest.h>

#include <cmath>

#include "ops/infer_util.hpp"
#include "op_test_util.hpp"

namespace kiln {
namespace {

// ---- Test-only ops (domain "kiln.test"), so these tests do not depend on other op families. ----

// Elementwise float32/int64 op where each side has the output's dims or one element.
template <typename F>
Status binary_kernel(KernelContext& ctx, F f) {
  const Tensor& a = ctx.input(0);
  const Tensor& b = ctx.input(1);
  if (a.dtype() != b.dtype()) return ctx.error("dtype mismatch");
  Tensor& out = ctx.output(0);
  const int64_t n = out.numel();
  const int64_t sa = a.numel() == 1 ? 0 : 1, sb = b.numel() == 1 ? 0 : 1;
  if (a.dtype() == DType::kFloat32) {
    for (int64_t i = 0; i < n; ++i) f(a.data<float>()[i * sa], b.data<float>()[i * sb], &out, i);
  } else if (a.dtype() == DType::kInt64) {
    for (int64_t i = 0; i < n; ++i) f(a.data<int64_t>()[i * sa], b.data<int64_t>()[i * sb], &out, i);
  } else {
    return ctx.unsupported_dtype(a.dtype());
  }
  return Status::Ok();
}

template <typename T>
void store(Tensor* out, int64_t i, T v) {
  if (out->dtype() == DType::kFloat32) out->data<float>()[i] = static_cast<float>(v);
  else if (out->dtype() == DType::kInt64) out->data<int64_t>()[i] = static_cast<int64_t>(v);
  else out->data<bool>()[i] = static_cast<bool>(v);
}

Status add_kernel(KernelContext& ctx) {
  return binary_kernel(ctx, [](auto x, auto y, Tensor* o, int64_t i) { store(o, i, x + y); });
}
Status mul_kernel(KernelContext& ctx) {
  return binary_kernel(ctx, [](auto x, auto y, Tensor* o, int64_t i) { store(o, i, x * y); });
}
Status less_kernel(KernelContext& ctx) {
  return binary_kernel(ctx, [](auto x, auto y, Tensor* o, int64_t i) { store(o, i, x < y); });
}

// Concatenation of two float32 tensors along axis 0: a value whose shape grows in a loop.
Status concat0_infer(InferContext& ctx) {
  Shape s = ctx.input(0).shape;
  if (s.has_rank() && s.rank() > 0) s.dims()[0] = Dim();
  ctx.set_output(0, ctx.input(0).dtype, s);
  return Status::Ok();
}
Status concat0_kernel(KernelContext& ctx) {
  const Tensor& a = ctx.input(0);
  const Tensor& b = ctx.input(1);
  Dims d = a.dims();
  d[0] += b.dims()[0];
  Tensor& out = ctx.allocate_output(0, a.dtype(), d);
  std::memcpy(out.raw_data(), a.raw_data(), a.nbytes());
  std::memcpy(static_cast<char*>(out.raw_data()) + a.nbytes(), b.raw_data(), b.nbytes());
  return Status::Ok();
}

KILN_REGISTER_OP({.name = "Add", .domain = "kiln.test", .min_inputs = 2, .max_inputs = 2,
                  .infer = infer_broadcast});
KILN_REGISTER_OP({.name = "Mul", .domain = "kiln.test", .min_inputs = 2, .max_inputs = 2,
                  .infer = infer_broadcast});
KILN_REGISTER_OP({.name = "Less", .domain = "kiln.test", .min_inputs = 2, .max_inputs = 2,
                  .infer = infer_broadcast_bool});
KILN_REGISTER_OP({.name = "Concat0", .domain = "kiln.test", .min_inputs = 2, .max_inputs = 2,
                  .infer = concat0_infer});
KILN_REGISTER_CPU_KERNEL_DOMAIN("kiln.test", "Add", add_kernel);
KILN_REGISTER_CPU_KERNEL_DOMAIN("kiln.test", "Mul", mul_kernel);
KILN_REGISTER_CPU_KERNEL_DOMAIN("kiln.test", "Less", less_kernel);
KILN_REGISTER_CPU_KERNEL_DOMAIN("kiln.test", "Concat0", concat0_kernel);

// ---- Graph building helpers. ----

TensorType tt(DType t, Dims d) { return {t, Shape::from_dims(d)}; }

GraphPtr subgraph(Graph& parent, const std::string& name) {
  auto g = std::make_shared<Graph>();
  g->name = name;
  g->parent = &parent;
  return g;
}

Node* op(Graph& g, const std::string& type, std::vector<Value*> ins, Value* out) {
  const bool test_op = type != "Identity";
  return g.add_node(type, std::move(ins), {out}, g.name + "_" + out->name, test_op ? "kiln.test" : "", 1);
}

Expected<std::vector<Tensor>> run(const GraphPtr& g, const std::map<std::string, Tensor>& feeds) {
  KILN_RETURN_IF_ERROR(infer_shapes(*g));
  KILN_ASSIGN_OR_RETURN(auto exec, CpuExecutor::create(g));
  return exec->run(feeds);
}

Tensor f32(Dims d, std::vector<float> v) { return Tensor::from_vector<float>(std::move(d), v); }

::testing::AssertionResult has_error(const Status& st, const std::string& part) {
  if (st.ok()) return ::testing::AssertionFailure() << "expected an error containing '" << part << "'";
  if (st.message().find(part) == std::string::npos)
    return ::testing::AssertionFailure() << "error '" << st.message() << "' lacks '" << part << "'";
  return ::testing::AssertionSuccess();
}

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

}  // namespace
}  // namespace kiln
