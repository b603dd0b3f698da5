// gelu-fusion, layernorm-fusion, hardswish-fusion: exporter subgraphs become one standard op with
// the same outputs; near misses stay.
#include <cmath>

#include "passes_test_util.hpp"

namespace kiln {
namespace {

using namespace passtest;

// Erf GELU in the orderings exporters write: 0 = ((x * a) * 0.5), 1 = ((x * 0.5) * a),
// 2 = ((a * 0.5) * x); with x / sqrt(2) (0, 2) or x * (1/sqrt(2)) (1).
G erf_gelu(int order) {
  G b;
  Value* x = b.input("x", {2, 8});
  Value* s = order == 1 ? b.op("Mul", {x, b.scalar("rs2", 0.70710678f)}, "scale")
                        : b.op("Div", {x, b.scalar("s2", 1.4142135f)}, "scale");
  Value* e = b.op("Erf", {s}, "erf");
  Value* a = b.op("Add", {b.scalar("one", 1.f), e}, "add");
  Value* y;
  if (order == 0) y = b.op("Mul", {b.op("Mul", {x, a}, "m1"), b.scalar("half", 0.5f)}, "y");
  else if (order == 1) y = b.op("Mul", {b.op("Mul", {x, b.scalar("half", 0.5f)}, "m1"), a}, "y");
  else y = b.op("Mul", {b.op("Mul", {a, b.scalar("half", 0.5f)}, "m1"), x}, "y");
  b.g->outputs = {b.op("Relu", {y}, "after")};
  return b;
}

TEST(PassesGelu, FusesErfGeluInEveryOrdering) {
  for (int order = 0; order < 3; ++order) {
    SCOPED_TRACE(order);
    GraphPtr g = check_before_after([order] { return erf_gelu(order); }, with_dce(make_gelu_fusion_pass));
    EXPECT_EQ(ops(*g), (std::vector<std::string>{"Gelu", "Relu"}));
    EXPECT_EQ(g->nodes()[0]->attrs.s("approximate"), "none");
    EXPECT_EQ(g->nodes()[0]->outputs[0]->name, "y");
    EXPECT_NE(g->nodes()[0]->attrs.s(kFusedAttr).find("erf:Erf"), std::string::npos);
  }
}

TEST(PassesGelu, FusesTanhGeluWithPowOrCube) {
  for (bool pow : {true, false}) {
    SCOPED_TRACE(pow);
    auto make = [pow] {
      G b;
      Value* x = b.input("x", {3, 7});
      Value* cube = pow ? b.op("Pow", {x, b.scalar("three", 3.f)}, "cube")
                        : b.op("Mul", {x, b.op("Mul", {x, x}, "sq")}, "cube");
      Value* inner = b.op("Add", {x, b.op("Mul", {cube, b.scalar("c", 0.044715f)}, "cm")}, "inner");
      Value* t = b.op("Tanh", {b.op("Mul", {b.scalar("k", 0.7978845608f), inner}, "km")}, "tanh");
      Value* a = b.op("Add", {t, b.scalar("one", 1.f)}, "add");
      b.g->outputs = {b.op("Mul", {b.op("Mul", {x, b.scalar("half", 0.5f)}, "xh"), a}, "y")};
      return b;
    };
    GraphPtr g = check_before_after(make, with_dce(make_gelu_fusion_pass));
    EXPECT_EQ(ops(*g), std::vector<std::string>{"Gelu"});
    EXPECT_EQ(g->nodes()[0]->attrs.s("approximate"), "tanh");
    EXPECT_EQ(g->outputs[0]->name, "y");
  }
}

TEST(PassesGelu, LeavesNearMissesAlone) {
  auto make = [] {
    G b;
    Value* x = b.input("x", {2, 8});
    Value* e = b.op("Erf", {b.op("Div", {x, b.scalar("s2", 2.f)}, "scale")}, "erf");  // not sqrt(2)
    Value* a = b.op("Add", {e, b.scalar("one", 1.f)}, "add");
    b.g->outputs = {b.op("Mul", {b.op("Mul", {x, a}, "m1"), b.scalar("half", 0.5f)}, "y")};
    return b;
  };
  GraphPtr g = check_before_after(make, with_dce(make_gelu_fusion_pass));
  EXPECT_EQ(count(*g, "Gelu"), 0);
  EXPECT_EQ(count(*g, "Erf"), 1);
}

// ReduceMean/Sub/Pow/ReduceMean/Add/Sqrt/Div/Mul/Add over the last axis (or the last two).
G decomposed_layernorm(std::vector<int64_t> axes, bool affine, bool square_by_mul) {
  G b;
  Value* x = b.input("x", {2, 3, 8});
  Value* m = b.op("ReduceMean", {x, b.ints("axes", axes)}, "mean");
  Value* d = b.op("Sub", {x, m}, "sub");
  Value* p = square_by_mul ? b.op("Mul", {d, d}, "sq") : b.op("Pow", {d, b.scalar("two", 2.f)}, "sq");
  Value* v = b.op("ReduceMean", {p, b.ints("axes2", axes)}, "var");
  Value* s = b.op("Sqrt", {b.op("Add", {v, b.scalar("eps", 1e-5f)}, "add_eps")}, "sqrt");
  Value* n = b.op("Div", {d, s}, "div");
  if (affine) {
    Dims pd = axes.size() == 1 ? Dims{8} : Dims{3, 8};
    n = b.op("Add", {b.op("Mul", {n, b.random_const("gamma", pd)}, "mul"), b.random_const("beta", pd)}, "y");
  }
  b.g->outputs = {n};
  return b;
}

TEST(PassesLayerNorm, FusesTheDecomposedForm) {
  for (auto axes : {std::vector<int64_t>{-1}, std::vector<int64_t>{1, 2}}) {
    for (bool affine : {true, false}) {
      SCOPED_TRACE(::testing::Message() << axes.size() << " axes, affine " << affine);
      GraphPtr g = check_before_after([&] { return decomposed_layernorm(axes, affine, !affine); },
                                      with_dce(make_layernorm_fusion_pass));
      ASSERT_EQ(ops(*g), std::vector<std::string>{"LayerNormalization"});
      const Node& ln = *g->nodes()[0];
      EXPECT_EQ(ln.attrs.i("axis"), axes.size() == 1 ? 2 : 1);
      EXPECT_FLOAT_EQ(ln.attrs.f("epsilon"), 1e-5f);
      EXPECT_EQ(ln.inputs.size(), affine ? 3u : 2u);
      EXPECT_EQ(g->outputs[0]->name, affine ? "y" : "div");
    }
  }
}

TEST(PassesLayerNorm, LeavesNonTrailingAxesAlone) {
  GraphPtr g = check_before_after([] { return decomposed_layernorm({1}, true, false); },
                                  with_dce(make_layernorm_fusion_pass));
  EXPECT_EQ(count(*g, "LayerNormalization"), 0);
}

TEST(PassesHardSwish, FusesClipFormsAndHardSigmoid) {
  for (int form = 0; form < 3; ++form) {
    SCOPED_TRACE(form);
    auto make = [form] {
      G b;
      Value* x = b.input("x", {4, 6}, DType::kFloat32);
      b.feeds["x"] = test::random_tensor(DType::kFloat32, {4, 6}, 5, -5, 5);
      Value* r6 = b.op("Clip", {b.op("Add", {x, b.scalar("three", 3.f)}, "add"), b.scalar("lo", 0.f),
                                b.scalar("hi", 6.f)}, "clip");
      Value* y;
      if (form == 0) y = b.op("Div", {b.op("Mul", {x, r6}, "m"), b.scalar("six", 6.f)}, "y");
      else if (form == 1) y = b.op("Mul", {x, b.op("Div", {r6, b.scalar("six", 6.f)}, "hsig")}, "y");
      else y = b.op("Mul", {b.op("Mul", {r6, b.scalar("sixth", 1.f / 6.f)}, "hsig"), b.scalar("one", 1.f)}, "y");
      b.g->outputs = {y};
      return b;
    };
    GraphPtr g = check_before_after(make, with_dce(make_hardswish_fusion_pass), 1e-6);
    if (form == 2) {
      EXPECT_EQ(count(*g, "HardSigmoid"), 1);  // only the sigmoid part matches
    } else {
      EXPECT_EQ(ops(*g), std::vector<std::string>{"HardSwish"});
    }
  }
}

}  // namespace
}  // namespace kiln
