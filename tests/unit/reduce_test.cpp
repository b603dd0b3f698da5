// Reduce* ops against a naive double-precision computation, plus their edge cases.
#include <cmath>
#include <limits>

#include <fmt/ranges.h>

#include "op_test_util.hpp"

namespace kiln::test {
namespace {

const std::vector<std::string> kReduceOps = {"ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin",
                                             "ReduceProd", "ReduceL1", "ReduceL2", "ReduceLogSum",
                                             "ReduceLogSumExp", "ReduceSumSquare"};

double naive_fold(const std::string& op, const std::vector<double>& v) {
  double s = 0;
  if (op == "ReduceMax") {
    s = -INFINITY;
    for (double x : v) s = std::max(s, x);
    return s;
  }
  if (op == "ReduceMin") {
    s = INFINITY;
    for (double x : v) s = std::min(s, x);
    return s;
  }
  if (op == "ReduceProd") {
    s = 1;
    for (double x : v) s *= x;
    return s;
  }
  for (double x : v) {
    if (op == "ReduceL1") s += std::abs(x);
    else if (op == "ReduceL2" || op == "ReduceSumSquare") s += x * x;
    else if (op == "ReduceLogSumExp") s += std::exp(x);
    else s += x;
  }
  if (op == "ReduceMean") return s / static_cast<double>(v.size());
  if (op == "ReduceL2") return std::sqrt(s);
  if (op == "ReduceLogSum" || op == "ReduceLogSumExp") return std::log(s);
  return s;
}

// Reduces `x` over the axes in `mask` with a multi-index walk; returns keepdims=1 layout values.
std::vector<double> naive_reduce(const std::string& op, const Tensor& x, const std::vector<bool>& mask) {
  const Dims& d = x.dims();
  Dims od = d;
  for (size_t i = 0; i < d.size(); ++i)
    if (mask[i]) od[i] = 1;
  std::vector<std::vector<double>> groups(static_cast<size_t>(dims_numel(od)));
  auto xv = x.to_double_vector();
  for (int64_t flat = 0; flat < x.numel(); ++flat) {
    int64_t rem = flat, o = 0, ostride = 1;
    for (size_t i = d.size(); i-- > 0;) {
      int64_t idx = rem % d[i];
      rem /= d[i];
      if (!mask[i]) o += idx * ostride;
      ostride *= od[i];
    }
    groups[static_cast<size_t>(o)].push_back(xv[static_cast<size_t>(flat)]);
  }
  std::vector<double> out;
  for (auto& g : groups) out.push_back(naive_fold(op, g));
  return out;
}

Attributes reduce_attrs(int keepdims, int noop = 0) {
  Attributes a;
  a.set("keepdims", int64_t{keepdims});
  if (noop) a.set("noop_with_empty_axes", int64_t{noop});
  return a;
}

Tensor axes_tensor(const std::vector<int64_t>& axes) {
  return Tensor::from_vector<int64_t>({static_cast<int64_t>(axes.size())}, axes);
}

Dims expected_dims(const Dims& d, const std::vector<bool>& mask, bool keepdims) {
  Dims out;
  for (size_t i = 0; i < d.size(); ++i) {
    if (!mask[i]) out.push_back(d[i]);
    else if (keepdims) out.push_back(1);
  }
  return out;
}

TEST(Reduce, AllOpsMatchNaiveFloat32) {
  const Dims dims = {3, 4, 5};
  const std::vector<std::vector<int64_t>> axes_cases = {{1}, {-1}, {0, 2}, {-3, -1}, {0, 1, 2}, {2, 0}};
  for (const auto& op : kReduceOps) {
    // Positive inputs keep LogSum defined; Prod gets values near 1 so it stays well scaled.
    const bool positive = op == "ReduceLogSum" || op == "ReduceProd";
    Tensor x = random_tensor(DType::kFloat32, dims, 7, positive ? 0.5 : -2.0, positive ? 1.5 : 2.0);
    for (const auto& axes : axes_cases) {
      std::vector<bool> mask(3, false);
      for (int64_t a : axes) mask[static_cast<size_t>(a < 0 ? a + 3 : a)] = true;
      for (int keep : {0, 1}) {
        for (bool const_axes : {false, true}) {
          OpCall call{.op_type = op, .inputs = {x, axes_tensor(axes)}, .constant_inputs = {false, const_axes},
                      .attrs = reduce_attrs(keep)};
          auto out = run_op(call);
          ASSERT_TRUE(out.ok()) << op << ": " << out.status().message();
          Dims want_dims = expected_dims(dims, mask, keep);
          Tensor want = Tensor(DType::kFloat32, want_dims);
          auto ref = naive_reduce(op, x, mask);
          for (size_t i = 0; i < ref.size(); ++i) want.data<float>()[i] = static_cast<float>(ref[i]);
          EXPECT_TRUE(tensors_close(out->at(0), want, 1e-5, 1e-5))
              << op << " axes " << fmt::format("{}", axes) << " keepdims " << keep;
        }
      }
    }
  }
}

TEST(Reduce, EmptyOrAbsentAxesReduceEverything) {
  Tensor x = random_tensor(DType::kFloat32, {2, 3, 4}, 3);
  for (const auto& op : kReduceOps) {
    if (op == "ReduceLogSum") continue;  // negative sums: covered by the positive-input test
    auto ref = naive_reduce(op, x, {true, true, true});
    for (int keep : {0, 1}) {
      for (bool absent : {false, true}) {
        OpCall call{.op_type = op, .inputs = {x, absent ? Tensor() : axes_tensor({})},
                    .attrs = reduce_attrs(keep)};
        auto out = run_op(call);
        ASSERT_TRUE(out.ok()) << op << ": " << out.status().message();
        EXPECT_EQ(out->at(0).dims(), keep ? (Dims{1, 1, 1}) : Dims{}) << op;
        EXPECT_NEAR(out->at(0).scalar_as_double(), ref[0], 1e-4 * std::max(1.0, std::abs(ref[0]))) << op;
      }
    }
  }
}

TEST(Reduce, NoopWithEmptyAxesAppliesTheElementwisePart) {
  Tensor x = random_tensor(DType::kFloat32, {2, 3}, 5, 0.25, 2.0);
  for (const auto& op : kReduceOps) {
    for (bool absent : {false, true}) {
      OpCall call{.op_type = op, .inputs = {x, absent ? Tensor() : axes_tensor({})}, .attrs = reduce_attrs(1, 1)};
      auto out = run_op(call);
      ASSERT_TRUE(out.ok()) << op << ": " << out.status().message();
      Tensor want(DType::kFloat32, {2, 3});
      auto xv = x.to_double_vector();
      for (size_t i = 0; i < xv.size(); ++i) want.data<float>()[i] = static_cast<float>(naive_fold(op, {xv[i]}));
      EXPECT_TRUE(tensors_close(out->at(0), want, 1e-5, 1e-6)) << op;
    }
  }
}

TEST(Reduce, EmptySetGivesTheIdentityOfEachOp) {
  Tensor x(DType::kFloat32, {2, 0, 3});
  const double inf = std::numeric_limits<double>::infinity();
  const std::map<std::string, double> want = {
      {"ReduceSum", 0},        {"ReduceMean", NAN},     {"ReduceMax", -inf},        {"ReduceMin", inf},
      {"ReduceProd", 1},       {"ReduceL1", 0},         {"ReduceL2", 0},            {"ReduceLogSum", -inf},
      {"ReduceLogSumExp", -inf}, {"ReduceSumSquare", 0}};
  for (const auto& [op, value] : want) {
    for (int keep : {0, 1}) {
      auto out = run_op({.op_type = op, .inputs = {x, axes_tensor({1})}, .attrs = reduce_attrs(keep)});
      ASSERT_TRUE(out.ok()) << op << ": " << out.status().message();
      const Tensor& y = out->at(0);
      EXPECT_EQ(y.dims(), keep ? (Dims{2, 1, 3}) : (Dims{2, 3})) << op;
      for (double v : y.to_double_vector()) {
        if (std::isnan(value)) EXPECT_TRUE(std::isnan(v)) << op;
        else EXPECT_EQ(v, value) << op;
      }
    }
  }
  // Integers have no infinities: Max/Min of nothing are the type's extremes.
  Tensor xi(DType::kInt32, {0, 2});
  auto mx = run_op({.op_type = "ReduceMax", .inputs = {xi, axes_tensor({0})}, .attrs = reduce_attrs(0)});
  ASSERT_TRUE(mx.ok()) << mx.status().message();
  EXPECT_EQ(mx->at(0).data<int32_t>()[1], std::numeric_limits<int32_t>::lowest());
  auto mn = run_op({.op_type = "ReduceMin", .inputs = {xi, axes_tensor({0})}, .attrs = reduce_attrs(0)});
  ASSERT_TRUE(mn.ok());
  EXPECT_EQ(mn->at(0).data<int32_t>()[0], std::numeric_limits<int32_t>::max());
  // Reducing a non-empty axis of an empty tensor gives an empty output.
  auto e = run_op({.op_type = "ReduceSum", .inputs = {x, axes_tensor({0})}, .attrs = reduce_attrs(1)});
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->at(0).dims(), (Dims{1, 0, 3}));
}

TEST(Reduce, Float16AccumulatesInFloat) {
  // 3000 ones: a float16 accumulator stalls at 2048 (2048 + 1 rounds back to 2048).
  Tensor x(DType::kFloat16, {2, 3000});
  for (int64_t i = 0; i < x.numel(); ++i) x.data<Half>()[i] = Half(1.0f);
  auto out = run_op({.op_type = "ReduceSum", .inputs = {x, axes_tensor({-1})}, .attrs = reduce_attrs(0)});
  ASSERT_TRUE(out.ok()) << out.status().message();
  ASSERT_EQ(out->at(0).dtype(), DType::kFloat16);
  EXPECT_EQ(static_cast<float>(out->at(0).data<Half>()[0]), 3000.0f);
  EXPECT_EQ(static_cast<float>(out->at(0).data<Half>()[1]), 3000.0f);

  Tensor r = random_tensor(DType::kFloat16, {4, 6, 5}, 11, 0.5, 1.5);
  for (const auto& op : kReduceOps) {
    auto y = run_op({.op_type = op, .inputs = {r, axes_tensor({0, -1})}, .attrs = reduce_attrs(1)});
    ASSERT_TRUE(y.ok()) << op << ": " << y.status().message();
    auto ref = naive_reduce(op, r, {true, false, true});
    Tensor want(DType::kFloat16, {1, 6, 1});
    for (size_t i = 0; i < ref.size(); ++i) want.data<Half>()[i] = Half(static_cast<float>(ref[i]));
    EXPECT_TRUE(tensors_close(y->at(0), want, 2e-3, 1e-3)) << op;
  }
  Tensor b = random_tensor(DType::kBFloat16, {3, 8}, 12);
  auto yb = run_op({.op_type = "ReduceMean", .inputs = {b, axes_tensor({1})}, .attrs = reduce_attrs(0)});
  ASSERT_TRUE(yb.ok()) << yb.status().message();
  auto refb = naive_reduce("ReduceMean", b, {false, true});
  for (size_t i = 0; i < refb.size(); ++i) EXPECT_NEAR(yb->at(0).to_double_vector()[i], refb[i], 1e-2);
}

TEST(Reduce, OtherDtypes) {
  Tensor xd = random_tensor(DType::kFloat64, {3, 5}, 2);
  for (const auto& op : {"ReduceSum", "ReduceL2", "ReduceLogSumExp", "ReduceMin"}) {
    auto y = run_op({.op_type = op, .inputs = {xd, axes_tensor({0})}, .attrs = reduce_attrs(0)});
    ASSERT_TRUE(y.ok()) << y.status().message();
    auto ref = naive_reduce(op, xd, {true, false});
    for (size_t i = 0; i < ref.size(); ++i) EXPECT_NEAR(y->at(0).data<double>()[i], ref[i], 1e-12) << op;
  }
  Tensor xi = Tensor::from_vector<int32_t>({2, 3}, {1, -2, 3, 4, 5, -7});
  auto sum = run_op({.op_type = "ReduceSum", .inputs = {xi, axes_tensor({1})}, .attrs = reduce_attrs(0)});
  ASSERT_TRUE(sum.ok());
  EXPECT_EQ(sum->at(0).dtype(), DType::kInt32);
  EXPECT_EQ(sum->at(0).to_double_vector(), (std::vector<double>{2, 2}));
  auto prod = run_op({.op_type = "ReduceProd", .inputs = {xi, axes_tensor({0})}, .attrs = reduce_attrs(0)});
  ASSERT_TRUE(prod.ok());
  EXPECT_EQ(prod->at(0).to_double_vector(), (std::vector<double>{4, -10, -21}));
  auto mean = run_op({.op_type = "ReduceMean", .inputs = {xi, axes_tensor({1})}, .attrs = reduce_attrs(0)});
  ASSERT_TRUE(mean.ok());
  EXPECT_EQ(mean->at(0).to_double_vector(), (std::vector<double>{0, 0}));  // 2/3 truncates to 0
  auto l1 = run_op({.op_type = "ReduceL1", .inputs = {xi, axes_tensor({1})}, .attrs = reduce_attrs(0)});
  ASSERT_TRUE(l1.ok());
  EXPECT_EQ(l1->at(0).to_double_vector(), (std::vector<double>{6, 16}));
  auto mx = run_op({.op_type = "ReduceMax", .inputs = {xi, axes_tensor({0})}, .attrs = reduce_attrs(1)});
  ASSERT_TRUE(mx.ok());
  EXPECT_EQ(mx->at(0).to_double_vector(), (std::vector<double>{4, 5, 3}));

  Tensor xu = Tensor::from_vector<uint8_t>({4}, {200, 3, 250, 7});
  auto umin = run_op({.op_type = "ReduceMin", .inputs = {xu}, .attrs = reduce_attrs(0)});
  ASSERT_TRUE(umin.ok());
  EXPECT_EQ(umin->at(0).data<uint8_t>()[0], 3);

  Tensor xl = Tensor::from_vector<int64_t>({2}, {int64_t{1} << 40, int64_t{3} << 40});
  auto lsum = run_op({.op_type = "ReduceSum", .inputs = {xl}, .attrs = reduce_attrs(0)});
  ASSERT_TRUE(lsum.ok());
  EXPECT_EQ(lsum->at(0).data<int64_t>()[0], int64_t{4} << 40);
}

TEST(Reduce, BoolMaxMinAreAnyAll) {
  Tensor b = Tensor::from_vector<bool>({2, 3}, {false, true, false, true, true, true});
  auto any = run_op({.op_type = "ReduceMax", .inputs = {b, axes_tensor({1})}, .attrs = reduce_attrs(0)});
  ASSERT_TRUE(any.ok()) << any.status().message();
  EXPECT_EQ(any->at(0).dtype(), DType::kBool);
  EXPECT_EQ(any->at(0).to_double_vector(), (std::vector<double>{1, 1}));
  auto all = run_op({.op_type = "ReduceMin", .inputs = {b, axes_tensor({1})}, .attrs = reduce_attrs(0)});
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->at(0).to_double_vector(), (std::vector<double>{0, 1}));
  auto sum = run_op({.op_type = "ReduceSum", .inputs = {b, axes_tensor({1})}, .attrs = reduce_attrs(0)});
  ASSERT_FALSE(sum.ok());
  EXPECT_EQ(sum.status().code(), StatusCode::kUnsupported);
  EXPECT_NE(sum.status().message().find("bool"), std::string::npos);
}

TEST(Reduce, LogSumExpIsStableAndMaxPropagatesNaN) {
  Tensor x = Tensor::from_vector<float>({2, 2}, {1000.f, 1000.f, -1000.f, -INFINITY});
  auto y = run_op({.op_type = "ReduceLogSumExp", .inputs = {x, axes_tensor({1})}, .attrs = reduce_attrs(0)});
  ASSERT_TRUE(y.ok());
  EXPECT_NEAR(y->at(0).data<float>()[0], 1000.f + std::log(2.f), 1e-3);
  EXPECT_NEAR(y->at(0).data<float>()[1], -1000.f, 1e-3);
  Tensor n = Tensor::from_vector<float>({3}, {1.f, NAN, 2.f});
  for (const char* op : {"ReduceMax", "ReduceMin"}) {
    auto m = run_op({.op_type = op, .inputs = {n}, .attrs = reduce_attrs(0)});
    ASSERT_TRUE(m.ok());
    EXPECT_TRUE(std::isnan(m->at(0).data<float>()[0])) << op;
  }
}

TEST(Reduce, ShapeInferenceWithSymbolicDims) {
  auto g = std::make_shared<Graph>();
  Value* x = g->add_value("x", {DType::kFloat32, Shape({Dim::symbolic("n"), Dim(1), Dim(4), Dim(5)})});
  Value* dyn = g->add_value("axes", {DType::kInt64, Shape::from_dims({2})});
  Value* cst = g->add_constant("c", axes_tensor({-1, 0}));
  g->inputs = {x, dyn};
  Value* a = g->add_value("a");
  Value* b = g->add_value("b");
  Value* c = g->add_value("c_out");
  Value* d = g->add_value("d");
  g->add_node("ReduceSum", {x, cst}, {a}, "r_const")->attrs = reduce_attrs(1);
  g->add_node("ReduceSum", {x, cst}, {b}, "r_const0")->attrs = reduce_attrs(0);
  g->add_node("ReduceMax", {x, dyn}, {c}, "r_dyn")->attrs = reduce_attrs(1);
  g->add_node("ReduceMax", {x, dyn}, {d}, "r_dyn0")->attrs = reduce_attrs(0);
  g->outputs = {a, b, c, d};
  ASSERT_TRUE(infer_shapes(*g).ok());
  EXPECT_EQ(a->type.to_string(), "float32[1,1,4,1]");
  EXPECT_EQ(b->type.to_string(), "float32[1,4]");
  EXPECT_EQ(c->type.to_string(), "float32[?,1,?,?]");
  EXPECT_EQ(d->type.shape.rank(), 2u);
}

TEST(Reduce, ErrorsNameTheNode) {
  Tensor x = random_tensor(DType::kFloat32, {2, 3}, 1);
  for (bool const_axes : {true, false}) {
    auto bad = run_op({.op_type = "ReduceSum", .inputs = {x, axes_tensor({2})},
                       .constant_inputs = {false, const_axes}, .attrs = reduce_attrs(1)});
    ASSERT_FALSE(bad.ok());
    EXPECT_NE(bad.status().message().find("ReduceSum_node"), std::string::npos) << bad.status().message();
    EXPECT_NE(bad.status().message().find("axis 2 is out of range"), std::string::npos) << bad.status().message();
  }
  auto neg = run_op({.op_type = "ReduceMean", .inputs = {x, axes_tensor({-3})}, .constant_inputs = {false, true}});
  ASSERT_FALSE(neg.ok());
  EXPECT_NE(neg.status().message().find("ReduceMean_node"), std::string::npos);
  auto rep = run_op({.op_type = "ReduceMax", .inputs = {x, axes_tensor({1, -1})}, .constant_inputs = {false, true}});
  ASSERT_FALSE(rep.ok());
  EXPECT_NE(rep.status().message().find("repeated"), std::string::npos) << rep.status().message();
  Attributes old = reduce_attrs(1);
  old.set("axes", std::vector<int64_t>{0});
  auto attr = run_op({.op_type = "ReduceL2", .inputs = {x}, .attrs = old});
  ASSERT_FALSE(attr.ok());
  EXPECT_NE(attr.status().message().find("ReduceL2_node"), std::string::npos);
  auto fl = run_op({.op_type = "ReduceSum", .inputs = {x, Tensor::from_vector<float>({1}, {0.f})}});
  ASSERT_FALSE(fl.ok());
  EXPECT_NE(fl.status().message().find("axes must be int64"), std::string::npos) << fl.status().message();
}

}  // namespace
}  // namespace kiln::test
