// kiln.MaskedSoftmax (CPU kernel vs a naive loop) and the attention-softmax fusion pass (structure
// after the pass, equal CPU outputs before and after, and what it must leave alone).
#include <cmath>

#include "op_test_util.hpp"
#include "passes/pass.hpp"

namespace kiln::test {
namespace {

// x [2, 3, 4, 5], mask [2, 1, 1, 5] (broadcast over heads and query rows).
std::vector<double> naive_masked_softmax(const Tensor& x, const Tensor* mask, double scale) {
  Tensor xd = x.cast(DType::kFloat64);
  Tensor md = mask ? mask->cast(DType::kFloat64) : Tensor();
  const int64_t len = x.dims().back(), rows = x.numel() / len, per_batch = rows / x.dim(0);
  std::vector<double> y(static_cast<size_t>(x.numel()));
  for (int64_t r = 0; r < rows; ++r) {
    std::vector<double> z(static_cast<size_t>(len));
    double mx = -INFINITY, sum = 0;
    for (int64_t k = 0; k < len; ++k) {
      z[static_cast<size_t>(k)] = xd.data<double>()[r * len + k] * scale +
                                  (mask ? md.data<double>()[(r / per_batch) * len + k] : 0.0);
      mx = std::max(mx, z[static_cast<size_t>(k)]);
    }
    for (double v : z) sum += std::exp(v - mx);
    for (int64_t k = 0; k < len; ++k) y[static_cast<size_t>(r * len + k)] = std::exp(z[static_cast<size_t>(k)] - mx) / sum;
  }
  return y;
}

TEST(MaskedSoftmaxOp, MatchesNaiveWithAndWithoutMask) {
  for (DType t : {DType::kFloat32, DType::kFloat16, DType::kBFloat16})
    for (bool with_mask : {true, false}) {
      SCOPED_TRACE(std::string(dtype_name(t)) + (with_mask ? " mask" : " no mask"));
      OpCall call{.op_type = "MaskedSoftmax", .inputs = {random_tensor(t, {2, 3, 4, 5}, 1, -4, 4)}, .domain = "kiln"};
      if (with_mask) call.inputs.push_back(random_tensor(t, {2, 1, 1, 5}, 2, -3, 3));
      call.attrs.set("scale", 0.125f);
      auto out = run_op(call);
      ASSERT_TRUE(out.ok()) << out.status().message();
      auto expect = naive_masked_softmax(call.inputs[0], with_mask ? &call.inputs[1] : nullptr, 0.125);
      Tensor y = (*out)[0].cast(DType::kFloat64);
      const double tol = t == DType::kFloat32 ? 1e-6 : t == DType::kFloat16 ? 2e-3 : 1e-2;
      for (size_t i = 0; i < expect.size(); ++i) EXPECT_NEAR(y.data<double>()[i], expect[i], tol) << i;
    }
}

TEST(MaskedSoftmaxOp, BadMaskNamesTheNode) {
  OpCall call{.op_type = "MaskedSoftmax",
              .inputs = {random_tensor(DType::kFloat32, {2, 3, 5}, 1), random_tensor(DType::kFloat32, {3, 4}, 2)},
              .domain = "kiln"};
  auto r = run_op(call);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("MaskedSoftmax_node"), std::string::npos);
  EXPECT_NE(r.status().message().find("mask"), std::string::npos);
  call.inputs[1] = random_tensor(DType::kFloat16, {5}, 2);  // dtype differs from x
  EXPECT_FALSE(run_op(call).ok());
}

// scores [2, 3, 4, 5] -> (Div by 2 | Mul by 0.5 | nothing) -> (Add mask [2, 1, 1, 5] | nothing) -> Softmax.
enum class Scale { kNone, kDiv, kMulLeft };
struct Attn {
  GraphPtr g = std::make_shared<Graph>();
  Value *scaled = nullptr, *summed = nullptr;
};

Attn make_attn(Scale scale, bool mask, int64_t axis = -1, Dims mask_dims = {2, 1, 1, 5}) {
  Attn a;
  Graph& g = *a.g;
  Value* x = g.add_value("x", {DType::kFloat32, Shape::from_dims({2, 3, 4, 5})});
  g.inputs = {x};
  Value* cur = x;
  if (scale != Scale::kNone) {
    a.scaled = g.add_value("scaled");
    if (scale == Scale::kDiv)
      g.add_node("Div", {cur, g.add_constant("c", Tensor::scalar<float>(2.f))}, {a.scaled}, "div");
    else
      g.add_node("Mul", {g.add_constant("c", Tensor::scalar<float>(0.5f)), cur}, {a.scaled}, "mul");
    cur = a.scaled;
  }
  if (mask) {
    Value* m = g.add_value("m", {DType::kFloat32, Shape::from_dims(mask_dims)});
    g.inputs.push_back(m);
    a.summed = g.add_value("summed");
    g.add_node("Add", {cur, m}, {a.summed}, "add");
    cur = a.summed;
  }
  Value* y = g.add_value("y");
  Node* sm = g.add_node("Softmax", {cur}, {y}, "softmax");
  sm->attrs.set("axis", axis);
  g.outputs = {y};
  return a;
}

Expected<std::vector<Tensor>> run_attn(const GraphPtr& g, const std::map<std::string, Tensor>& feeds) {
  KILN_RETURN_IF_ERROR(infer_shapes(*g));
  KILN_ASSIGN_OR_RETURN(auto exec, CpuExecutor::create(g));
  return exec->run(feeds);
}

Expected<bool> fuse(Graph& g) {
  KILN_RETURN_IF_ERROR(infer_shapes(g));
  KILN_ASSIGN_OR_RETURN(bool changed, make_attention_softmax_fusion_pass()->run(g));
  KILN_RETURN_IF_ERROR(make_dead_code_pass()->run(g).status());
  KILN_RETURN_IF_ERROR(infer_shapes(g));
  return changed;
}

TEST(AttentionSoftmaxFusion, FusesScaleAndMaskKeepingOutputs) {
  std::map<std::string, Tensor> feeds{{"x", random_tensor(DType::kFloat32, {2, 3, 4, 5}, 3, -5, 5)},
                                      {"m", random_tensor(DType::kFloat32, {2, 1, 1, 5}, 4, -3, 3)}};
  struct Case {
    Scale scale;
    bool mask;
    int64_t axis;
    float expect_scale;
    std::string fused;
  };
  const Case cases[] = {
      {Scale::kDiv, true, -1, 0.5f, "div,add,softmax"},
      {Scale::kMulLeft, true, 3, 0.5f, "mul,add,softmax"},
      {Scale::kNone, true, -1, 1.f, "add,softmax"},
      {Scale::kDiv, false, -1, 0.5f, "div,softmax"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.fused);
    Attn before = make_attn(c.scale, c.mask, c.axis), after = make_attn(c.scale, c.mask, c.axis);
    std::map<std::string, Tensor> f = feeds;
    if (!c.mask) f.erase("m");
    auto expect = run_attn(before.g, f);
    ASSERT_TRUE(expect.ok()) << expect.status().message();
    auto changed = fuse(*after.g);
    ASSERT_TRUE(changed.ok()) << changed.status().message();
    EXPECT_TRUE(*changed);
    ASSERT_EQ(after.g->nodes().size(), 1u);
    const Node& n = *after.g->nodes()[0];
    EXPECT_EQ(n.op_type, "MaskedSoftmax");
    EXPECT_EQ(n.domain, "kiln");
    EXPECT_FLOAT_EQ(n.attrs.f("scale"), c.expect_scale);
    EXPECT_EQ(n.attrs.s("kiln_fused"), c.fused);
    EXPECT_EQ(n.inputs.size(), c.mask ? 2u : 1u);
    auto got = run_attn(after.g, f);
    ASSERT_TRUE(got.ok()) << got.status().message();
    EXPECT_TRUE(tensors_close((*got)[0], (*expect)[0], 1e-5));
  }
}

TEST(AttentionSoftmaxFusion, LeavesWhatItCannotFuse) {
  // A plain Softmax, a Softmax over another axis, and a mask broadcast along the rows.
  for (Attn a : {make_attn(Scale::kNone, false), make_attn(Scale::kDiv, true, 1), make_attn(Scale::kNone, true, -1, {4, 1})}) {
    auto changed = fuse(*a.g);
    ASSERT_TRUE(changed.ok()) << changed.status().message();
    EXPECT_FALSE(*changed);
  }
  // The scaled scores are also a graph output: only the mask and softmax fuse, scale stays.
  Attn shared = make_attn(Scale::kDiv, true);
  shared.g->outputs.push_back(shared.scaled);
  auto changed = fuse(*shared.g);
  ASSERT_TRUE(changed.ok());
  EXPECT_TRUE(*changed);
  ASSERT_EQ(shared.g->nodes().size(), 2u);
  EXPECT_EQ(shared.g->nodes()[0]->op_type, "Div");
  EXPECT_EQ(shared.g->nodes()[1]->attrs.s("kiln_fused"), "add,softmax");
  EXPECT_FLOAT_EQ(shared.g->nodes()[1]->attrs.f("scale"), 1.f);
}

}  // namespace
}  // namespace kiln::test
