// Opset normalization: changed semantics (Softmax coercion, Upsample/Resize, BatchNormalization,
// ...) and pre-opset-7 forms. Numeric checks run the rewritten graph on a naive interpreter
// against a naive computation of the legacy semantics.
#include "onnx_normalize_util.hpp"
#include "onnx_reference_eval.hpp"
#include "op_test_util.hpp"

namespace kiln {
namespace {

using namespace kiln::test;
using onnx::TensorProto;

// Softmax-family before 13 on x viewed as 2-D [outer, inner] split at `axis`.
Tensor coerced_reference(const std::string& op, const Tensor& x, int64_t axis) {
  int64_t outer = 1;
  for (int64_t i = 0; i < axis; ++i) outer *= x.dim(static_cast<int>(i));
  Tensor rows = refeval::rows(x.reshaped({outer, x.numel() / outer}), op);
  return rows.reshaped(x.dims());
}

TEST(OnnxNormalize, SoftmaxFamilyCoercionIsExact) {
  const Tensor x = random_tensor(DType::kFloat32, {2, 3, 4}, 7);
  for (const char* op : {"Softmax", "LogSoftmax", "Hardmax"}) {
    for (bool known_rank : {true, false}) {
      for (int64_t axis : {0, 1, -2}) {
        auto s = single_node(11, op, {{"x", {2, 3, 4}, TensorProto::FLOAT, !known_rank}});
        attr_i(s.node, "axis", axis);
        auto m = import_proto(s.model);
        ASSERT_TRUE(m.ok()) << m.status().to_string();
        EXPECT_EQ(node_n(*m).attrs.i("axis"), -1);
        EXPECT_EQ(m->graph->nodes().size(), 4u);  // Flatten, Shape, op, Reshape
        auto out = reference_eval(*m->graph, {{"x", x}});
        ASSERT_TRUE(out.ok()) << out.status().to_string();
        EXPECT_TRUE(tensors_close((*out)[0], coerced_reference(op, x, axis < 0 ? axis + 3 : axis)))
            << op << " axis " << axis;
      }
    }
  }
}

TEST(OnnxNormalize, SoftmaxOnTheLastAxisNeedsNoReshape) {
  auto s = single_node(11, "Softmax", {{"x", {5, 4}}});  // default axis 1 = the last of rank 2
  auto m = import_proto(s.model);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->graph->nodes().size(), 1u);
  EXPECT_EQ(node_n(*m).attrs.i("axis"), -1);
  const Tensor x = random_tensor(DType::kFloat32, {5, 4}, 3);
  auto out = reference_eval(*m->graph, {{"x", x}});
  ASSERT_TRUE(out.ok());
  EXPECT_TRUE(tensors_close((*out)[0], coerced_reference("Softmax", x, 1)));
  // Opset 13 is already the target form (default axis -1): untouched.
  auto m13 = import_proto(single_node(13, "Softmax", {{"x", {2, 3, 4}}}).model);
  ASSERT_TRUE(m13.ok());
  EXPECT_EQ(m13->graph->nodes().size(), 1u);
  EXPECT_FALSE(node_n(*m13).attrs.has("axis"));
  auto bad = single_node(11, "Softmax", {{"x", {2, 3}}});
  attr_i(bad.node, "axis", 5);
  EXPECT_TRUE(error_contains(import_proto(bad.model).status(), StatusCode::kInvalidModel, {"'n'", "axis 5"}));
  // The spec's range is [-r, r-1]: the default axis 1 does not fit a 1-D input.
  auto one_d = single_node(11, "Softmax", {{"x", {4}}});
  EXPECT_TRUE(error_contains(import_proto(one_d.model).status(), StatusCode::kInvalidModel, {"'n'", "axis 1"}));
}

void expect_upsample_resize(const Node& n, const std::string& mode) {
  EXPECT_EQ(n.op_type, "Resize");
  ASSERT_EQ(n.inputs.size(), 3u);
  EXPECT_FALSE(n.has_input(1));  // roi
  EXPECT_EQ(n.attrs.s("mode"), mode);
  EXPECT_EQ(n.attrs.s("coordinate_transformation_mode"), "asymmetric");
  EXPECT_EQ(n.attrs.s("nearest_mode"), "floor");
  EXPECT_FALSE(n.attrs.has("scales"));
}

TEST(OnnxNormalize, UpsampleBecomesResize) {
  auto s9 = single_node(9, "Upsample", {{"x", {1, 1, 2, 2}}, {"scales", {4}}});
  auto m9 = import_proto(s9.model);
  ASSERT_TRUE(m9.ok()) << m9.status().to_string();
  expect_upsample_resize(node_n(*m9), "nearest");
  EXPECT_EQ(node_n(*m9).inputs[2]->name, "scales");

  auto s7 = single_node(7, "Upsample", {{"x", {1, 1, 2, 2}}});
  attr_floats(s7.node, "scales", {1, 1, 2, 3});
  attr_s(s7.node, "mode", "linear");
  auto m7 = import_proto(s7.model);
  ASSERT_TRUE(m7.ok()) << m7.status().to_string();
  expect_upsample_resize(node_n(*m7), "linear");
  EXPECT_EQ(const_values(node_n(*m7), 2), (std::vector<double>{1, 1, 2, 3}));

  auto s1 = single_node(1, "Upsample", {{"x", {1, 1, 2, 2}}});
  attr_f(s1.node, "height_scale", 2);
  attr_f(s1.node, "width_scale", 4);
  attr_s(s1.node, "mode", "bilinear");
  auto m1 = import_proto(s1.model);
  ASSERT_TRUE(m1.ok()) << m1.status().to_string();
  expect_upsample_resize(node_n(*m1), "linear");
  EXPECT_EQ(const_values(node_n(*m1), 2), (std::vector<double>{1, 1, 2, 4}));

  auto bad = single_node(7, "Upsample", {{"x", {1, 1, 2, 2}}});
  attr_floats(bad.node, "scales", {1, 1, 2, 2});
  attr_s(bad.node, "mode", "cubic");
  EXPECT_TRUE(error_contains(import_proto(bad.model).status(), StatusCode::kInvalidModel, {"'n'", "cubic"}));
}

TEST(OnnxNormalize, Resize10And11BecomeResize13) {
  auto s10 = single_node(10, "Resize", {{"x", {1, 1, 2, 2}}, {"scales", {4}}});
  auto m10 = import_proto(s10.model);
  ASSERT_TRUE(m10.ok()) << m10.status().to_string();
  expect_upsample_resize(node_n(*m10), "nearest");
  EXPECT_EQ(node_n(*m10).inputs[2]->name, "scales");

  // Resize-11 passes empty roi/scales when sizes is given: absent inputs in 13.
  auto s11 = single_node(11, "Resize", {{"x", {1, 1, 4, 4}}, {"roi", {0}}, {"scales", {0}}, {"sizes", {4}, TensorProto::INT64}});
  make_initializer(s11, float_tensor("roi", {0}, {}));
  make_initializer(s11, float_tensor("scales", {0}, {}));
  attr_s(s11.node, "coordinate_transformation_mode", "tf_half_pixel_for_nn");
  attr_s(s11.node, "mode", "nearest");
  auto m11 = import_proto(s11.model);
  ASSERT_TRUE(m11.ok()) << m11.status().to_string();
  const Node& n = node_n(*m11);
  ASSERT_EQ(n.inputs.size(), 4u);
  EXPECT_FALSE(n.has_input(1));
  EXPECT_FALSE(n.has_input(2));
  EXPECT_EQ(n.inputs[3]->name, "sizes");
  // tf_half_pixel_for_nn = half_pixel + 0.5: round_prefer_floor of it is ceil of half_pixel.
  EXPECT_EQ(n.attrs.s("coordinate_transformation_mode"), "half_pixel");
  EXPECT_EQ(n.attrs.s("nearest_mode"), "ceil");

  auto floor_mode = s11;
  floor_mode.node = floor_mode.graph()->mutable_node(0);
  attr_s(floor_mode.node, "nearest_mode", "floor");
  auto mf = import_proto(floor_mode.model);
  ASSERT_TRUE(mf.ok());
  EXPECT_EQ(node_n(*mf).attrs.s("nearest_mode"), "round_prefer_ceil");
  auto no_equiv = s11;
  no_equiv.node = no_equiv.graph()->mutable_node(0);
  attr_s(no_equiv.node, "nearest_mode", "round_prefer_ceil");
  EXPECT_TRUE(error_contains(import_proto(no_equiv.model).status(), StatusCode::kUnsupported,
                             {"'n'", "tf_half_pixel_for_nn"}));
}

TEST(OnnxNormalize, ResizeRoiKeptOnlyForCropAndResize) {
  for (const char* mode : {"half_pixel", "tf_crop_and_resize"}) {
    auto s = single_node(13, "Resize", {{"x", {1, 1, 4, 4}}, {"roi", {8}}, {"scales", {4}}});
    make_initializer(s, float_tensor("roi", {8}, {0, 0, 0, 0, 1, 1, 1, 1}));
    attr_s(s.node, "coordinate_transformation_mode", mode);
    auto m = import_proto(s.model);
    ASSERT_TRUE(m.ok()) << m.status().to_string();
    EXPECT_EQ(node_n(*m).has_input(1), std::string(mode) == "tf_crop_and_resize") << mode;
    EXPECT_EQ(node_n(*m).inputs[2]->name, "scales");
  }
}

TEST(OnnxNormalize, ScatterIsScatterElements) {
  auto s = single_node(10, "Scatter", {{"x", {3, 3}}, {"i", {1, 2}, TensorProto::INT64}, {"u", {1, 2}}});
  attr_i(s.node, "axis", 1);
  auto m = import_proto(s.model);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(node_n(*m).op_type, "ScatterElements");
  EXPECT_EQ(node_n(*m).attrs.i("axis"), 1);
  EXPECT_EQ(node_n(*m).inputs.size(), 3u);
}

std::vector<In> bn_inputs(std::vector<D> x, std::vector<D> p) {
  return {{"x", x}, {"scale", p}, {"bias", p}, {"mean", p}, {"var", p}};
}

TEST(OnnxNormalize, BatchNormalizationLegacyAttributesAndOutputs) {
  auto s = single_node(6, "BatchNormalization", bn_inputs({2, 3}, {3}), {"y", "", "", "", ""});
  attr_i(s.node, "is_test", 1);
  attr_f(s.node, "epsilon", 1e-3f);
  auto m = import_proto(s.model);
  ASSERT_TRUE(m.ok()) << m.status().to_string();
  EXPECT_FALSE(node_n(*m).attrs.has("is_test"));
  EXPECT_EQ(node_n(*m).attrs.f("epsilon"), 1e-3f);
  // Declared but unused statistics outputs are dropped.
  auto s9 = single_node(9, "BatchNormalization", bn_inputs({2, 3}, {3}), {"y", "mean_out", "var_out"});
  s9.graph()->mutable_output()->DeleteSubrange(1, 2);
  auto m9 = import_proto(s9.model);
  ASSERT_TRUE(m9.ok()) << m9.status().to_string();
  EXPECT_EQ(node_n(*m9).outputs.size(), 1u);
  EXPECT_EQ(m9->graph->find_value("mean_out")->producer, nullptr);
  // Used ones mean training mode.
  auto train = single_node(9, "BatchNormalization", bn_inputs({2, 3}, {3}), {"y", "mean_out"});
  EXPECT_TRUE(error_contains(import_proto(train.model).status(), StatusCode::kUnsupported,
                             {"test.onnx", "'n'", "training"}));
}

TEST(OnnxNormalize, BatchNormalizationNonSpatialIsExact) {
  auto s = single_node(7, "BatchNormalization", bn_inputs({2, 3, 2}, {3, 2}));
  attr_i(s.node, "spatial", 0);
  attr_f(s.node, "epsilon", 0.01f);
  auto m = import_proto(s.model);
  ASSERT_TRUE(m.ok()) << m.status().to_string();
  EXPECT_EQ(m->graph->nodes().size(), 6u);
  std::map<std::string, Tensor> feeds;
  feeds["x"] = random_tensor(DType::kFloat32, {2, 3, 2}, 1);
  for (const char* p : {"scale", "bias", "mean"}) feeds[p] = random_tensor(DType::kFloat32, {3, 2}, 2 + p[0]);
  feeds["var"] = random_tensor(DType::kFloat32, {3, 2}, 9, 0.1, 2.0);
  auto out = reference_eval(*m->graph, feeds);
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  Tensor expect(DType::kFloat32, {2, 3, 2});
  auto at = [&](const char* name, int64_t i) { return feeds[name].data<float>()[i]; };
  for (int64_t i = 0; i < 12; ++i) {
    int64_t p = i % 6;  // per-activation statistics: index over (C, D1)
    expect.data<float>()[i] =
        (at("x", i) - at("mean", p)) / std::sqrt(at("var", p) + 0.01f) * at("scale", p) + at("bias", p);
  }
  EXPECT_TRUE(tensors_close((*out)[0], expect));
  // spatial=1 (the default) just loses the attribute.
  auto s1 = single_node(7, "BatchNormalization", bn_inputs({2, 3, 2}, {3}));
  attr_i(s1.node, "spatial", 1);
  auto m1 = import_proto(s1.model);
  ASSERT_TRUE(m1.ok());
  EXPECT_EQ(node_n(*m1).op_type, "BatchNormalization");
  EXPECT_FALSE(node_n(*m1).attrs.has("spatial"));
}

TEST(OnnxNormalize, GridSampleModesRenamed) {
  for (auto [from, to] : {std::pair{"bilinear", "linear"}, {"bicubic", "cubic"}, {"nearest", "nearest"}}) {
    auto s = single_node(16, "GridSample", {{"x", {1, 1, 2, 2}}, {"grid", {1, 2, 2, 2}}});
    attr_s(s.node, "mode", from);
    auto m = import_proto(s.model);
    ASSERT_TRUE(m.ok());
    EXPECT_EQ(node_n(*m).attrs.s("mode"), to);
  }
  auto m = import_proto(single_node(16, "GridSample", {{"x", {1, 1, 2, 2}}, {"grid", {1, 2, 2, 2}}}).model);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(node_n(*m).attrs.s("mode"), "linear");  // the default, explicit
}

TEST(OnnxNormalize, GroupNormalizationScalePerChannel) {
  auto s = single_node(18, "GroupNormalization", {{"x", {1, 4, 2}}, {"scale", {2}}, {"bias", {2}}});
  make_initializer(s, float_tensor("scale", {2}, {1.5f, -2.f}));
  make_initializer(s, float_tensor("bias", {2}, {0.5f, 3.f}));
  attr_i(s.node, "num_groups", 2);
  auto m = import_proto(s.model);
  ASSERT_TRUE(m.ok()) << m.status().to_string();
  EXPECT_EQ(const_values(node_n(*m), 1), (std::vector<double>{1.5, 1.5, -2, -2}));
  EXPECT_EQ(const_values(node_n(*m), 2), (std::vector<double>{0.5, 0.5, 3, 3}));
  auto dyn = single_node(18, "GroupNormalization", {{"x", {1, 4, 2}}, {"scale", {2}}, {"bias", {2}}});
  attr_i(dyn.node, "num_groups", 2);
  EXPECT_TRUE(error_contains(import_proto(dyn.model).status(), StatusCode::kUnsupported, {"'n'", "constant scale"}));
}

// --- forms from before opset 7 ---

TEST(OnnxNormalize, LegacyBroadcastWithAxisIsExact) {
  for (bool constant_b : {false, true}) {
    auto s = single_node(6, "Mul", {{"a", {2, 3, 4}}, {"b", {3}}});
    attr_i(s.node, "broadcast", 1);
    attr_i(s.node, "axis", 1);
    const Tensor b = random_tensor(DType::kFloat32, {3}, 5);
    if (constant_b) make_initializer(s, float_tensor("b", {3}, std::vector<float>(b.data<float>(), b.data<float>() + 3)));
    auto m = import_proto(s.model);
    ASSERT_TRUE(m.ok()) << m.status().to_string();
    EXPECT_TRUE(node_n(*m).attrs.all().empty());
    EXPECT_EQ(m->graph->nodes().size(), constant_b ? 1u : 2u);  // a reshaped constant, or an Unsqueeze
    const Tensor a = random_tensor(DType::kFloat32, {2, 3, 4}, 4);
    std::map<std::string, Tensor> feeds{{"a", a}};
    if (!constant_b) feeds["b"] = b;
    auto out = reference_eval(*m->graph, feeds);
    ASSERT_TRUE(out.ok()) << out.status().to_string();
    Tensor expect(DType::kFloat32, {2, 3, 4});
    for (int64_t i = 0; i < 24; ++i) expect.data<float>()[i] = a.data<float>()[i] * b.data<float>()[(i / 4) % 3];
    EXPECT_TRUE(tensors_close((*out)[0], expect));
  }
}

TEST(OnnxNormalize, LegacyBroadcastUsesRanksInferredAtImport) {
  // A is an intermediate value without a declared type: its rank comes from the upstream node's
  // shape inference, run on the normalized nodes during normalization.
  auto s = single_node(6, "Add", {{"a", {}}, {"b", {3}}});
  s.graph()->mutable_input()->DeleteSubrange(0, 1);
  add_input(s.graph(), "x", TensorProto::FLOAT, {2, 3, 4});
  add_node(s.graph(), "Identity", {"x"}, {"a"}, "producer");
  attr_i(s.node, "broadcast", 1);
  attr_i(s.node, "axis", 1);
  ImportOptions no_inference;
  no_inference.infer_shapes = false;
  auto m = import_proto(s.model, no_inference);
  ASSERT_TRUE(m.ok()) << m.status().to_string();
  EXPECT_EQ(m->graph->find_value("a")->type.dtype, DType::kUndefined);  // the side table left no trace
  const Node& n = node_n(*m);
  ASSERT_NE(n.inputs[1]->producer, nullptr);
  EXPECT_EQ(n.inputs[1]->producer->op_type, "Unsqueeze");
  EXPECT_EQ(const_ints(*n.inputs[1]->producer, 1), (std::vector<int64_t>{1}));  // [3] -> [3, 1]
}

TEST(OnnxNormalize, LegacyBroadcastWithoutAxisOrAtTheEnd) {
  auto s = single_node(6, "Add", {{"a", {2, 3}}, {"b", {3}}});
  attr_i(s.node, "broadcast", 1);  // trailing alignment = numpy
  auto m = import_proto(s.model);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(node_n(*m).inputs[1]->name, "b");
  EXPECT_TRUE(node_n(*m).attrs.all().empty());
  auto unknown = single_node(6, "Sub", {{"a", {}, TensorProto::FLOAT, true}, {"b", {3}}});
  attr_i(unknown.node, "broadcast", 1);
  attr_i(unknown.node, "axis", 0);
  EXPECT_TRUE(error_contains(import_proto(unknown.model).status(), StatusCode::kUnsupported, {"'n'", "rank"}));
  auto bad = single_node(6, "Div", {{"a", {2, 3}}, {"b", {3}}});
  attr_i(bad.node, "broadcast", 1);
  attr_i(bad.node, "axis", 2);
  EXPECT_TRUE(error_contains(import_proto(bad.model).status(), StatusCode::kInvalidModel, {"'n'", "axis 2"}));
  auto gemm = single_node(6, "Gemm", {{"a", {2, 3}}, {"b", {3, 4}}, {"c", {4}}});
  attr_i(gemm.node, "broadcast", 1);
  auto mg = import_proto(gemm.model);
  ASSERT_TRUE(mg.ok());
  EXPECT_FALSE(node_n(*mg).attrs.has("broadcast"));
}

TEST(OnnxNormalize, LegacyPReluSlopeIsPerChannel) {
  auto s = single_node(6, "PRelu", {{"x", {2, 3, 2, 2}}, {"slope", {3}}});
  auto m = import_proto(s.model);
  ASSERT_TRUE(m.ok()) << m.status().to_string();
  const Tensor x = random_tensor(DType::kFloat32, {2, 3, 2, 2}, 11);
  const Tensor slope = random_tensor(DType::kFloat32, {3}, 12);
  auto out = reference_eval(*m->graph, {{"x", x}, {"slope", slope}});
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  Tensor expect(DType::kFloat32, x.dims());
  for (int64_t i = 0; i < x.numel(); ++i) {
    float v = x.data<float>()[i];
    expect.data<float>()[i] = v < 0 ? v * slope.data<float>()[(i / 4) % 3] : v;
  }
  EXPECT_TRUE(tensors_close((*out)[0], expect));
  // One shared slope, and opset 7 (numpy broadcasting) are left alone.
  auto one = import_proto(single_node(6, "PRelu", {{"x", {2, 3, 2}}, {"slope", {1}}}).model);
  ASSERT_TRUE(one.ok());
  EXPECT_EQ(node_n(*one).inputs[1]->name, "slope");
  auto m7 = import_proto(single_node(7, "PRelu", {{"x", {2, 3, 2}}, {"slope", {2}}}).model);
  ASSERT_TRUE(m7.ok());
  EXPECT_EQ(node_n(*m7).inputs[1]->name, "slope");
}

TEST(OnnxNormalize, LegacyAttributeForms) {
  auto cast = single_node(5, "Cast", {{"x", {2}}});
  attr_s(cast.node, "to", "INT32");
  auto mc = import_proto(cast.model);
  ASSERT_TRUE(mc.ok());
  EXPECT_EQ(node_n(*mc).attrs.i("to"), TensorProto::INT32);
  attr_s(cast.node, "to", "NOPE");
  cast.node->mutable_attribute()->DeleteSubrange(0, 1);
  EXPECT_TRUE(error_contains(import_proto(cast.model).status(), StatusCode::kInvalidModel, {"'n'", "'NOPE'"}));

  auto concat = import_proto(single_node(3, "Concat", {{"a", {1, 2}}, {"b", {1, 2}}}).model);
  ASSERT_TRUE(concat.ok());
  EXPECT_EQ(node_n(*concat).attrs.i("axis", -1), 1);

  auto selu = import_proto(single_node(5, "Selu", {{"x", {2}}}).model);
  ASSERT_TRUE(selu.ok());
  EXPECT_EQ(node_n(*selu).attrs.f("alpha"), 1.6732f);
  EXPECT_EQ(node_n(*selu).attrs.f("gamma"), 1.0507f);

  auto lp = single_node(1, "GlobalLpPool", {{"x", {1, 1, 2, 2}}});
  attr_f(lp.node, "p", 3.f);
  auto ml = import_proto(lp.model);
  ASSERT_TRUE(ml.ok());
  EXPECT_EQ(node_n(*ml).attrs.i("p"), 3);
  auto lp_bad = single_node(1, "LpPool", {{"x", {1, 1, 2, 2}}});
  attr_f(lp_bad.node, "p", 2.5f);
  EXPECT_TRUE(error_contains(import_proto(lp_bad.model).status(), StatusCode::kUnsupported, {"'n'", "2.5"}));

  auto gru = single_node(3, "GRU", {{"x", {1, 1, 2}}, {"w", {1, 6, 2}}, {"r", {1, 6, 2}}});
  attr_i(gru.node, "output_sequence", 1);
  attr_i(gru.node, "hidden_size", 2);
  auto mg = import_proto(gru.model);
  ASSERT_TRUE(mg.ok());
  EXPECT_FALSE(node_n(*mg).attrs.has("output_sequence"));
  EXPECT_EQ(node_n(*mg).attrs.i("hidden_size"), 2);

  // GRU-1 spelt its default direction "foward"; from GRU-3 on that is an invalid direction.
  for (int64_t opset : {1, 3}) {
    auto typo = single_node(opset, "GRU", {{"x", {1, 1, 2}}, {"w", {1, 6, 2}}, {"r", {1, 6, 2}}});
    attr_s(typo.node, "direction", "foward");
    auto mt = import_proto(typo.model);
    if (opset == 1) {
      ASSERT_TRUE(mt.ok()) << mt.status().message();
      EXPECT_EQ(node_n(*mt).attrs.s("direction"), "forward");
    } else {
      EXPECT_TRUE(error_contains(mt.status(), StatusCode::kInvalidModel, {"'n'", "foward"}));
    }
  }
}

}  // namespace
}  // namespace kiln
