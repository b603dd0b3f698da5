// kiln.FusedMatMul (CPU kernel vs a naive loop) and the matmul-bias fusion pass (structure after the
// pass, and equal CPU outputs before and after).
#include "op_test_util.hpp"
#include "passes/pass.hpp"

namespace kiln::test {
namespace {

// y[r, j] = act(sum_p a[r, p] * b[p, j] + bias[j]) over A's rows, in double.
std::vector<double> naive_fused(const Tensor& a, const Tensor& b, const Tensor& bias, bool relu,
                                const Tensor* residual = nullptr) {
  Tensor af = a.cast(DType::kFloat64), bf = b.cast(DType::kFloat64), cf = bias.cast(DType::kFloat64);
  Tensor rf = residual ? residual->cast(DType::kFloat64) : Tensor();
  const int64_t k = b.dim(0), n = b.dim(1), rows = a.numel() / k;
  std::vector<double> y(static_cast<size_t>(rows * n));
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t j = 0; j < n; ++j) {
      double s = cf.data<double>()[j] + (residual ? rf.data<double>()[r * n + j] : 0.0);
      for (int64_t p = 0; p < k; ++p) s += af.data<double>()[r * k + p] * bf.data<double>()[p * n + j];
      y[static_cast<size_t>(r * n + j)] = relu ? std::max(s, 0.0) : s;
    }
  return y;
}

OpCall fused_call(DType t, Dims a, int64_t n, const std::string& act) {
  const int64_t k = a.back();
  OpCall call{.op_type = "FusedMatMul",
              .inputs = {random_tensor(t, a, 1), random_tensor(t, {k, n}, 2), random_tensor(t, {n}, 3)},
              .domain = "kiln"};
  call.attrs.set("activation", act);
  return call;
}

TEST(FusedMatMulOp, MatchesNaiveForDtypesRanksAndRelu) {
  for (DType t : {DType::kFloat32, DType::kFloat16, DType::kBFloat16, DType::kFloat64})
    for (const std::string act : {"", "Relu"})
      for (const Dims& a : {Dims{5, 7}, Dims{2, 3, 4, 7}}) {
        SCOPED_TRACE(std::string(dtype_name(t)) + " act '" + act + "' A " + dims_to_string(a));
        OpCall call = fused_call(t, a, 6, act);
        auto out = run_op(call);
        ASSERT_TRUE(out.ok()) << out.status().message();
        Dims expect_dims = a;
        expect_dims.back() = 6;
        ASSERT_EQ((*out)[0].dims(), expect_dims);
        ASSERT_EQ((*out)[0].dtype(), t);
        auto expect = naive_fused(call.inputs[0], call.inputs[1], call.inputs[2], act == "Relu");
        Tensor y = (*out)[0].cast(DType::kFloat64);
        const double tol = t == DType::kFloat32 || t == DType::kFloat64 ? 1e-5 : t == DType::kFloat16 ? 1e-2 : 5e-2;
        bool any_negative_clamped = false;
        for (size_t i = 0; i < expect.size(); ++i) {
          EXPECT_NEAR(y.data<double>()[i], expect[i], tol * (1 + std::abs(expect[i]))) << i;
          any_negative_clamped |= act == "Relu" && expect[i] == 0.0;
        }
        if (act == "Relu") {
          EXPECT_TRUE(any_negative_clamped);  // the ReLU had something to do
        }
      }
}

TEST(FusedMatMulOp, ResidualInput) {
  for (DType t : {DType::kFloat32, DType::kFloat16}) {
    OpCall call = fused_call(t, {2, 3, 8}, 5, "Relu");
    call.inputs.push_back(random_tensor(t, {2, 3, 5}, 9));
    auto out = run_op(call);
    ASSERT_TRUE(out.ok()) << out.status().message();
    auto expect = naive_fused(call.inputs[0], call.inputs[1], call.inputs[2], true, &call.inputs[3]);
    Tensor y = (*out)[0].cast(DType::kFloat64);
    const double tol = t == DType::kFloat32 ? 1e-5 : 1e-2;
    for (size_t i = 0; i < expect.size(); ++i) EXPECT_NEAR(y.data<double>()[i], expect[i], tol * (1 + std::abs(expect[i])));
  }
  OpCall wrong = fused_call(DType::kFloat32, {2, 3, 8}, 5, "");
  wrong.inputs.push_back(random_tensor(DType::kFloat32, {3, 5}, 9));  // would broadcast: not a residual
  auto r = run_op(wrong);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("residual"), std::string::npos);
}

TEST(FusedMatMulOp, BadActivationAndShapesNameTheNode) {
  OpCall bad = fused_call(DType::kFloat32, {3, 4}, 2, "Gelu");
  auto r = run_op(bad);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("FusedMatMul_node"), std::string::npos);
  EXPECT_NE(r.status().message().find("activation"), std::string::npos);
  OpCall wrong_bias = fused_call(DType::kFloat32, {3, 4}, 2, "");
  wrong_bias.inputs[2] = random_tensor(DType::kFloat32, {3}, 4);
  r = run_op(wrong_bias);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("bias"), std::string::npos);
  OpCall b3 = fused_call(DType::kFloat32, {3, 4}, 2, "");
  b3.inputs[1] = random_tensor(DType::kFloat32, {1, 4, 2}, 4);
  EXPECT_FALSE(run_op(b3).ok());
}

// x [2, 3, 4] -> MatMul(W [4, 5]) -> Add(bias) [-> Relu] -> y, with optional extra readers.
struct Chain {
  GraphPtr g = std::make_shared<Graph>();
  Value *x, *mid, *sum, *y;
};

Chain make_chain(Tensor bias, bool bias_first, bool relu, DType t = DType::kFloat32) {
  Chain c;
  Graph& g = *c.g;
  c.x = g.add_value("x", {t, Shape::from_dims({2, 3, 4})});
  g.inputs = {c.x};
  Value* w = g.add_constant("w", random_tensor(t, {4, 5}, 7));
  Value* b = g.add_constant("bias", std::move(bias));
  c.mid = g.add_value("mid");
  c.sum = g.add_value("sum");
  g.add_node("MatMul", {c.x, w}, {c.mid}, "mm");
  g.add_node("Add", bias_first ? std::vector<Value*>{b, c.mid} : std::vector<Value*>{c.mid, b}, {c.sum}, "add");
  c.y = c.sum;
  if (relu) {
    c.y = g.add_value("y");
    g.add_node("Relu", {c.sum}, {c.y}, "relu");
  }
  g.outputs = {c.y};
  return c;
}

Expected<std::vector<Tensor>> run_graph(const GraphPtr& g, const Tensor& x) {
  KILN_RETURN_IF_ERROR(infer_shapes(*g));
  KILN_ASSIGN_OR_RETURN(auto exec, CpuExecutor::create(g));
  return exec->run({{"x", x}});
}

Expected<bool> run_fusion(Graph& g) {
  KILN_RETURN_IF_ERROR(infer_shapes(g));
  KILN_ASSIGN_OR_RETURN(bool changed, make_matmul_bias_fusion_pass()->run(g));
  KILN_RETURN_IF_ERROR(make_dead_code_pass()->run(g).status());
  KILN_RETURN_IF_ERROR(infer_shapes(g));
  return changed;
}

TEST(MatMulBiasFusion, FusesBiasAndReluKeepingOutputs) {
  const Tensor x = random_tensor(DType::kFloat32, {2, 3, 4}, 9);
  struct Case {
    Tensor bias;
    bool bias_first, relu;
    std::string fused;
  };
  const Case cases[] = {
      {random_tensor(DType::kFloat32, {5}, 3), false, false, "mm,add"},
      {random_tensor(DType::kFloat32, {1, 1, 5}, 3), true, true, "mm,add,relu"},
  };
  for (const Case& cs : cases) {
    Chain before = make_chain(cs.bias, cs.bias_first, cs.relu);
    Chain after = make_chain(cs.bias, cs.bias_first, cs.relu);
    auto expect = run_graph(before.g, x);
    ASSERT_TRUE(expect.ok()) << expect.status().message();
    auto changed = run_fusion(*after.g);
    ASSERT_TRUE(changed.ok()) << changed.status().message();
    EXPECT_TRUE(*changed);
    ASSERT_EQ(after.g->nodes().size(), 1u);
    const Node& n = *after.g->nodes()[0];
    EXPECT_EQ(n.op_type, "FusedMatMul");
    EXPECT_EQ(n.domain, "kiln");
    EXPECT_EQ(n.attrs.s("activation"), cs.relu ? "Relu" : "");
    EXPECT_EQ(n.attrs.s("kiln_fused"), cs.fused);
    EXPECT_EQ(n.inputs[2]->constant->dims(), Dims{5});  // the bias as a row
    EXPECT_EQ(n.outputs[0], after.y);
    auto got = run_graph(after.g, x);
    ASSERT_TRUE(got.ok()) << got.status().message();
    EXPECT_TRUE(tensors_close((*got)[0], (*expect)[0], 1e-5));
  }
}

// MatMul -> Add(bias) -> Gelu: a GELU epilogue ("GeluTanh") for the tanh form in any float type and
// for the erf form only in float16/bfloat16; float32 erf Gelu stays exact (not fused).
TEST(MatMulBiasFusion, GeluBecomesATanhEpilogueWhereExactEnough) {
  struct Case {
    DType t;
    std::string approximate;
    bool fused;
  };
  const Case cases[] = {{DType::kFloat16, "none", true},
                        {DType::kBFloat16, "none", true},
                        {DType::kFloat32, "tanh", true},
                        {DType::kFloat32, "none", false}};
  for (const Case& cs : cases) {
    auto make = [&] {
      Chain c = make_chain(random_tensor(cs.t, {5}, 3), false, false, cs.t);
      c.y = c.g->add_value("y");
      Node* gelu = c.g->add_node("Gelu", {c.sum}, {c.y}, "gelu", "", 21);
      gelu->attrs.set("approximate", cs.approximate);
      c.g->outputs = {c.y};
      return c;
    };
    Chain before = make(), after = make();
    const Tensor x = random_tensor(cs.t, {2, 3, 4}, 9, -2.0, 2.0);
    auto expect = run_graph(before.g, x);
    ASSERT_TRUE(expect.ok()) << expect.status().message();
    auto changed = run_fusion(*after.g);
    ASSERT_TRUE(changed.ok()) << changed.status().message();
    const std::string what = std::string(dtype_name(cs.t)) + " " + cs.approximate;
    if (!cs.fused) {
      EXPECT_EQ(after.g->nodes().back()->op_type, "Gelu") << what;
      EXPECT_EQ(after.g->nodes().front()->attrs.s("activation", ""), "") << what;
    } else {
      ASSERT_EQ(after.g->nodes().size(), 1u) << what;
      EXPECT_EQ(after.g->nodes()[0]->attrs.s("activation"), "GeluTanh") << what;
      EXPECT_EQ(after.g->nodes()[0]->attrs.s("kiln_fused"), "mm,add,gelu") << what;
    }
    auto got = run_graph(after.g, x);
    ASSERT_TRUE(got.ok()) << got.status().message();
    // The fused float types' own rounding bounds the tanh approximation's error.
    const double tol = cs.t == DType::kFloat32 ? 1e-5 : cs.t == DType::kFloat16 ? 2e-3 : 1e-2;
    EXPECT_TRUE(tensors_close((*got)[0], (*expect)[0], tol, tol)) << what;
  }
}

// x -> MatMul -> Add(bias) -> Add(x2 residual) -> Relu: all four nodes become one.
TEST(MatMulBiasFusion, FusesAResidualAdd) {
  auto make = [] {
    auto g = std::make_shared<Graph>();
    Value* x = g->add_value("x", {DType::kFloat32, Shape::from_dims({2, 3, 4})});
    Value* r = g->add_value("r", {DType::kFloat32, Shape::from_dims({2, 3, 5})});
    g->inputs = {x, r};
    Value *mid = g->add_value("mid"), *sum = g->add_value("sum"), *res = g->add_value("res"), *y = g->add_value("y");
    g->add_node("MatMul", {x, g->add_constant("w", random_tensor(DType::kFloat32, {4, 5}, 7))}, {mid}, "mm");
    g->add_node("Add", {mid, g->add_constant("bias", random_tensor(DType::kFloat32, {5}, 8))}, {sum}, "add");
    g->add_node("Add", {r, sum}, {res}, "residual");
    g->add_node("Relu", {res}, {y}, "relu");
    g->outputs = {y};
    return g;
  };
  const std::map<std::string, Tensor> feeds{{"x", random_tensor(DType::kFloat32, {2, 3, 4}, 9)},
                                            {"r", random_tensor(DType::kFloat32, {2, 3, 5}, 10)}};
  GraphPtr before = make(), after = make();
  ASSERT_TRUE(infer_shapes(*before).ok());
  auto exec = CpuExecutor::create(before);
  ASSERT_TRUE(exec.ok());
  auto expect = (*exec)->run(feeds);
  ASSERT_TRUE(expect.ok()) << expect.status().message();
  auto changed = run_fusion(*after);
  ASSERT_TRUE(changed.ok()) << changed.status().message();
  EXPECT_TRUE(*changed);
  ASSERT_EQ(after->nodes().size(), 1u);
  const Node& n = *after->nodes()[0];
  EXPECT_EQ(n.attrs.s("kiln_fused"), "mm,add,residual,relu");
  ASSERT_EQ(n.inputs.size(), 4u);
  EXPECT_EQ(n.inputs[3]->name, "r");
  auto exec2 = CpuExecutor::create(after);
  ASSERT_TRUE(exec2.ok());
  auto got = (*exec2)->run(feeds);
  ASSERT_TRUE(got.ok()) << got.status().message();
  EXPECT_TRUE(tensors_close((*got)[0], (*expect)[0], 1e-5));
}

TEST(MatMulBiasFusion, LeavesWhatItCannotFuse) {
  // A bias over rows ([3, 1]) is not a bias over N.
  Chain rows = make_chain(random_tensor(DType::kFloat32, {3, 1}, 3), false, false);
  auto changed = run_fusion(*rows.g);
  ASSERT_TRUE(changed.ok());
  EXPECT_FALSE(*changed);
  // The MatMul's output is also a graph output.
  Chain shared = make_chain(random_tensor(DType::kFloat32, {5}, 3), false, false);
  shared.g->outputs.push_back(shared.mid);
  changed = run_fusion(*shared.g);
  ASSERT_TRUE(changed.ok());
  EXPECT_FALSE(*changed);
  // A non-constant addend.
  Chain dyn = make_chain(random_tensor(DType::kFloat32, {5}, 3), false, false);
  Value* b = dyn.g->find_value("bias");
  b->constant.reset();
  dyn.g->inputs.push_back(b);
  changed = run_fusion(*dyn.g);
  ASSERT_TRUE(changed.ok());
  EXPECT_FALSE(*changed);
  // The Relu is not fused when the pre-activation sum is read elsewhere, but the bias still is.
  Chain two = make_chain(random_tensor(DType::kFloat32, {5}, 3), false, true);
  two.g->outputs.push_back(two.sum);
  changed = run_fusion(*two.g);
  ASSERT_TRUE(changed.ok());
  EXPECT_TRUE(*changed);
  ASSERT_EQ(two.g->nodes().size(), 2u);
  EXPECT_EQ(two.g->nodes()[0]->attrs.s("activation"), "");
  EXPECT_EQ(two.g->nodes()[1]->op_type, "Relu");
}

}  // namespace
}  // namespace kiln::test
