// Model-local functions are inlined at import.
#include <google/protobuf/unknown_field_set.h>

#include "onnx_test_util.hpp"

namespace kiln {
namespace {

using namespace kiln::test;
using onnx::TensorProto;

// local.Scale(X) = X * alpha (attribute, default 3); local.Twice(X) = Scale(Scale(X, alpha=2)).
onnx::ModelProto model_with_functions() {
  auto m = make_model(13);
  auto* op = m.add_opset_import();
  op->set_domain("local");
  op->set_version(1);

  onnx::FunctionProto* scale = m.add_functions();
  scale->set_name("Scale");
  scale->set_domain("local");
  scale->add_input("X");
  scale->add_output("Y");
  // alpha defaults to 3: FunctionProto.attribute_proto (field 11, IR 9) is newer than the proto
  // kiln builds against, so it is written as an unknown field, as a newer writer's bytes parse.
  onnx::AttributeProto def;
  def.set_name("alpha");
  def.set_type(onnx::AttributeProto::FLOAT);
  def.set_f(3.f);
  scale->GetReflection()->MutableUnknownFields(scale)->AddLengthDelimited(11, def.SerializeAsString());
  auto* c = scale->add_node();
  c->set_op_type("Constant");
  c->add_output("c");
  auto* ref = c->add_attribute();
  ref->set_name("value_float");
  ref->set_type(onnx::AttributeProto::FLOAT);
  ref->set_ref_attr_name("alpha");
  auto* mul = scale->add_node();
  mul->set_op_type("Mul");
  mul->add_input("X");
  mul->add_input("c");
  mul->add_output("Y");
  auto* o = scale->add_opset_import();
  o->set_domain("");
  o->set_version(13);

  onnx::FunctionProto* twice = m.add_functions();
  twice->set_name("Twice");
  twice->set_domain("local");
  twice->add_input("A");
  twice->add_output("B");
  auto* first = twice->add_node();
  first->set_op_type("Scale");
  first->set_domain("local");
  first->set_name("inner");
  first->add_input("A");
  first->add_output("mid");
  attr_f(first, "alpha", 2.f);
  auto* second = twice->add_node();
  second->set_op_type("Scale");
  second->set_domain("local");
  second->add_input("mid");
  second->add_output("B");
  return m;
}

TEST(OnnxFunctions, CallsAreInlinedWithAttributes) {
  auto m = model_with_functions();
  auto* g = m.mutable_graph();
  add_input(g, "x", TensorProto::FLOAT, {2});
  add_node(g, "Scale", {"x"}, {"y"}, "call_a")->set_domain("local");
  attr_f(g->mutable_node(0), "alpha", 5.f);
  add_node(g, "Twice", {"y"}, {"z"}, "call_b")->set_domain("local");
  add_output(g, "z");
  auto model = import_proto(m);
  ASSERT_TRUE(model.ok()) << model.status().to_string();
  const Graph& graph = *model->graph;
  ASSERT_EQ(graph.nodes().size(), 3u);  // three Muls; the Constants are values
  for (const auto& n : graph.nodes()) EXPECT_EQ(n->op_type, "Mul");
  auto factor = [&](const std::string& name) {
    const Value* v = graph.find_value(name);
    return v && v->constant ? v->constant->scalar_as_double() : -1.0;
  };
  EXPECT_EQ(factor("call_a/c"), 5.0);        // the call's attribute
  EXPECT_EQ(factor("call_b/inner/c"), 2.0);  // a nested call's attribute
  // The second nested call gave no alpha: the function's default.
  bool found_default = false;
  for (const auto& v : graph.values()) found_default |= v->constant && v->constant->scalar_as_double() == 3.0;
  EXPECT_TRUE(found_default);
  EXPECT_EQ(graph.find_value("y")->producer->name, "call_a/Mul_1");
  EXPECT_NE(graph.find_value("z")->producer, nullptr);
  EXPECT_NE(graph.find_value("call_b/mid"), nullptr);
}

TEST(OnnxFunctions, RecursionAndArityErrors) {
  auto m = model_with_functions();
  auto* scale = m.mutable_functions(0);
  auto* self = scale->add_node();  // Scale calls itself
  self->set_op_type("Scale");
  self->set_domain("local");
  self->add_input("Y");
  self->add_output("again");
  auto* g = m.mutable_graph();
  add_input(g, "x", TensorProto::FLOAT, {2});
  add_node(g, "Scale", {"x"}, {"y"}, "loop")->set_domain("local");
  add_output(g, "y");
  EXPECT_TRUE(error_contains(import_proto(m).status(), StatusCode::kInvalidModel, {"test.onnx", "deeper"}));

  auto m2 = model_with_functions();
  auto* g2 = m2.mutable_graph();
  add_input(g2, "x", TensorProto::FLOAT, {2});
  add_node(g2, "Scale", {"x", "x"}, {"y"}, "too_many")->set_domain("local");
  add_output(g2, "y");
  EXPECT_TRUE(error_contains(import_proto(m2).status(), StatusCode::kInvalidModel, {"'too_many'", "2 inputs"}));
}

}  // namespace
}  // namespace kiln
