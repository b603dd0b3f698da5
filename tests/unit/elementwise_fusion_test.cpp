// The elementwise-fusion pass (structure after it, equal CPU outputs before and after, what it
// must leave alone) and kiln.FusedElementwise's program text and CPU kernel.
#include "ops/fused_elementwise.hpp"
#include "ops/onnx_dtype.hpp"
#include "passes_test_util.hpp"

namespace kiln::passtest {
namespace {

auto fusion() { return with_dce(make_elementwise_fusion_pass); }

std::vector<const Node*> fused_nodes(const Graph& g) {
  std::vector<const Node*> out;
  for (const auto& n : g.nodes())
    if (n->op_type == "FusedElementwise") out.push_back(n.get());
  return out;
}

TEST(ElementwiseFusionPass, ChainWithBroadcastAndScalarsIsOneNode) {
  auto make = [] {
    G m;
    Value* x = m.input("x", {2, 3, 4});
    Value* b = m.random_const("b", {4});
    Value* a = m.op("Add", {x, b}, "a");
    Value* s = m.op("Sigmoid", {a}, "s");
    Value* p = m.op("Mul", {a, s}, "p");
    Value* h = m.op("Mul", {p, m.scalar("half", 0.5f)}, "h");
    Value* r = m.op("Relu", {h}, "r");
    m.g->outputs = {r};
    return m;
  };
  GraphPtr g = check_before_after(make, fusion(), 1e-6);
  ASSERT_EQ(ops(*g), std::vector<std::string>{"FusedElementwise"});
  const Node* f = g->nodes()[0].get();
  EXPECT_EQ(f->domain, "kiln");
  ASSERT_EQ(f->inputs.size(), 2u);  // x and b; 0.5 is an immediate
  EXPECT_EQ(f->outputs[0]->name, "r");
  EXPECT_EQ(f->attrs.s(kFusedAttr, ""), "a:Add,s:Sigmoid,p:Mul,h:Mul,r:Relu");
  const std::string prog = f->attrs.s("program", "");
  EXPECT_NE(prog.find("#0x1p-1"), std::string::npos) << prog;
  auto parsed = fused_ew::parse_program(prog);
  ASSERT_TRUE(parsed.ok()) << parsed.status().message();
  EXPECT_EQ(parsed->code.size(), 5u);
  EXPECT_EQ(fused_ew::format_program(*parsed), prog);
}

TEST(ElementwiseFusionPass, ValueWithAnOutsideReaderStaysOutside) {
  auto make = [] {
    G m;
    Value* x = m.input("x", {2, 5});
    Value* y = m.input("y", {2, 5});
    Value* a = m.op("Add", {x, y}, "a");
    Value* sm = m.op("Softmax", {a}, "sm");  // reads a: a cannot be inside a group
    Value* r = m.op("Relu", {a}, "r");
    Value* t = m.op("Tanh", {r}, "t");
    Value* o = m.op("Mul", {t, sm}, "o");
    m.g->outputs = {o};
    return m;
  };
  GraphPtr g = check_before_after(make, fusion(), 1e-6);
  EXPECT_EQ(count(*g, "Add"), 1);
  EXPECT_EQ(count(*g, "Softmax"), 1);
  auto f = fused_nodes(*g);
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(f[0]->attrs.s(kFusedAttr, ""), "r:Relu,t:Tanh,o:Mul");
}

TEST(ElementwiseFusionPass, GraphOutputsAreNotInner) {
  auto make = [] {
    G m;
    Value* x = m.input("x", {3, 4});
    Value* a = m.op("Exp", {x}, "a");
    Value* b = m.op("Neg", {a}, "b");
    m.g->outputs = {a, b};
    return m;
  };
  GraphPtr g = check_before_after(make, fusion());
  EXPECT_EQ(count(*g, "FusedElementwise"), 0);
  EXPECT_EQ(count(*g, "Exp"), 1);
}

TEST(ElementwiseFusionPass, NumpyBroadcastingAcrossInputs) {
  auto make = [] {
    G m;
    Value* x = m.input("x", {2, 1, 4});
    Value* y = m.input("y", {3, 1});
    Value* z = m.input("z", {4});
    Value* a = m.op("Add", {x, y}, "a");
    Value* b = m.op("Mul", {a, z}, "b");
    Value* c = m.op("Sub", {b, x}, "c");
    Value* d = m.op("Max", {c, y}, "d");
    Value* e = m.op("Div", {d, m.scalar("three", 3.f)}, "e");
    m.g->outputs = {e};
    return m;
  };
  GraphPtr g = check_before_after(make, fusion(), 1e-6);
  ASSERT_EQ(ops(*g), std::vector<std::string>{"FusedElementwise"});
  EXPECT_EQ(g->nodes()[0]->inputs.size(), 3u);
  EXPECT_EQ(*g->nodes()[0]->outputs[0]->type.shape.to_dims(), (Dims{2, 3, 4}));
}

// A smaller producer (the squeeze-excitation gate [N, C, 1, 1]) joins the group and is computed
// per output element.
TEST(ElementwiseFusionPass, BroadcastProducerJoinsTheGroup) {
  auto make = [] {
    G m;
    Value* x = m.input("x", {2, 3, 4, 5});
    Value* s = m.input("s", {2, 3, 1, 1});
    Value* gate = m.op("HardSigmoid", {s}, "gate", attrs({{"alpha", 0.25f}}));
    Value* y = m.op("Mul", {x, gate}, "y");
    m.g->outputs = {y};
    return m;
  };
  GraphPtr g = check_before_after(make, fusion(), 1e-6);
  ASSERT_EQ(ops(*g), std::vector<std::string>{"FusedElementwise"});
  EXPECT_EQ(g->nodes()[0]->attrs.s(kFusedAttr, ""), "gate:HardSigmoid,y:Mul");
}

TEST(ElementwiseFusionPass, CapsSplitLongChainsAndWideGroups) {
  auto chain = [] {
    G m;
    Value* v = m.input("x", {4, 6}, DType::kFloat32);
    for (int i = 0; i < 40; ++i) v = m.op(i % 2 ? "Tanh" : "Sin", {v}, "n" + std::to_string(i));
    m.g->outputs = {v};
    return m;
  };
  GraphPtr g = check_before_after(chain, fusion(), 1e-6);
  auto f = fused_nodes(*g);
  ASSERT_EQ(f.size(), 2u);
  EXPECT_EQ(g->nodes().size(), 2u);
  for (const Node* n : f) EXPECT_LE(fused_ew::parse_program(n->attrs.s("program", ""))->code.size(), 32u);

  auto wide = [] {
    G m;
    Value* v = m.input("x0", {5});
    for (int i = 1; i < 12; ++i) v = m.op("Add", {v, m.input("x" + std::to_string(i), {5})}, "a" + std::to_string(i));
    m.g->outputs = {v};
    return m;
  };
  g = check_before_after(wide, fusion(), 1e-6);
  f = fused_nodes(*g);
  ASSERT_GE(f.size(), 1u);
  for (const Node* n : f) EXPECT_LE(n->inputs.size(), 8u);
}

TEST(ElementwiseFusionPass, HalfTypesCastsAndWhereMatchUnfusedExactly) {
  for (DType t : {DType::kFloat16, DType::kBFloat16}) {
    SCOPED_TRACE(std::string(dtype_name(t)));
    auto make = [t] {
      G m;
      Value* x = m.input("x", {3, 7}, t);
      Value* y = m.input("y", {7}, t);
      Value* xf = m.op("Cast", {x}, "xf", attrs({{"to", int64_t(onnx_code_of(DType::kFloat32))}}));
      Value* e = m.op("Exp", {xf}, "e");
      Value* eh = m.op("Cast", {e}, "eh", attrs({{"to", int64_t(onnx_code_of(t))}}));
      Value* lt = m.op("Less", {x, y}, "lt");
      Value* g1 = m.op("Gelu", {y}, "g1");
      Value* w = m.op("Where", {lt, eh, g1}, "w");
      Value* c = m.op("Clip", {w, m.constant("lo", Tensor::scalar<float>(-0.5f).cast(t)),
                                m.constant("hi", Tensor::scalar<float>(2.f).cast(t))}, "c");
      m.g->outputs = {c};
      return m;
    };
    GraphPtr g = check_before_after(make, fusion(), 1e-7);
    ASSERT_EQ(ops(*g), std::vector<std::string>{"FusedElementwise"});  // Gelu of [7] too, per element
  }
}

TEST(ElementwiseFusionPass, CanBeDisabled) {
  G m;
  Value* x = m.input("x", {3});
  m.g->outputs = {m.op("Relu", {m.op("Exp", {x}, "e")}, "r")};
  ASSERT_TRUE(infer_shapes(*m.g).ok());
  PassManagerOptions o;
  o.disabled = {"elementwise-fusion"};
  PassManager pm(o);
  add_cuda_final_passes(pm);
  ASSERT_TRUE(pm.run(*m.g).ok());
  EXPECT_EQ(ops(*m.g), (std::vector<std::string>{"Exp", "Relu"}));
  EXPECT_TRUE(check_pass_names({"elementwise-fusion"}, "--disable-pass").ok());
}

TEST(FusedElementwiseOp, ProgramErrorsNameTheProblem) {
  EXPECT_FALSE(fused_ew::parse_program("").ok());
  EXPECT_FALSE(fused_ew::parse_program("Frob f32 i0; out t0").ok());
  EXPECT_FALSE(fused_ew::parse_program("Add f32 i0; out t0").ok());       // arity
  EXPECT_FALSE(fused_ew::parse_program("Relu f32 t0; out t0").ok());      // use before definition
  EXPECT_FALSE(fused_ew::parse_program("Less f32 i0 i1; out t0").ok());   // comparison result must be bool
  EXPECT_FALSE(fused_ew::parse_program("Relu f32 i0").ok());              // no outputs
  auto p = fused_ew::parse_program("Clip f16 i0 a=-0x1p+0 b=0x1p+1; Mul f16 t0 #0x1.8p+1; out t1");
  ASSERT_TRUE(p.ok()) << p.status().message();
  EXPECT_EQ(p->code[0].a, -1.f);
  EXPECT_EQ(p->code[0].b, 2.f);
  EXPECT_EQ(p->code[1].args[1].imm, 3.f);
  EXPECT_EQ(p->num_inputs, 1);
}

TEST(FusedElementwiseOp, CpuKernelMatchesNaive) {
  // y = Relu(x * w + 1) with x [2, 3], w [3]; a second output-free check of rounding to float16.
  test::OpCall call{.op_type = "FusedElementwise",
                    .inputs = {test::random_tensor(DType::kFloat32, {2, 3}, 1),
                               test::random_tensor(DType::kFloat32, {3}, 2)},
                    .domain = "kiln"};
  call.attrs.set("program", std::string("Mul f32 i0 i1; Add f32 t0 #0x1p+0; Relu f32 t1; out t2"));
  auto out = test::run_op(call);
  ASSERT_TRUE(out.ok()) << out.status().message();
  const float* x = call.inputs[0].data<float>();
  const float* w = call.inputs[1].data<float>();
  for (int i = 0; i < 6; ++i) EXPECT_FLOAT_EQ((*out)[0].data<float>()[i], std::max(0.f, x[i] * w[i % 3] + 1.f));
  call.attrs.set("program", std::string("Mul f32 i0 i1 i1; out t0"));
  auto bad = test::run_op(call);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("FusedElementwise"), std::string::npos) << bad.status().message();
}

}  // namespace
}  // namespace kiln::passtest
