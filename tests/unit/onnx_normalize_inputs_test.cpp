// Opset normalization: attributes that later opsets take as inputs.
#include "onnx_normalize_util.hpp"

namespace kiln {
namespace {

using namespace kiln::test;
using onnx::TensorProto;

Expected<Model> import_single(const SingleNode& s) { return import_proto(s.model); }

TEST(OnnxNormalize, ReduceAxesAttributeBecomesInput) {
  for (const char* op : {"ReduceMean", "ReduceMax", "ReduceL2", "ReduceLogSumExp", "ReduceSumSquare"}) {
    auto s = single_node(13, op, {{"x", {2, 3, 4}}});
    attr_ints(s.node, "axes", {1, -1});
    attr_i(s.node, "keepdims", 0);
    auto m = import_single(s);
    ASSERT_TRUE(m.ok()) << m.status().to_string();
    const Node& n = node_n(*m);
    EXPECT_EQ(const_ints(n, 1), (std::vector<int64_t>{1, -1})) << op;
    EXPECT_EQ(n.inputs[1]->constant->dtype(), DType::kInt64);
    EXPECT_FALSE(n.attrs.has("axes"));
    EXPECT_EQ(n.attrs.i("keepdims", 1), 0);
  }
  // ReduceSum moved at 13; without axes nothing is added (both forms reduce everything).
  auto s = single_node(12, "ReduceSum", {{"x", {2, 3}}});
  attr_ints(s.node, "axes", {0});
  auto m = import_single(s);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(const_ints(node_n(*m), 1), (std::vector<int64_t>{0}));
  auto none = import_single(single_node(11, "ReduceMean", {{"x", {2, 3}}}));
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(node_n(*none).inputs.size(), 1u);
  // Already in input form: untouched.
  auto s18 = single_node(18, "ReduceMean", {{"x", {2, 3}}, {"axes", {1}, TensorProto::INT64}});
  auto m18 = import_single(s18);
  ASSERT_TRUE(m18.ok());
  EXPECT_EQ(node_n(*m18).inputs[1]->name, "axes");
}

TEST(OnnxNormalize, SqueezeUnsqueezeAxes) {
  for (const char* op : {"Squeeze", "Unsqueeze"}) {
    auto s = single_node(11, op, {{"x", {1, 3, 1}}});
    attr_ints(s.node, "axes", {0, 2});
    auto m = import_single(s);
    ASSERT_TRUE(m.ok()) << m.status().to_string();
    EXPECT_EQ(const_ints(node_n(*m), 1), (std::vector<int64_t>{0, 2})) << op;
    EXPECT_FALSE(node_n(*m).attrs.has("axes"));
  }
  auto none = import_single(single_node(11, "Squeeze", {{"x", {1, 3, 1}}}));
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(node_n(*none).inputs.size(), 1u);
}

TEST(OnnxNormalize, SplitAttributeAndNumOutputs) {
  auto s = single_node(11, "Split", {{"x", {6, 2}}}, {"a", "b"});
  attr_ints(s.node, "split", {2, 4});
  attr_i(s.node, "axis", 0);
  auto m = import_single(s);
  ASSERT_TRUE(m.ok()) << m.status().to_string();
  EXPECT_EQ(const_ints(node_n(*m), 1), (std::vector<int64_t>{2, 4}));
  EXPECT_FALSE(node_n(*m).attrs.has("num_outputs"));
  // Equal parts: opset 18 needs num_outputs.
  auto eq = import_single(single_node(13, "Split", {{"x", {6, 2}}}, {"a", "b", "c"}));
  ASSERT_TRUE(eq.ok());
  EXPECT_EQ(node_n(*eq).attrs.i("num_outputs"), 3);
  EXPECT_EQ(node_n(*eq).inputs.size(), 1u);
  // Split-1: axis had no default (0 is meant); `split` could already be input 1.
  auto s1 = single_node(1, "Split", {{"x", {6}}, {"parts", {2}, TensorProto::INT64}}, {"a", "b"});
  auto m1 = import_single(s1);
  ASSERT_TRUE(m1.ok()) << m1.status().to_string();
  EXPECT_EQ(node_n(*m1).attrs.i("axis", -1), 0);
  EXPECT_EQ(node_n(*m1).inputs[1]->name, "parts");
  EXPECT_FALSE(node_n(*m1).attrs.has("num_outputs"));
  // Opset 18 models are left alone.
  auto s18 = single_node(18, "Split", {{"x", {6}}}, {"a", "b"});
  attr_i(s18.node, "num_outputs", 2);
  auto m18 = import_single(s18);
  ASSERT_TRUE(m18.ok());
  EXPECT_EQ(node_n(*m18).attrs.i("num_outputs"), 2);
}

TEST(OnnxNormalize, SliceAttributesBecomeInputs) {
  auto s = single_node(9, "Slice", {{"x", {4, 5}}});
  attr_ints(s.node, "starts", {1, 0});
  attr_ints(s.node, "ends", {3, -1});
  attr_ints(s.node, "axes", {0, 1});
  auto m = import_single(s);
  ASSERT_TRUE(m.ok()) << m.status().to_string();
  const Node& n = node_n(*m);
  EXPECT_EQ(const_ints(n, 1), (std::vector<int64_t>{1, 0}));
  EXPECT_EQ(const_ints(n, 2), (std::vector<int64_t>{3, -1}));
  EXPECT_EQ(const_ints(n, 3), (std::vector<int64_t>{0, 1}));
  EXPECT_EQ(n.inputs.size(), 4u);  // no steps
  EXPECT_TRUE(n.attrs.all().empty());
  // Without axes: three inputs.
  auto s2 = single_node(1, "Slice", {{"x", {4}}});
  attr_ints(s2.node, "starts", {1});
  attr_ints(s2.node, "ends", {2});
  auto m2 = import_single(s2);
  ASSERT_TRUE(m2.ok());
  EXPECT_EQ(node_n(*m2).inputs.size(), 3u);
  // starts/ends are required.
  auto bad = single_node(9, "Slice", {{"x", {4}}});
  EXPECT_TRUE(error_contains(import_single(bad).status(), StatusCode::kInvalidModel, {"test.onnx", "'n'", "starts"}));
}

TEST(OnnxNormalize, PadAttributesBecomeInputs) {
  auto s = single_node(2, "Pad", {{"x", {2, 2}, TensorProto::FLOAT16}});
  attr_ints(s.node, "pads", {0, 1, 0, 2});
  attr_f(s.node, "value", 1.5f);
  attr_s(s.node, "mode", "constant");
  auto m = import_single(s);
  ASSERT_TRUE(m.ok()) << m.status().to_string();
  const Node& n = node_n(*m);
  EXPECT_EQ(const_ints(n, 1), (std::vector<int64_t>{0, 1, 0, 2}));
  ASSERT_TRUE(n.has_input(2));
  EXPECT_EQ(n.inputs[2]->constant->dtype(), DType::kFloat16);  // the data's type
  EXPECT_EQ(n.inputs[2]->constant->rank(), 0);
  EXPECT_EQ(const_values(n, 2), (std::vector<double>{1.5}));
  EXPECT_EQ(n.attrs.s("mode"), "constant");
  EXPECT_FALSE(n.attrs.has("value"));
  // Pad-1 said `paddings`; a zero value needs no input.
  auto s1 = single_node(1, "Pad", {{"x", {2}}});
  attr_ints(s1.node, "paddings", {1, 1});
  attr_s(s1.node, "mode", "reflect");
  auto m1 = import_single(s1);
  ASSERT_TRUE(m1.ok());
  EXPECT_EQ(const_ints(node_n(*m1), 1), (std::vector<int64_t>{1, 1}));
  EXPECT_EQ(node_n(*m1).inputs.size(), 2u);
  EXPECT_FALSE(node_n(*m1).attrs.has("paddings"));
}

TEST(OnnxNormalize, ClipBoundsBecomeInputsOfTheDataType) {
  auto s = single_node(6, "Clip", {{"x", {3}, TensorProto::DOUBLE}});
  attr_f(s.node, "min", -1.f);
  attr_f(s.node, "max", 2.f);
  auto m = import_single(s);
  ASSERT_TRUE(m.ok()) << m.status().to_string();
  const Node& n = node_n(*m);
  EXPECT_EQ(n.inputs[1]->constant->dtype(), DType::kFloat64);
  EXPECT_EQ(const_values(n, 1), (std::vector<double>{-1}));
  EXPECT_EQ(const_values(n, 2), (std::vector<double>{2}));
  EXPECT_TRUE(n.attrs.all().empty());
  // Only max: min stays absent.
  auto s2 = single_node(6, "Clip", {{"x", {3}}});
  attr_f(s2.node, "max", 6.f);
  auto m2 = import_single(s2);
  ASSERT_TRUE(m2.ok());
  EXPECT_FALSE(node_n(*m2).has_input(1));
  EXPECT_EQ(const_values(node_n(*m2), 2), (std::vector<double>{6}));
  // The data type unknown at import (an op kiln cannot type upstream): CastLike to it.
  auto s3 = single_node(6, "Clip", {{"u", {}}});
  s3.graph()->mutable_input()->Clear();
  add_input(s3.graph(), "x", TensorProto::FLOAT, {3});
  auto* custom = add_node(s3.graph(), "Mystery", {"x"}, {"u"}, "mystery");
  custom->set_domain("custom");
  auto* op = s3.model.add_opset_import();
  op->set_domain("custom");
  op->set_version(1);
  attr_f(s3.node, "min", 0.5f);
  auto m3 = import_single(s3);
  ASSERT_TRUE(m3.ok()) << m3.status().to_string();
  const Node& n3 = node_n(*m3);
  ASSERT_TRUE(n3.has_input(1));
  const Node* cast = n3.inputs[1]->producer;
  ASSERT_NE(cast, nullptr);
  EXPECT_EQ(cast->op_type, "CastLike");
  EXPECT_EQ(cast->inputs[0]->constant->to_double_vector(), (std::vector<double>{0.5}));
  EXPECT_EQ(cast->inputs[1]->name, "u");
}

TEST(OnnxNormalize, TopKAndReshapeAttributesBecomeInputs) {
  auto s = single_node(9, "TopK", {{"x", {2, 5}}}, {"values", "indices"});
  attr_i(s.node, "k", 3);
  auto m = import_single(s);
  ASSERT_TRUE(m.ok()) << m.status().to_string();
  EXPECT_EQ(const_ints(node_n(*m), 1), (std::vector<int64_t>{3}));
  EXPECT_EQ(node_n(*m).inputs[1]->constant->dims(), (Dims{1}));
  EXPECT_FALSE(node_n(*m).attrs.has("k"));
  EXPECT_TRUE(error_contains(import_single(single_node(9, "TopK", {{"x", {5}}}, {"v", "i"})).status(),
                             StatusCode::kInvalidModel, {"'n'", "'k'"}));

  auto r = single_node(4, "Reshape", {{"x", {2, 6}}});
  attr_ints(r.node, "shape", {3, -1});
  attr_ints(r.node, "consumed_inputs", {0});
  auto mr = import_single(r);
  ASSERT_TRUE(mr.ok()) << mr.status().to_string();
  EXPECT_EQ(const_ints(node_n(*mr), 1), (std::vector<int64_t>{3, -1}));
  EXPECT_TRUE(node_n(*mr).attrs.all().empty());
}

TEST(OnnxNormalize, DropoutRatioIsTestAndMask) {
  auto s = single_node(6, "Dropout", {{"x", {4}}});
  attr_i(s.node, "is_test", 1);
  attr_f(s.node, "ratio", 0.25f);
  auto m = import_single(s);
  ASSERT_TRUE(m.ok()) << m.status().to_string();
  const Node& n = node_n(*m);
  EXPECT_TRUE(n.attrs.all().empty());
  ASSERT_TRUE(n.has_input(1));
  EXPECT_EQ(n.inputs[1]->constant->dtype(), DType::kFloat32);
  EXPECT_EQ(const_values(n, 1), (std::vector<double>{0.25}));
  EXPECT_FALSE(n.has_input(2));  // training_mode absent: inference
  // Opset 7-9: the mask had the data's type; a CastLike restores it.
  auto s7 = single_node(7, "Dropout", {{"x", {4}}}, {"y", "mask"});
  auto m7 = import_single(s7);
  ASSERT_TRUE(m7.ok()) << m7.status().to_string();
  const Node& n7 = node_n(*m7);
  const Value* mask = m7->graph->find_value("mask");
  ASSERT_TRUE(mask->producer);
  EXPECT_EQ(mask->producer->op_type, "CastLike");
  EXPECT_EQ(mask->producer->inputs[0], n7.outputs[1]);
  EXPECT_EQ(mask->producer->inputs[1]->name, "x");
  // Opset 12: untouched.
  auto s12 = single_node(12, "Dropout", {{"x", {4}}, {"r", {}}}, {"y", "mask"});
  auto m12 = import_single(s12);
  ASSERT_TRUE(m12.ok());
  EXPECT_EQ(m12->graph->find_value("mask")->producer, &node_n(*m12));
}

TEST(OnnxNormalize, LegacyTileBuildsRepeats) {
  auto s = single_node(5, "Tile", {{"x", {2, 3}}, {"tiles", {}, TensorProto::INT64}, {"axis", {}, TensorProto::INT64}});
  make_initializer(s, int64_tensor("tiles", {}, {4}));
  make_initializer(s, int64_tensor("axis", {}, {-1}));
  auto m = import_single(s);
  ASSERT_TRUE(m.ok()) << m.status().to_string();
  EXPECT_EQ(node_n(*m).inputs.size(), 2u);
  EXPECT_EQ(const_ints(node_n(*m), 1), (std::vector<int64_t>{1, 4}));
  // Runtime tiles cannot be turned into repeats at import.
  auto dyn = single_node(5, "Tile", {{"x", {2, 3}}, {"tiles", {}, TensorProto::INT64}, {"axis", {}, TensorProto::INT64}});
  EXPECT_TRUE(error_contains(import_single(dyn).status(), StatusCode::kUnsupported, {"'n'", "Tile-1"}));
}

TEST(OnnxNormalize, DftAxisBecomesInput) {
  auto s = single_node(17, "DFT", {{"x", {1, 8, 1}}});
  auto m = import_single(s);
  ASSERT_TRUE(m.ok()) << m.status().to_string();
  const Node& n = node_n(*m);
  ASSERT_EQ(n.inputs.size(), 3u);
  EXPECT_FALSE(n.has_input(1));  // dft_length
  EXPECT_EQ(const_ints(n, 2), (std::vector<int64_t>{1}));  // DFT-17's default axis, explicit
  EXPECT_EQ(n.inputs[2]->constant->rank(), 0);
  auto s2 = single_node(17, "DFT", {{"x", {1, 8, 4, 1}}});  // axis 2 must be a signal dim
  attr_i(s2.node, "axis", 2);
  attr_i(s2.node, "inverse", 1);
  auto m2 = import_single(s2);
  ASSERT_TRUE(m2.ok()) << m2.status().to_string();
  EXPECT_EQ(const_ints(node_n(*m2), 2), (std::vector<int64_t>{2}));
  EXPECT_EQ(node_n(*m2).attrs.i("inverse"), 1);
}

TEST(OnnxNormalize, ConsumedInputsIsDropped) {
  auto s = single_node(5, "Relu", {{"x", {4}}});
  attr_ints(s.node, "consumed_inputs", {0});
  auto m = import_single(s);
  ASSERT_TRUE(m.ok());
  EXPECT_FALSE(node_n(*m).attrs.has("consumed_inputs"));
}

}  // namespace
}  // namespace kiln
