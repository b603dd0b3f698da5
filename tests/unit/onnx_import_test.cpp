// ONNX import: values, constants, types, attributes and subgraphs.
#include "onnx_test_util.hpp"

namespace kiln {
namespace {

using namespace kiln::test;
using onnx::TensorProto;

TEST(OnnxImport, ImportsValuesTypesAndNames) {
  auto m = make_model(13);
  auto* g = m.mutable_graph();
  add_input(g, "x", TensorProto::FLOAT, {"batch", 3, D(), "unk__123"});
  *g->add_initializer() = float_tensor("w", {3}, {1, 2, 3}, /*raw=*/true);
  add_node(g, "Identity", {"x"}, {"a"}, "first");
  add_node(g, "Identity", {"a"}, {"b"});  // unnamed: "Identity_1"
  add_node(g, "Identity", {"w"}, {"c"});
  add_output(g, "b");
  add_output(g, "c");
  auto model = import_proto(m);
  ASSERT_TRUE(model.ok()) << model.status().to_string();
  const Graph& graph = *model->graph;
  EXPECT_EQ(model->opset_imports.at(""), 13);
  EXPECT_EQ(model->ir_version, 8);
  EXPECT_EQ(model->producer_name, "kiln-test");
  ASSERT_EQ(graph.inputs.size(), 1u);
  EXPECT_EQ(graph.inputs[0]->type.to_string(), "float32[batch,3,?,unk__123]");
  ASSERT_EQ(graph.outputs.size(), 2u);
  // Shape inference (Identity) carried the symbolic type to the outputs.
  EXPECT_EQ(graph.outputs[0]->type.to_string(), "float32[batch,3,?,unk__123]");
  EXPECT_EQ(graph.outputs[1]->type.to_string(), "float32[3]");
  EXPECT_NE(find_node(graph, "first"), nullptr);
  EXPECT_NE(find_node(graph, "Identity_1"), nullptr);
  const Value* w = graph.find_value("w");
  ASSERT_TRUE(w && w->is_constant());
  EXPECT_EQ(w->constant->to_double_vector(), (std::vector<double>{1, 2, 3}));
}

TEST(OnnxImport, NodesOutOfOrderAreSorted) {
  auto m = make_model(13);
  auto* g = m.mutable_graph();
  add_input(g, "x", TensorProto::FLOAT, {2});
  add_node(g, "Identity", {"a"}, {"b"}, "second");
  add_node(g, "Identity", {"x"}, {"a"}, "first");
  add_output(g, "b");
  auto model = import_proto(m);
  ASSERT_TRUE(model.ok()) << model.status().to_string();
  EXPECT_EQ(model->graph->nodes()[0]->name, "first");
}

TEST(OnnxImport, InferShapesOptionOff) {
  auto m = make_model(13);
  auto* g = m.mutable_graph();
  add_input(g, "x", TensorProto::FLOAT, {2});
  add_node(g, "Identity", {"x"}, {"y"});
  add_output(g, "y");
  ImportOptions opts;
  opts.infer_shapes = false;
  auto model = import_proto(m, opts);
  ASSERT_TRUE(model.ok());
  EXPECT_EQ(model->graph->outputs[0]->type.dtype, DType::kUndefined);
}

TEST(OnnxImport, DeclaredTypesFromValueInfoAndOutputs) {
  auto m = make_model(13);
  auto* g = m.mutable_graph();
  add_input(g, "x", TensorProto::FLOAT, {2});
  add_node(g, "Custom", {"x"}, {"a"})->set_domain("my.domain");
  add_node(g, "Custom", {"a"}, {"b"})->set_domain("my.domain");
  add_value_info(g, "a", TensorProto::FLOAT16, {"n", 4});
  std::vector<D> dims{7};
  add_output(g, "b", TensorProto::INT32, &dims);
  auto* op = m.add_opset_import();
  op->set_domain("my.domain");
  op->set_version(3);
  auto* unused = m.add_opset_import();  // a domain no node uses is fine
  unused->set_domain("ai.onnx.ml");
  unused->set_version(2);
  auto model = import_proto(m);
  ASSERT_TRUE(model.ok()) << model.status().to_string();
  EXPECT_EQ(model->graph->find_value("a")->type.to_string(), "float16[n,4]");
  EXPECT_EQ(model->graph->find_value("b")->type.to_string(), "int32[7]");
  const Node* n = model->graph->nodes()[0].get();
  EXPECT_EQ(n->domain, "my.domain");
  EXPECT_EQ(n->opset, 3);
}

TEST(OnnxImport, UnknownOpsDoNotFailImportAndLeaveConsumersUntyped) {
  auto m = make_model(13);
  auto* g = m.mutable_graph();
  add_input(g, "x", TensorProto::FLOAT, {2});
  add_node(g, "NoSuchOp", {"x"}, {"a"}, "mystery");
  add_node(g, "Identity", {"a"}, {"b"});
  add_output(g, "b");
  auto model = import_proto(m);
  ASSERT_TRUE(model.ok()) << model.status().to_string();
  EXPECT_EQ(model->graph->outputs[0]->type.dtype, DType::kUndefined);
}

template <typename T>
std::string bytes_of(const std::vector<T>& v) {
  return std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(T));
}

TEST(OnnxImport, InitializerDtypesTypedAndRaw) {
  auto m = make_model(13);
  auto* g = m.mutable_graph();
  auto add = [&](const std::string& name, int32_t type, std::vector<int64_t> dims) {
    TensorProto* t = g->add_initializer();
    t->set_name(name);
    t->set_data_type(type);
    for (int64_t d : dims) t->add_dims(d);
    add_node(g, "Identity", {name}, {name + "_out"});
    add_output(g, name + "_out");
    return t;
  };
  add("f16", TensorProto::FLOAT16, {2})->mutable_int32_data()->Add(Half(1.5f).bits);
  g->mutable_initializer(0)->add_int32_data(Half(-2.f).bits);
  add("bf16", TensorProto::BFLOAT16, {1})->add_int32_data(BFloat16(3.f).bits);
  auto* b = add("b", TensorProto::BOOL, {3});
  b->add_int32_data(1), b->add_int32_data(0), b->add_int32_data(7);
  add("i8", TensorProto::INT8, {2})->set_raw_data(bytes_of<int8_t>({-5, 6}));
  auto* u8 = add("u8", TensorProto::UINT8, {2});
  u8->add_int32_data(200), u8->add_int32_data(3);
  add("i16", TensorProto::INT16, {1})->add_int32_data(-300);
  add("u16", TensorProto::UINT16, {1})->add_int32_data(60000);
  add("i32", TensorProto::INT32, {1})->set_raw_data(bytes_of<int32_t>({-70000}));
  add("u32", TensorProto::UINT32, {1})->add_uint64_data(4000000000u);
  add("i64", TensorProto::INT64, {2, 1})->set_raw_data(bytes_of<int64_t>({-1, 1LL << 40}));
  add("u64", TensorProto::UINT64, {1})->add_uint64_data(1ULL << 63);
  add("f64", TensorProto::DOUBLE, {1})->add_double_data(0.125);
  add("rawbool", TensorProto::BOOL, {2})->set_raw_data(std::string("\x00\x05", 2));
  add("scalar", TensorProto::FLOAT, {})->add_float_data(9.f);
  add("empty", TensorProto::FLOAT, {0, 3});
  auto model = import_proto(m);
  ASSERT_TRUE(model.ok()) << model.status().to_string();
  auto value = [&](const std::string& name) { return *model->graph->find_value(name)->constant; };
  EXPECT_EQ(value("f16").dtype(), DType::kFloat16);
  EXPECT_EQ(value("f16").to_double_vector(), (std::vector<double>{1.5, -2}));
  EXPECT_EQ(value("bf16").to_double_vector(), (std::vector<double>{3}));
  EXPECT_EQ(value("b").to_double_vector(), (std::vector<double>{1, 0, 1}));
  EXPECT_EQ(value("i8").to_double_vector(), (std::vector<double>{-5, 6}));
  EXPECT_EQ(value("u8").to_double_vector(), (std::vector<double>{200, 3}));
  EXPECT_EQ(value("i16").to_double_vector(), (std::vector<double>{-300}));
  EXPECT_EQ(value("u16").to_double_vector(), (std::vector<double>{60000}));
  EXPECT_EQ(value("i32").to_double_vector(), (std::vector<double>{-70000}));
  EXPECT_EQ(value("u32").to_double_vector(), (std::vector<double>{4000000000.0}));
  EXPECT_EQ(value("i64").dims(), (Dims{2, 1}));
  EXPECT_EQ(*value("i64").to_int64_vector(), (std::vector<int64_t>{-1, 1LL << 40}));
  EXPECT_EQ(value("u64").data<uint64_t>()[0], 1ULL << 63);
  EXPECT_EQ(value("f64").dtype(), DType::kFloat64);
  EXPECT_EQ(value("f64").to_double_vector(), (std::vector<double>{0.125}));
  EXPECT_EQ(value("rawbool").data<uint8_t>()[1], 1);  // normalized to 0/1
  EXPECT_EQ(value("scalar").rank(), 0);
  EXPECT_EQ(value("empty").numel(), 0);
}

TEST(OnnxImport, TensorDataMismatchIsAnErrorNamingTheInitializer) {
  auto m = make_model(13);
  auto* g = m.mutable_graph();
  *g->add_initializer() = float_tensor("w", {2, 2}, {1, 2, 3});
  add_node(g, "Identity", {"w"}, {"y"});
  add_output(g, "y");
  EXPECT_TRUE(error_contains(import_proto(m).status(), StatusCode::kInvalidModel, {"test.onnx", "'w'", "needs 4"}));
  g->mutable_initializer(0)->clear_float_data();
  g->mutable_initializer(0)->set_raw_data("abc");
  EXPECT_TRUE(error_contains(import_proto(m).status(), StatusCode::kInvalidModel, {"'w'", "raw_data has 3 bytes"}));
  // A huge claimed shape is refused before anything is allocated.
  g->mutable_initializer(0)->set_dims(0, 1LL << 40);
  g->mutable_initializer(0)->set_dims(1, 1LL << 40);
  EXPECT_FALSE(import_proto(m).ok());
  g->mutable_initializer(0)->set_data_type(TensorProto::COMPLEX64);
  EXPECT_TRUE(error_contains(import_proto(m).status(), StatusCode::kUnsupported, {"'w'", "COMPLEX64"}));
}

TEST(OnnxImport, StringInitializersAndConstantsAreImported) {
  auto m = make_model(13);
  auto* g = m.mutable_graph();
  add_input(g, "x", TensorProto::FLOAT, {2});
  TensorProto* s = g->add_initializer();
  s->set_name("labels");
  s->set_data_type(TensorProto::STRING);
  s->add_dims(1);
  s->add_string_data("cat");
  add_node(g, "Identity", {"x"}, {"y"});
  add_output(g, "y");
  add_node(g, "Identity", {"labels"}, {"z"}, "uses_strings");
  add_output(g, "z");
  auto* c = add_node(g, "Constant", {}, {"words"});
  auto* a = add_attr(c, "value_strings", onnx::AttributeProto::STRINGS);
  a->add_strings("x"), a->add_strings("yz");
  add_node(g, "Identity", {"words"}, {"w"});
  add_output(g, "w");
  auto model = import_proto(m);
  ASSERT_TRUE(model.ok()) << model.status().to_string();
  const Tensor& labels = *model->graph->find_value("labels")->constant;
  ASSERT_EQ(labels.dtype(), DType::kString);
  EXPECT_EQ(labels.data<std::string>()[0], "cat");
  const Tensor& words = *model->graph->find_value("words")->constant;
  ASSERT_EQ(words.dims(), (Dims{2}));
  EXPECT_EQ(words.data<std::string>()[1], "yz");
  // string_data must hold one value per element
  s->add_string_data("dog");
  EXPECT_TRUE(error_contains(import_proto(m).status(), StatusCode::kInvalidModel, {"'labels'", "string"}));
}

TEST(OnnxImport, ConstantNodesBecomeConstants) {
  auto m = make_model(13);
  auto* g = m.mutable_graph();
  auto constant = [&](const std::string& out) {
    auto* n = add_node(g, "Constant", {}, {out});
    add_node(g, "Identity", {out}, {out + "_y"});
    add_output(g, out + "_y");
    return n;
  };
  auto* t = add_attr(constant("t"), "value", onnx::AttributeProto::TENSOR)->mutable_t();
  *t = float_tensor("", {2}, {4, 5});
  attr_f(constant("f"), "value_float", 2.5f);
  attr_floats(constant("fs"), "value_floats", {1, 2, 3});
  attr_i(constant("i"), "value_int", -4);
  attr_ints(constant("is"), "value_ints", {7, 8});
  auto model = import_proto(m);
  ASSERT_TRUE(model.ok()) << model.status().to_string();
  const Graph& graph = *model->graph;
  for (const auto& n : graph.nodes()) EXPECT_NE(n->op_type, "Constant");
  EXPECT_EQ(graph.find_value("t")->constant->to_double_vector(), (std::vector<double>{4, 5}));
  EXPECT_EQ(graph.find_value("f")->constant->rank(), 0);
  EXPECT_EQ(graph.find_value("f")->constant->to_double_vector(), (std::vector<double>{2.5}));
  EXPECT_EQ(graph.find_value("fs")->constant->dims(), (Dims{3}));
  EXPECT_EQ(graph.find_value("i")->constant->dtype(), DType::kInt64);
  EXPECT_EQ(graph.find_value("i")->constant->to_double_vector(), (std::vector<double>{-4}));
  EXPECT_EQ(*graph.find_value("is")->constant->to_int64_vector(), (std::vector<int64_t>{7, 8}));
  EXPECT_EQ(graph.outputs[0]->type.to_string(), "float32[2]");
}

TEST(OnnxImport, SparseConstantsAreErrorsStringConstantsImport) {
  auto m = make_model(13);
  auto* g = m.mutable_graph();
  auto* n = add_node(g, "Constant", {}, {"c"}, "sparse");
  add_attr(n, "sparse_value", onnx::AttributeProto::SPARSE_TENSOR);
  add_output(g, "c");
  EXPECT_TRUE(error_contains(import_proto(m).status(), StatusCode::kUnsupported, {"'sparse'", "sparse_value"}));
  n->clear_attribute();
  attr_s(n, "value_string", "hello");
  add_node(g, "Identity", {"c"}, {"d"}, "reader");
  auto model = import_proto(m);
  ASSERT_TRUE(model.ok()) << model.status().to_string();
  const Tensor& c = *model->graph->find_value("c")->constant;
  ASSERT_EQ(c.dtype(), DType::kString);
  EXPECT_EQ(c.rank(), 0);
  EXPECT_EQ(*c.data<std::string>(), "hello");
  n->clear_attribute();
  EXPECT_TRUE(error_contains(import_proto(m).status(), StatusCode::kInvalidModel, {"'sparse'", "exactly one"}));
}

TEST(OnnxImport, GraphInputThatIsAnInitializerIsAConstant) {
  auto m = make_model(9, 3);
  auto* g = m.mutable_graph();
  add_input(g, "x", TensorProto::FLOAT, {2});
  add_input(g, "w", TensorProto::FLOAT, {2});
  *g->add_initializer() = float_tensor("w", {2}, {1, 2});
  add_node(g, "Identity", {"w"}, {"y"});
  add_output(g, "y");
  auto model = import_proto(m);
  ASSERT_TRUE(model.ok()) << model.status().to_string();
  ASSERT_EQ(model->graph->inputs.size(), 1u);
  EXPECT_EQ(model->graph->inputs[0]->name, "x");
  EXPECT_TRUE(model->graph->find_value("w")->is_constant());
}

TEST(OnnxImport, OptionalEmptyInputsAndOutputs) {
  auto m = make_model(13);
  auto* g = m.mutable_graph();
  add_input(g, "x", TensorProto::FLOAT, {2});
  add_input(g, "m", TensorProto::FLOAT, {2});
  add_node(g, "Foo", {"x", "", "m"}, {"y", "", ""}, "opt")->set_domain("custom");
  add_node(g, "Split", {"x"}, {"s0", "", ""}, "split");
  add_output(g, "y");
  add_output(g, "s0");
  auto* op = m.add_opset_import();
  op->set_domain("custom");
  op->set_version(1);
  auto model = import_proto(m);
  ASSERT_TRUE(model.ok()) << model.status().to_string();
  const Node* n = find_node(*model->graph, "opt");
  ASSERT_EQ(n->inputs.size(), 3u);
  EXPECT_EQ(n->inputs[1], nullptr);
  EXPECT_EQ(n->inputs[2]->name, "m");
  EXPECT_EQ(n->outputs.size(), 1u);  // trailing absent outputs dropped
  EXPECT_EQ(find_node(*model->graph, "split")->outputs.size(), 3u);  // Split's count is its part count
}

TEST(OnnxImport, SubgraphsResolveOuterValues) {
  auto m = make_model(13);
  auto* g = m.mutable_graph();
  add_input(g, "cond", TensorProto::BOOL, {});
  add_input(g, "x", TensorProto::FLOAT, {2});
  auto* n = add_node(g, "If", {"cond"}, {"y"}, "if");
  auto* then_g = add_attr(n, "then_branch", onnx::AttributeProto::GRAPH)->mutable_g();
  then_g->set_name("then");
  add_node(then_g, "Identity", {"x"}, {"t"}, "then_id");  // outer-scope x
  add_output(then_g, "t");
  auto* else_g = add_attr(n, "else_branch", onnx::AttributeProto::GRAPH)->mutable_g();
  else_g->set_name("else");
  add_output(else_g, "x");  // an outer value as a branch output
  add_output(g, "y");
  auto model = import_proto(m);
  ASSERT_TRUE(model.ok()) << model.status().to_string();
  const Node* if_node = find_node(*model->graph, "if");
  const Graph* then_graph = if_node->attrs.graph("then_branch");
  const Graph* else_graph = if_node->attrs.graph("else_branch");
  ASSERT_TRUE(then_graph && else_graph);
  EXPECT_EQ(then_graph->parent, model->graph.get());
  EXPECT_EQ(then_graph->nodes()[0]->inputs[0], model->graph->find_value("x"));
  // The else branch's output is local (an Identity of the outer x).
  ASSERT_EQ(else_graph->outputs.size(), 1u);
  EXPECT_EQ(else_graph->outputs[0]->owner, else_graph);
  EXPECT_EQ(else_graph->outputs[0]->producer->inputs[0], model->graph->find_value("x"));
  // The outer value read by the branches makes If depend on it.
  auto outer = then_graph->outer_scope_values();
  EXPECT_EQ(outer.size(), 1u);
}

TEST(OnnxImport, SubgraphErrorsNameTheSubgraph) {
  auto m = make_model(13);
  auto* g = m.mutable_graph();
  add_input(g, "cond", TensorProto::BOOL, {});
  auto* n = add_node(g, "If", {"cond"}, {"y"}, "if");
  auto* then_g = add_attr(n, "then_branch", onnx::AttributeProto::GRAPH)->mutable_g();
  add_node(then_g, "Identity", {"nowhere"}, {"t"}, "inner");
  add_output(then_g, "t");
  add_output(g, "y");
  EXPECT_TRUE(error_contains(import_proto(m).status(), StatusCode::kInvalidModel,
                             {"test.onnx", "subgraph 'then_branch'", "'if'", "'inner'", "'nowhere'"}));
}

}  // namespace
}  // namespace kiln
