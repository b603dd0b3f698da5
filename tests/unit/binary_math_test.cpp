// Binary and variadic arithmetic against naive broadcasting in double.
#include "elementwise_test_util.hpp"

namespace kiln::test {
namespace {

using Fn2 = double (*)(double, double);

struct BinCase {
  const char* op;
  Fn2 ref;
};
const BinCase kArith[] = {
    {"Add", [](double a, double b) { return a + b; }},
    {"Sub", [](double a, double b) { return a - b; }},
    {"Mul", [](double a, double b) { return a * b; }},
    {"Div", [](double a, double b) { return a / b; }},
};

const std::vector<std::pair<Dims, Dims>> kShapes = {
    {{3, 4}, {3, 4}}, {{3, 4}, {}}, {{}, {2, 5}}, {{2, 3, 4}, {4}}, {{2, 1, 4}, {3, 1}}, {{5, 1}, {1, 6}},
};

TEST(BinaryMath, FloatArithmeticBroadcastsForEveryFloatDtype) {
  uint32_t seed = 500;
  for (const BinCase& c : kArith) {
    for (DType dt : float_dtypes()) {
      for (const auto& [da, db] : kShapes) {
        Tensor a = random_tensor(dt, da, seed++, -3, 3);
        Tensor b = random_tensor(dt, db, seed++, 0.5, 3);  // no division by ~0
        Dims od = *broadcast_dims(da, db);
        Tensor want = naive_map(od, {a, b}, dt, [&](const std::vector<double>& v) { return c.ref(v[0], v[1]); });
        EXPECT_TRUE(tensors_close(run1({c.op, {a, b}}), want, rtol_for(dt), atol_for(dt)))
            << c.op << " " << dtype_name(dt) << " " << dims_to_string(da) << " , " << dims_to_string(db);
      }
    }
  }
}

TEST(BinaryMath, IntegerArithmeticForEveryIntDtype) {
  uint32_t seed = 600;
  for (DType dt : int_dtypes()) {
    bool is_signed = is_signed_integer(dt);
    Tensor a = random_tensor(dt, {3, 5}, seed++, is_signed ? -12 : 0, 12);  // products fit int8
    Tensor b = random_tensor(dt, {5}, seed++, 1, 10);
    Dims od{3, 5};
    auto check = [&](const char* op, Fn2 ref) {
      Tensor want = naive_map(od, {a, b}, dt, [&](const std::vector<double>& v) { return ref(v[0], v[1]); });
      EXPECT_TRUE(tensors_close(run1({op, {a, b}}), want, 0, 0)) << op << " " << dtype_name(dt);
    };
    check("Add", [](double x, double y) { return x + y; });
    check("Mul", [](double x, double y) { return x * y; });
    if (is_signed) check("Sub", [](double x, double y) { return x - y; });
    check("Div", [](double x, double y) { return std::trunc(x / y); });  // truncates toward zero
  }
}

TEST(BinaryMath, IntegerEdgeCasesWrapOrFail) {
  Tensor a = Tensor::from_vector<int32_t>({4}, {-7, 7, INT32_MIN, INT32_MAX});
  Tensor b = Tensor::from_vector<int32_t>({4}, {2, -2, -1, 1});
  EXPECT_EQ(run1({"Div", {a, b}}).to_double_vector(), (std::vector<double>{-3, -3, INT32_MIN, INT32_MAX}));
  EXPECT_EQ(run1({"Add", {a, b}}).to_double_vector(), (std::vector<double>{-5, 5, INT32_MAX, INT32_MIN}));
  Tensor u = Tensor::from_vector<uint8_t>({2}, {250, 3});
  EXPECT_EQ(run1({"Sub", {Tensor::from_vector<uint8_t>({2}, {3, 250}), u}}).to_double_vector(),
            (std::vector<double>{9, 247}));
  Status st = run_err({"Div", {a, Tensor::from_vector<int32_t>({4}, {1, 0, 1, 1})}});
  EXPECT_TRUE(contains(st.message(), "Div_node") && contains(st.message(), "by zero")) << st.message();
  st = run_err({"Mod", {a, Tensor::scalar<int32_t>(0)}});
  EXPECT_TRUE(contains(st.message(), "Mod_node") && contains(st.message(), "by zero")) << st.message();
}

TEST(BinaryMath, ModSignConventions) {
  Tensor a = Tensor::from_vector<int64_t>({6}, {-4, 7, -7, 7, -3, 5});
  Tensor b = Tensor::from_vector<int64_t>({6}, {3, -3, -3, 3, 3, -5});
  // fmod=0: the sign of the divisor (Python's %).
  EXPECT_EQ(run1({"Mod", {a, b}}).to_double_vector(), (std::vector<double>{2, -2, -1, 1, 0, 0}));
  Attributes fmod;
  fmod.set("fmod", int64_t{1});
  // fmod=1: the sign of the dividend (C's fmod).
  EXPECT_EQ(run1({"Mod", {a, b}, {}, fmod}).to_double_vector(), (std::vector<double>{-1, 1, -1, 1, 0, 0}));
  for (DType dt : int_dtypes()) {
    bool s = is_signed_integer(dt);
    Tensor x = random_tensor(dt, {4, 6}, 41, s ? -50 : 0, 50), y = random_tensor(dt, {6}, 42, s ? -9 : 1, 9);
    y = naive_map({6}, {y}, dt, [](const std::vector<double>& v) { return v[0] == 0 ? 4 : v[0]; });
    Tensor want = naive_map({4, 6}, {x, y}, dt, [](const std::vector<double>& v) {
      double r = std::fmod(v[0], v[1]);
      return (r != 0 && (r < 0) != (v[1] < 0)) ? r + v[1] : r;
    });
    EXPECT_TRUE(tensors_close(run1({"Mod", {x, y}}), want, 0, 0)) << dtype_name(dt);
  }
  for (DType dt : float_dtypes()) {
    Tensor x = random_tensor(dt, {4, 6}, 43, -10, 10), y = random_tensor(dt, {4, 1}, 44, 1, 4);
    Tensor want = naive_map({4, 6}, {x, y}, dt, [](const std::vector<double>& v) { return std::fmod(v[0], v[1]); });
    EXPECT_TRUE(tensors_close(run1({"Mod", {x, y}, {}, fmod}), want, rtol_for(dt), atol_for(dt))) << dtype_name(dt);
  }
}

TEST(BinaryMath, PowWithMixedBaseAndExponentDtypes) {
  Tensor fb = random_tensor(DType::kFloat32, {2, 3}, 61, 0.5, 2);
  for (DType et : {DType::kFloat32, DType::kFloat16, DType::kFloat64, DType::kInt32, DType::kInt64, DType::kUInt8}) {
    Tensor e = random_tensor(et, {3}, 62, 0, 4);
    Tensor want = naive_map({2, 3}, {fb, e}, DType::kFloat32,
                            [](const std::vector<double>& v) { return std::pow(v[0], v[1]); });
    EXPECT_TRUE(tensors_close(run1({"Pow", {fb, e}}), want, 1e-5, 1e-6)) << dtype_name(et);
  }
  Tensor hb = random_tensor(DType::kFloat16, {4}, 63, 0.5, 2), he = random_tensor(DType::kFloat16, {4}, 64, -2, 2);
  Tensor hwant = naive_map({4}, {hb, he}, DType::kFloat16, [](const std::vector<double>& v) { return std::pow(v[0], v[1]); });
  EXPECT_TRUE(tensors_close(run1({"Pow", {hb, he}}), hwant, 2e-3, 2e-3));
  // Integer base: exact integer power; float exponent computed in double and truncated.
  Tensor ib = Tensor::from_vector<int32_t>({4}, {2, -3, 5, 1});
  EXPECT_EQ(run1({"Pow", {ib, Tensor::from_vector<int64_t>({4}, {10, 3, 0, 7})}}).to_double_vector(),
            (std::vector<double>{1024, -27, 1, 1}));
  EXPECT_EQ(run1({"Pow", {ib, Tensor::from_vector<float>({4}, {4.f, 2.f, 0.5f, 3.f})}}).to_double_vector(),
            (std::vector<double>{16, 9, 2, 1}));
  Tensor neg = Tensor::from_vector<int64_t>({4}, {2, -1, 1, -2});
  EXPECT_EQ(run1({"Pow", {Tensor::from_vector<int64_t>({4}, {-1, -1, 2, 1}), neg}}).to_double_vector(),
            (std::vector<double>{1, -1, 2, 1}));
  Status st = run_err({"Pow", {Tensor::from_vector<int64_t>({1}, {0}), Tensor::from_vector<int64_t>({1}, {-1})}});
  EXPECT_TRUE(contains(st.message(), "Pow_node")) << st.message();
}

TEST(BinaryMath, VariadicMaxMinSumMeanBroadcast) {
  for (DType dt : {DType::kFloat32, DType::kFloat16, DType::kBFloat16, DType::kFloat64, DType::kInt32, DType::kUInt8}) {
    Tensor a = random_tensor(dt, {2, 1, 4}, 71, 0, 50), b = random_tensor(dt, {3, 1}, 72, 0, 50);
    Tensor c = random_tensor(dt, {4}, 73, 0, 50);
    Dims od{2, 3, 4};
    auto check = [&](const char* op, std::function<double(const std::vector<double>&)> ref, double tol) {
      EXPECT_TRUE(tensors_close(run1({op, {a, b, c}}), naive_map(od, {a, b, c}, dt, ref), tol, tol))
          << op << " " << dtype_name(dt);
    };
    check("Max", [](const std::vector<double>& v) { return std::max({v[0], v[1], v[2]}); }, 0);
    check("Min", [](const std::vector<double>& v) { return std::min({v[0], v[1], v[2]}); }, 0);
    check("Sum", [](const std::vector<double>& v) { return v[0] + v[1] + v[2]; }, rtol_for(dt));
    if (is_floating(dt)) check("Mean", [](const std::vector<double>& v) { return (v[0] + v[1] + v[2]) / 3; }, rtol_for(dt));
  }
  Tensor one = random_tensor(DType::kFloat32, {3, 2}, 74);
  EXPECT_TRUE(tensors_close(run1({"Sum", {one}}), one, 0, 0));
  EXPECT_TRUE(tensors_close(run1({"Mean", {one}}), one, 0, 0));
}

TEST(BinaryMath, MaxMinPropagateNaN) {
  const float nan = std::nanf("");
  Tensor a = Tensor::from_vector<float>({3}, {nan, 1.f, 2.f});
  Tensor b = Tensor::from_vector<float>({3}, {5.f, nan, 1.f});
  for (const char* op : {"Max", "Min"}) {
    auto v = run1({op, {a, b}}).to_double_vector();
    EXPECT_TRUE(std::isnan(v[0]) && std::isnan(v[1])) << op;
    EXPECT_EQ(v[2], std::string(op) == "Max" ? 2 : 1);
  }
}

TEST(BinaryMath, SymbolicShapesAtImport) {
  auto g = std::make_shared<Graph>();
  Value* x = g->add_value("x", {DType::kFloat32, Shape({Dim::symbolic("n"), Dim(1)})});
  Value* y = g->add_value("y", {DType::kFloat32, Shape({Dim::symbolic("m")})});
  Value* z = g->add_value("z", {DType::kFloat32, Shape({Dim(2), Dim::symbolic("n"), Dim(5)})});
  Value* e = g->add_constant("e", Tensor::scalar<int64_t>(2));
  Value *s = g->add_value("s"), *p = g->add_value("p"), *c = g->add_value("c"), *w = g->add_value("w");
  g->inputs = {x, y, z};
  g->add_node("Add", {x, y}, {s}, "add", "", 14);
  g->add_node("Pow", {z, e}, {p}, "pow", "", 15);
  g->add_node("Less", {x, z}, {c}, "less", "", 13);
  g->add_node("Max", {x, y, z}, {w}, "max", "", 13);
  g->outputs = {s, p, c, w};
  ASSERT_TRUE(infer_shapes(*g).ok());
  EXPECT_EQ(s->type.to_string(), "float32[n,m]");
  EXPECT_EQ(p->type.to_string(), "float32[2,n,5]");
  EXPECT_EQ(c->type.to_string(), "bool[2,n,5]");
  EXPECT_EQ(w->type.shape.rank(), 3u);
  EXPECT_EQ(w->type.shape[2].value, 5);
}

TEST(BinaryMath, Errors) {
  Tensor a = random_tensor(DType::kFloat32, {2, 3}), b = random_tensor(DType::kFloat32, {4});
  Status st = run_err({"Add", {a, b}});
  EXPECT_EQ(st.code(), StatusCode::kInvalidModel);
  EXPECT_TRUE(contains(st.message(), "Add_node") && contains(st.message(), "broadcast")) << st.message();
  st = run_err({"Sum", {a, a, random_tensor(DType::kFloat32, {3, 3})}});
  EXPECT_TRUE(contains(st.message(), "Sum_node")) << st.message();
  st = run_err({"Mul", {a, random_tensor(DType::kFloat64, {2, 3})}});
  EXPECT_TRUE(contains(st.message(), "Mul_node") && contains(st.message(), "float64")) << st.message();
  Attributes fmod;
  fmod.set("fmod", int64_t{3});
  st = run_err({"Mod", {a, a}, {}, fmod});
  EXPECT_TRUE(contains(st.message(), "Mod_node") && contains(st.message(), "fmod")) << st.message();
  st = run_err({"Mod", {a, a}});  // fmod=0 is for integers only
  EXPECT_TRUE(contains(st.message(), "Mod_node") && contains(st.message(), "fmod")) << st.message();
  EXPECT_EQ(run_err({"Mean", {Tensor::from_vector<int32_t>({1}, {1})}}).code(), StatusCode::kUnsupported);
  EXPECT_EQ(run_err({"Add", {Tensor::from_vector<bool>({1}, {true}), Tensor::from_vector<bool>({1}, {true})}}).code(),
            StatusCode::kUnsupported);
}

}  // namespace
}  // namespace kiln::test
