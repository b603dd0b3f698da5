// ONNX import errors: each names the file and, where there is one, the node and value.
#include <fstream>
#include <iterator>
#include <random>

#include "onnx_test_util.hpp"

namespace kiln {
namespace {

using namespace kiln::test;
using onnx::TensorProto;

TEST(OnnxImport, GarbageEmptyAndTruncatedFiles) {
  EXPECT_TRUE(error_contains(import_onnx_bytes("", ".", "empty.onnx").status(), StatusCode::kInvalidModel,
                             {"empty.onnx", "empty"}));
  EXPECT_TRUE(error_contains(import_onnx_bytes("\xff\xff\xff\xff garbage", ".", "junk.onnx").status(),
                             StatusCode::kInvalidModel, {"junk.onnx"}));
  EXPECT_TRUE(error_contains(import_onnx_file("/nonexistent/model.onnx").status(), StatusCode::kNotFound,
                             {"/nonexistent/model.onnx"}));
  // A real model cut in half.
  const std::string real = "/usr/share/libonnx-testdata/data/pytorch-converted/test_Conv2d/model.onnx";
  std::ifstream in(real, std::ios::binary);
  if (!in) GTEST_SKIP() << real << " not installed";
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  ASSERT_TRUE(import_onnx_bytes(bytes, ".", "conv.onnx").ok());
  for (size_t cut : {bytes.size() / 2, bytes.size() - 1, size_t{3}}) {
    auto r = import_onnx_bytes(bytes.substr(0, cut), ".", "conv_cut.onnx");
    EXPECT_TRUE(error_contains(r.status(), StatusCode::kInvalidModel, {"conv_cut.onnx"})) << cut;
  }
}

TEST(OnnxImport, CorruptedBytesNeverCrash) {
  const std::string real = "/usr/share/libonnx-testdata/data/pytorch-converted/test_Conv2d/model.onnx";
  std::ifstream in(real, std::ios::binary);
  if (!in) GTEST_SKIP() << real << " not installed";
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::mt19937 rng(42);
  int failed = 0;
  for (int iter = 0; iter < 300; ++iter) {
    std::string b = bytes;
    for (int k = 0; k < 1 + iter % 4; ++k) b[rng() % b.size()] = static_cast<char>(rng());
    auto r = import_onnx_bytes(b, ".", "mutated.onnx");
    if (!r.ok()) {
      ++failed;
      EXPECT_NE(r.status().message().find("mutated.onnx"), std::string::npos) << r.status().message();
    }
  }
  EXPECT_GT(failed, 0);  // the mutations do break something
}

TEST(OnnxImport, ModelWithoutGraphOrIrVersion) {
  onnx::ModelProto m;
  m.set_ir_version(7);
  EXPECT_TRUE(error_contains(import_proto(m).status(), StatusCode::kInvalidModel, {"test.onnx", "no graph"}));
  m.clear_ir_version();
  m.mutable_graph();
  EXPECT_TRUE(error_contains(import_proto(m).status(), StatusCode::kInvalidModel, {"IR version"}));
}

TEST(OnnxImport, UnsupportedIrAndOpsetVersions) {
  auto m = make_model(13, 12);
  EXPECT_TRUE(error_contains(import_proto(m).status(), StatusCode::kUnsupported, {"test.onnx", "IR version 12"}));
  m = make_model(22);
  add_node(m.mutable_graph(), "Relu", {"x"}, {"y"});
  EXPECT_TRUE(error_contains(import_proto(m).status(), StatusCode::kUnsupported, {"opset 22"}));
  m = make_model(0);
  EXPECT_TRUE(error_contains(import_proto(m).status(), StatusCode::kInvalidModel, {"opset 0"}));
  // Default-domain nodes without a default-domain opset_import.
  m = make_model(13);
  m.mutable_opset_import(0)->set_domain("other");
  add_input(m.mutable_graph(), "x", TensorProto::FLOAT, {1});
  add_node(m.mutable_graph(), "Relu", {"x"}, {"y"});
  EXPECT_TRUE(error_contains(import_proto(m).status(), StatusCode::kInvalidModel, {"opset_import"}));
}

TEST(OnnxImport, MissingInputNamesNodeAndValue) {
  auto m = make_model(13);
  auto* g = m.mutable_graph();
  add_input(g, "x", TensorProto::FLOAT, {2});
  add_node(g, "Add", {"x", "ghost"}, {"y"}, "adder");
  add_output(g, "y");
  EXPECT_TRUE(error_contains(import_proto(m).status(), StatusCode::kInvalidModel,
                             {"test.onnx", "node 'adder' (Add, opset 13)", "'ghost'"}));
}

TEST(OnnxImport, MissingGraphOutput) {
  auto m = make_model(13);
  add_output(m.mutable_graph(), "nothing");
  EXPECT_TRUE(error_contains(import_proto(m).status(), StatusCode::kInvalidModel, {"'nothing'"}));
}

TEST(OnnxImport, DuplicateDefinitions) {
  auto m = make_model(13);
  auto* g = m.mutable_graph();
  add_input(g, "x", TensorProto::FLOAT, {2});
  add_node(g, "Identity", {"x"}, {"y"}, "one");
  add_node(g, "Identity", {"x"}, {"y"}, "two");
  add_output(g, "y");
  EXPECT_TRUE(error_contains(import_proto(m).status(), StatusCode::kInvalidModel, {"'y'", "twice", "'one'", "'two'"}));
  m = make_model(13);
  g = m.mutable_graph();
  add_input(g, "x", TensorProto::FLOAT, {2});
  add_node(g, "Identity", {"x"}, {"x"}, "shadow");
  EXPECT_TRUE(error_contains(import_proto(m).status(), StatusCode::kInvalidModel, {"'x'", "twice", "graph input"}));
  m = make_model(13);
  g = m.mutable_graph();
  *g->add_initializer() = float_tensor("w", {1}, {1});
  *g->add_initializer() = float_tensor("w", {1}, {2});
  EXPECT_TRUE(error_contains(import_proto(m).status(), StatusCode::kInvalidModel, {"'w'", "twice"}));
}

TEST(OnnxImport, CycleIsReported) {
  auto m = make_model(13);
  auto* g = m.mutable_graph();
  add_node(g, "Identity", {"b"}, {"a"}, "n1");
  add_node(g, "Identity", {"a"}, {"b"}, "n2");
  add_output(g, "b");
  EXPECT_TRUE(error_contains(import_proto(m).status(), StatusCode::kInvalidModel, {"test.onnx", "cycle", "'n1'"}));
}

TEST(OnnxImport, AttributeTypes) {
  auto m = make_model(13);
  auto* g = m.mutable_graph();
  add_input(g, "x", TensorProto::FLOAT, {2});
  auto* n = add_node(g, "Foo", {"x"}, {"y"}, "attrs");
  n->set_domain("custom");
  attr_i(n, "i", 3);
  attr_f(n, "f", 0.5f);
  attr_s(n, "s", "abc");
  attr_ints(n, "is", {1, 2});
  attr_floats(n, "fs", {1.5f});
  auto* ss = add_attr(n, "ss", onnx::AttributeProto::STRINGS);
  ss->add_strings("p"), ss->add_strings("q");
  *add_attr(n, "t", onnx::AttributeProto::TENSOR)->mutable_t() = float_tensor("", {1}, {6});
  *add_attr(n, "ts", onnx::AttributeProto::TENSORS)->add_tensors() = float_tensor("", {1}, {7});
  // IR version 1 models may leave the type unset: deduced from the field.
  auto* untyped = n->add_attribute();
  untyped->set_name("legacy");
  untyped->set_i(9);
  add_output(g, "y");
  auto* op = m.add_opset_import();
  op->set_domain("custom");
  op->set_version(1);
  auto model = import_proto(m);
  ASSERT_TRUE(model.ok()) << model.status().to_string();
  const Attributes& a = find_node(*model->graph, "attrs")->attrs;
  EXPECT_EQ(a.i("i"), 3);
  EXPECT_EQ(a.f("f"), 0.5f);
  EXPECT_EQ(a.s("s"), "abc");
  EXPECT_EQ(a.ints("is"), (std::vector<int64_t>{1, 2}));
  EXPECT_EQ(a.floats("fs"), (std::vector<float>{1.5f}));
  EXPECT_EQ(a.strings("ss"), (std::vector<std::string>{"p", "q"}));
  EXPECT_EQ(a.tensor("t")->to_double_vector(), (std::vector<double>{6}));
  EXPECT_EQ(a.get_ptr<std::vector<Tensor>>("ts")->size(), 1u);
  EXPECT_EQ(a.i("legacy"), 9);
}

TEST(OnnxImport, UnknownAttributeTypeIsAnError) {
  auto m = make_model(13);
  auto* g = m.mutable_graph();
  add_input(g, "x", TensorProto::FLOAT, {2});
  auto* n = add_node(g, "Relu", {"x"}, {"y"}, "r");
  auto* a = n->add_attribute();
  a->set_name("weird");
  a->set_type(static_cast<onnx::AttributeProto::AttributeType>(99));
  add_output(g, "y");
  EXPECT_TRUE(error_contains(import_proto(m).status(), StatusCode::kInvalidModel, {"'r'", "'weird'", "unknown type"}));
  a->set_type(onnx::AttributeProto::UNDEFINED);  // and no field set
  EXPECT_TRUE(error_contains(import_proto(m).status(), StatusCode::kInvalidModel, {"'weird'"}));
}

TEST(OnnxImport, MapGraphInputIsUnsupported) {
  auto m = make_model(13);
  auto* g = m.mutable_graph();
  auto* in = g->add_input();
  in->set_name("m");
  auto* map = in->mutable_type()->mutable_map_type();
  map->set_key_type(7);
  map->mutable_value_type()->mutable_tensor_type()->set_elem_type(1);
  EXPECT_TRUE(error_contains(import_proto(m).status(), StatusCode::kUnsupported, {"'m'", "map"}));
}

// Sequence and optional graph values import with their kind; a sequence of maps does not.
TEST(OnnxImport, SequenceAndOptionalGraphValues) {
  auto m = make_model(18);
  auto* g = m.mutable_graph();
  auto* in = g->add_input();
  in->set_name("seq");
  in->mutable_type()->mutable_sequence_type()->mutable_elem_type()->mutable_tensor_type()->set_elem_type(7);
  add_node(g, "SequenceLength", {"seq"}, {"len"}, "n");
  add_node(g, "Optional", {"seq"}, {"opt"}, "o");
  add_output(g, "len", 7);
  auto* out = g->add_output();
  out->set_name("opt");
  out->mutable_type()->mutable_optional_type()->mutable_elem_type()->mutable_sequence_type()->mutable_elem_type()
      ->mutable_tensor_type()->set_elem_type(7);
  auto model = import_proto(m);
  ASSERT_TRUE(model.ok()) << model.status().message();
  EXPECT_EQ(model->graph->inputs[0]->type.kind, ValueKind::kSequence);
  EXPECT_EQ(model->graph->inputs[0]->type.dtype, DType::kInt64);
  EXPECT_EQ(model->graph->outputs[1]->type.kind, ValueKind::kOptionalSequence);
  in->mutable_type()->mutable_sequence_type()->mutable_elem_type()->mutable_map_type()->set_key_type(7);
  EXPECT_TRUE(error_contains(import_proto(m).status(), StatusCode::kUnsupported, {"'seq'", "sequence"}));
}

// An empty Optional takes its type from the TYPE_PROTO attribute 'type'.
TEST(OnnxImport, EmptyOptionalTypeAttribute) {
  auto m = make_model(18);
  auto* g = m.mutable_graph();
  auto* n = add_node(g, "Optional", {}, {"none"}, "o");
  auto* tp = add_attr(n, "type", onnx::AttributeProto::TYPE_PROTO)->mutable_tp();
  tp->mutable_sequence_type()->mutable_elem_type()->mutable_tensor_type()->set_elem_type(6);
  add_node(g, "OptionalHasElement", {"none"}, {"has"}, "h");
  add_output(g, "has", 9);
  auto model = import_proto(m);
  ASSERT_TRUE(model.ok()) << model.status().message();
  const Value* none = model->graph->nodes()[0]->outputs[0];
  EXPECT_EQ(none->type.kind, ValueKind::kOptionalSequence);
  EXPECT_EQ(none->type.dtype, DType::kInt32);
}

}  // namespace
}  // namespace kiln
