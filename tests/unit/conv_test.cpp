#include <gtest/gtest.h>

#include "nn_reference.hpp"
#include "op_test_util.hpp"

namespace kiln::test {
namespace {

struct ConvCase {
  Dims x, w;
  Dims strides, dilations, pads;  // empty: attribute absent (defaults)
  int64_t group = 1;
  bool bias = true;
  DType dtype = DType::kFloat32;
};

ConvParams params_of(const ConvCase& c) {
  size_t nd = c.x.size() - 2;
  ConvParams p;
  p.strides = c.strides.empty() ? Dims(nd, 1) : c.strides;
  p.dilations = c.dilations.empty() ? Dims(nd, 1) : c.dilations;
  Dims pads = c.pads.empty() ? Dims(2 * nd, 0) : c.pads;
  p.pads_begin.assign(pads.begin(), pads.begin() + static_cast<int64_t>(nd));
  p.pads_end.assign(pads.begin() + static_cast<int64_t>(nd), pads.end());
  p.group = c.group;
  return p;
}

Attributes attrs_of(const ConvCase& c) {
  Attributes a;
  if (!c.strides.empty()) a.set("strides", c.strides);
  if (!c.dilations.empty()) a.set("dilations", c.dilations);
  if (!c.pads.empty()) a.set("pads", c.pads);
  if (c.group != 1) a.set("group", c.group);
  return a;
}

void check_conv(const ConvCase& c, uint32_t seed = 1) {
  SCOPED_TRACE(::testing::Message() << "x " << dims_to_string(c.x) << " w " << dims_to_string(c.w) << " group "
                                    << c.group << " " << dtype_name(c.dtype));
  ConvParams p = params_of(c);
  Tensor x = random_tensor(c.dtype, c.x, seed);
  Tensor w = random_tensor(c.dtype, c.w, seed + 1);
  Tensor b = c.bias ? random_tensor(c.dtype, {c.w[0]}, seed + 2) : Tensor();
  Dims yd{c.x[0], c.w[0]};
  for (size_t i = 0; i + 2 < c.x.size(); ++i)
    yd.push_back((c.x[2 + i] + p.pads_begin[i] + p.pads_end[i] - ((c.w[2 + i] - 1) * p.dilations[i] + 1)) /
                     p.strides[i] + 1);
  std::vector<double> bv = c.bias ? b.to_double_vector() : std::vector<double>{};
  auto ref = ref_conv(x.to_double_vector(), c.x, w.to_double_vector(), c.w, c.bias ? &bv : nullptr, p, yd);
  std::vector<Tensor> ins{x, w};
  if (c.bias) ins.push_back(b);
  auto out = run_op({.op_type = "Conv", .inputs = ins, .attrs = attrs_of(c)});
  ASSERT_TRUE(out.ok()) << out.status().message();
  ASSERT_EQ(out->at(0).dims(), yd);
  ASSERT_EQ(out->at(0).dtype(), c.dtype);
  double tol = c.dtype == DType::kFloat32 ? 1e-5 : c.dtype == DType::kFloat64 ? 1e-12 : 1e-2;
  EXPECT_LT(rel_l2(out->at(0), to_tensor(DType::kFloat64, yd, ref)), tol);
}

TEST(Conv, TwoDimensionalVariants) {
  check_conv({.x = {1, 3, 7, 7}, .w = {4, 3, 3, 3}});
  check_conv({.x = {2, 3, 8, 9}, .w = {5, 3, 3, 2}, .pads = {1, 0, 2, 1}});
  check_conv({.x = {1, 2, 9, 10}, .w = {3, 2, 3, 3}, .strides = {2, 3}, .pads = {1, 1, 1, 1}});
  check_conv({.x = {1, 2, 11, 9}, .w = {3, 2, 3, 2}, .strides = {1, 2}, .dilations = {2, 3}, .pads = {2, 0, 1, 3}});
  check_conv({.x = {2, 4, 6, 6}, .w = {6, 2, 3, 3}, .pads = {1, 1, 1, 1}, .group = 2});
  check_conv({.x = {1, 6, 5, 7}, .w = {6, 1, 3, 3}, .strides = {2, 2}, .pads = {1, 1, 1, 1}, .group = 6});  // depthwise
  check_conv({.x = {1, 4, 5, 5}, .w = {8, 1, 3, 3}, .pads = {0, 1, 2, 1}, .group = 4});  // depth multiplier 2
  check_conv({.x = {1, 3, 7, 7}, .w = {4, 3, 3, 3}, .bias = false});
}

TEST(Conv, PointwiseAndStridedOneByOne) {
  check_conv({.x = {2, 8, 5, 6}, .w = {4, 8, 1, 1}});
  check_conv({.x = {1, 8, 7, 7}, .w = {4, 8, 1, 1}, .strides = {2, 2}});
  check_conv({.x = {1, 4, 5, 5}, .w = {6, 2, 1, 1}, .pads = {1, 1, 0, 0}, .group = 2});
}

TEST(Conv, OneAndThreeDimensional) {
  check_conv({.x = {2, 3, 17}, .w = {4, 3, 5}, .strides = {2}, .dilations = {2}, .pads = {3, 1}});
  check_conv({.x = {1, 4, 10}, .w = {4, 2, 3}, .pads = {1, 1}, .group = 2});
  check_conv({.x = {1, 2, 5, 6, 7}, .w = {3, 2, 3, 2, 3}, .strides = {1, 2, 2}, .pads = {1, 0, 1, 1, 1, 0}});
  check_conv({.x = {1, 4, 6, 5, 5}, .w = {4, 1, 2, 3, 3}, .dilations = {2, 1, 2}, .group = 4});
}

TEST(Conv, Float64AndHalfTypes) {
  check_conv({.x = {1, 3, 6, 6}, .w = {2, 3, 3, 3}, .pads = {1, 1, 1, 1}, .dtype = DType::kFloat64});
  check_conv({.x = {1, 3, 6, 6}, .w = {2, 3, 3, 3}, .strides = {2, 2}, .dtype = DType::kFloat16});
  check_conv({.x = {1, 2, 6, 5}, .w = {2, 1, 3, 3}, .group = 2, .dtype = DType::kBFloat16});
}

// auto_pad: the test derives the pads from the ONNX rule independently of the kernel.
TEST(Conv, AutoPad) {
  Dims xd{1, 2, 7, 8}, wd{3, 2, 3, 4};
  Tensor x = random_tensor(DType::kFloat32, xd, 3), w = random_tensor(DType::kFloat32, wd, 4);
  for (std::string mode : {"SAME_UPPER", "SAME_LOWER", "VALID"}) {
    SCOPED_TRACE(mode);
    Dims strides{2, 3};
    ConvParams p{.strides = strides, .dilations = {1, 1}, .pads_begin = {0, 0}, .pads_end = {0, 0}};
    Dims yd{1, 3};
    for (size_t i = 0; i < 2; ++i) {
      int64_t in = xd[2 + i], k = wd[2 + i], s = strides[i];
      if (mode == "VALID") {
        yd.push_back((in - k) / s + 1);
        continue;
      }
      int64_t out = (in + s - 1) / s;
      int64_t total = std::max<int64_t>(0, (out - 1) * s + k - in);
      p.pads_begin[i] = mode == "SAME_UPPER" ? total / 2 : total - total / 2;
      yd.push_back(out);
    }
    Attributes a;
    a.set("auto_pad", mode);
    a.set("strides", strides);
    auto out = run_op({.op_type = "Conv", .inputs = {x, w}, .attrs = a});
    ASSERT_TRUE(out.ok()) << out.status().message();
    ASSERT_EQ(out->at(0).dims(), yd);
    auto ref = ref_conv(x.to_double_vector(), xd, w.to_double_vector(), wd, nullptr, p, yd);
    EXPECT_LT(rel_l2(out->at(0), to_tensor(DType::kFloat64, yd, ref)), 1e-5);
  }
}

// The ONNX spec example (test_conv_with_strides_and_asymmetric_padding).
TEST(Conv, SpecExampleAsymmetricPadding) {
  std::vector<float> xv(35);
  for (size_t i = 0; i < xv.size(); ++i) xv[i] = static_cast<float>(i);
  Tensor x = Tensor::from_vector<float>({1, 1, 7, 5}, xv);
  Tensor w = Tensor::from_vector<float>({1, 1, 3, 3}, std::vector<float>(9, 1.f));
  Attributes a;
  a.set("kernel_shape", Dims{3, 3});
  a.set("pads", Dims{1, 0, 1, 0});
  a.set("strides", Dims{2, 2});
  auto out = run_op({.op_type = "Conv", .inputs = {x, w}, .attrs = a});
  ASSERT_TRUE(out.ok()) << out.status().message();
  Tensor want = Tensor::from_vector<float>({1, 1, 4, 2}, {21, 33, 99, 117, 189, 207, 171, 183});
  EXPECT_TRUE(tensors_close(out->at(0), want));
}

TEST(Conv, ChannelMismatchNamesNodeAndShapes) {
  Tensor x = random_tensor(DType::kFloat32, {1, 4, 5, 5});
  Tensor w = random_tensor(DType::kFloat32, {2, 3, 3, 3});
  auto out = run_op({.op_type = "Conv", .inputs = {x, w}});
  ASSERT_FALSE(out.ok());
  const std::string& m = out.status().message();
  EXPECT_NE(m.find("Conv_node"), std::string::npos) << m;
  EXPECT_NE(m.find("[1,4,5,5]"), std::string::npos) << m;
  EXPECT_NE(m.find("[2,3,3,3]"), std::string::npos) << m;
}

TEST(Conv, InvalidAttributesAreErrors) {
  Tensor x = random_tensor(DType::kFloat32, {1, 4, 5, 5});
  auto run = [&](Tensor w, Attributes a) { return run_op({.op_type = "Conv", .inputs = {x, w}, .attrs = a}); };
  Attributes group3;
  group3.set("group", int64_t{3});
  auto r1 = run(random_tensor(DType::kFloat32, {3, 2, 3, 3}), group3);  // 4 channels, group 3
  ASSERT_FALSE(r1.ok());
  EXPECT_NE(r1.status().message().find("Conv_node"), std::string::npos);
  Attributes bad_pads;
  bad_pads.set("pads", Dims{1, 1});
  auto r2 = run(random_tensor(DType::kFloat32, {2, 4, 3, 3}), bad_pads);
  ASSERT_FALSE(r2.ok());
  EXPECT_NE(r2.status().message().find("pads"), std::string::npos) << r2.status().message();
  Attributes bad_kernel;
  bad_kernel.set("kernel_shape", Dims{2, 2});
  auto r3 = run(random_tensor(DType::kFloat32, {2, 4, 3, 3}), bad_kernel);
  ASSERT_FALSE(r3.ok());
  EXPECT_NE(r3.status().message().find("kernel_shape"), std::string::npos) << r3.status().message();
  Attributes bad_mode;
  bad_mode.set("auto_pad", std::string("SAME"));
  auto r4 = run(random_tensor(DType::kFloat32, {2, 4, 3, 3}), bad_mode);
  ASSERT_FALSE(r4.ok());
  EXPECT_NE(r4.status().message().find("auto_pad 'SAME'"), std::string::npos) << r4.status().message();
  auto r5 = run(random_tensor(DType::kFloat32, {2, 4, 7, 7}), {});  // kernel larger than the input
  ASSERT_FALSE(r5.ok());
  EXPECT_NE(r5.status().message().find("smaller than the window"), std::string::npos) << r5.status().message();
  auto r6 = run_op({.op_type = "Conv", .inputs = {random_tensor(DType::kInt32, {1, 1, 3, 3}),
                                                   random_tensor(DType::kInt32, {1, 1, 1, 1})}});
  ASSERT_FALSE(r6.ok());
  EXPECT_EQ(r6.status().code(), StatusCode::kUnsupported);
}

TEST(Conv, InfersSymbolicShapes) {
  Graph g;
  Value* x = g.add_value("x", {DType::kFloat32, Shape({Dim::symbolic("n"), Dim(3), Dim::symbolic("h"), Dim(32)})});
  Value* w = g.add_constant("w", random_tensor(DType::kFloat32, {8, 3, 3, 3}));
  Value* y = g.add_value("y");
  g.inputs = {x};
  Node* n = g.add_node("Conv", {x, w}, {y}, "c", "", 21);
  n->attrs.set("strides", Dims{2, 2});
  n->attrs.set("pads", Dims{1, 1, 1, 1});
  g.outputs = {y};
  ASSERT_TRUE(infer_shapes(g).ok());
  EXPECT_EQ(y->type.to_string(), "float32[n,8,?,16]");
}

// ---- ConvTranspose ----

struct ConvTransposeCase {
  Dims x, w;
  Dims strides, dilations, pads, output_padding;
  int64_t group = 1;
  bool bias = true;
  DType dtype = DType::kFloat32;
};

void check_conv_transpose(const ConvTransposeCase& c) {
  SCOPED_TRACE(::testing::Message() << "x " << dims_to_string(c.x) << " w " << dims_to_string(c.w));
  ConvParams p = params_of({.x = c.x, .w = c.w, .strides = c.strides, .dilations = c.dilations, .pads = c.pads,
                            .group = c.group});
  size_t nd = c.x.size() - 2;
  Dims op = c.output_padding.empty() ? Dims(nd, 0) : c.output_padding;
  Tensor x = random_tensor(c.dtype, c.x, 5), w = random_tensor(c.dtype, c.w, 6);
  Tensor b = c.bias ? random_tensor(c.dtype, {c.w[1] * c.group}, 7) : Tensor();
  Dims yd{c.x[0], c.w[1] * c.group};
  for (size_t i = 0; i < nd; ++i)
    yd.push_back(p.strides[i] * (c.x[2 + i] - 1) + op[i] + (c.w[2 + i] - 1) * p.dilations[i] + 1 -
                 p.pads_begin[i] - p.pads_end[i]);
  Attributes a = attrs_of({.x = c.x, .w = c.w, .strides = c.strides, .dilations = c.dilations, .pads = c.pads,
                           .group = c.group});
  if (!c.output_padding.empty()) a.set("output_padding", c.output_padding);
  std::vector<double> bv = c.bias ? b.to_double_vector() : std::vector<double>{};
  auto ref = ref_conv_transpose(x.to_double_vector(), c.x, w.to_double_vector(), c.w, c.bias ? &bv : nullptr, p, yd);
  std::vector<Tensor> ins{x, w};
  if (c.bias) ins.push_back(b);
  auto out = run_op({.op_type = "ConvTranspose", .inputs = ins, .attrs = a});
  ASSERT_TRUE(out.ok()) << out.status().message();
  ASSERT_EQ(out->at(0).dims(), yd);
  double tol = c.dtype == DType::kFloat32 ? 1e-5 : 1e-2;
  EXPECT_LT(rel_l2(out->at(0), to_tensor(DType::kFloat64, yd, ref)), tol);
}

TEST(ConvTranspose, Variants) {
  check_conv_transpose({.x = {1, 3, 4, 5}, .w = {3, 2, 3, 3}});
  check_conv_transpose({.x = {2, 2, 4, 4}, .w = {2, 3, 3, 2}, .strides = {2, 3}, .pads = {1, 0, 0, 1}});
  check_conv_transpose({.x = {1, 2, 3, 4}, .w = {2, 2, 3, 3}, .strides = {2, 2}, .output_padding = {1, 1}});
  check_conv_transpose({.x = {1, 2, 5, 4}, .w = {2, 1, 2, 3}, .strides = {1, 2}, .dilations = {2, 2}, .pads = {1, 1, 0, 2}});
  check_conv_transpose({.x = {1, 4, 3, 3}, .w = {4, 3, 3, 3}, .strides = {2, 2}, .group = 2});
  check_conv_transpose({.x = {1, 4, 3, 3}, .w = {4, 1, 2, 2}, .strides = {2, 2}, .group = 4, .bias = false});
  check_conv_transpose({.x = {2, 3, 7}, .w = {3, 2, 4}, .strides = {3}, .pads = {1, 2}, .output_padding = {2}});
  check_conv_transpose({.x = {1, 2, 3, 2, 3}, .w = {2, 2, 2, 3, 2}, .strides = {2, 1, 2}, .pads = {0, 1, 1, 1, 0, 0}});
  check_conv_transpose({.x = {1, 2, 3, 3}, .w = {2, 2, 3, 3}, .strides = {2, 2}, .dtype = DType::kFloat16});
}

// The ONNX example test_convtranspose_autopad_same (SAME_UPPER crops the end).
TEST(ConvTranspose, AutoPadSameUpperSpecValues) {
  Tensor x = Tensor::from_vector<float>({1, 1, 3, 3}, {0, 1, 2, 3, 4, 5, 6, 7, 8});
  Tensor w = Tensor::from_vector<float>({1, 2, 3, 3}, std::vector<float>(18, 1.f));
  Attributes a;
  a.set("auto_pad", std::string("SAME_UPPER"));
  a.set("strides", Dims{2, 2});
  auto out = run_op({.op_type = "ConvTranspose", .inputs = {x, w}, .attrs = a});
  ASSERT_TRUE(out.ok()) << out.status().message();
  std::vector<float> plane{0, 0, 1, 1, 3, 2, 0, 0, 1, 1, 3, 2, 3, 3, 8, 5, 12, 7,
                           3, 3, 7, 4, 9, 5, 9, 9, 20, 11, 24, 13, 6, 6, 13, 7, 15, 8};
  std::vector<float> both(plane);
  both.insert(both.end(), plane.begin(), plane.end());
  EXPECT_TRUE(tensors_close(out->at(0), Tensor::from_vector<float>({1, 2, 6, 6}, both)));
}

// output_shape sets the size; pads follow from it (the rest of the full result is cropped).
TEST(ConvTranspose, OutputShape) {
  Dims xd{1, 2, 3, 3}, wd{2, 2, 3, 3};
  Tensor x = random_tensor(DType::kFloat32, xd, 8), w = random_tensor(DType::kFloat32, wd, 9);
  Attributes a;
  a.set("strides", Dims{3, 2});
  a.set("output_shape", Dims{10, 8});
  auto out = run_op({.op_type = "ConvTranspose", .inputs = {x, w}, .attrs = a});
  ASSERT_TRUE(out.ok()) << out.status().message();
  ASSERT_EQ(out->at(0).dims(), (Dims{1, 2, 10, 8}));
  // Full sizes 9 and 7: total padding -1 on both axes, so nothing is cropped and the last row and
  // column are zero.
  ConvParams p{.strides = {3, 2}, .dilations = {1, 1}, .pads_begin = {0, 0}, .pads_end = {0, 0}};
  auto ref = ref_conv_transpose(x.to_double_vector(), xd, w.to_double_vector(), wd, nullptr, p, {1, 2, 10, 8});
  EXPECT_LT(rel_l2(out->at(0), to_tensor(DType::kFloat64, {1, 2, 10, 8}, ref)), 1e-5);

  a.set("output_shape", Dims{8, 6});  // total padding 1: NOTSET puts it at the beginning
  auto cropped = run_op({.op_type = "ConvTranspose", .inputs = {x, w}, .attrs = a});
  ASSERT_TRUE(cropped.ok()) << cropped.status().message();
  p.pads_begin = {1, 1};
  auto ref2 = ref_conv_transpose(x.to_double_vector(), xd, w.to_double_vector(), wd, nullptr, p, {1, 2, 8, 6});
  EXPECT_LT(rel_l2(cropped->at(0), to_tensor(DType::kFloat64, {1, 2, 8, 6}, ref2)), 1e-5);
}

TEST(ConvTranspose, ChannelMismatchIsAnError) {
  auto out = run_op({.op_type = "ConvTranspose",
                     .inputs = {random_tensor(DType::kFloat32, {1, 3, 4, 4}), random_tensor(DType::kFloat32, {2, 2, 3, 3})}});
  ASSERT_FALSE(out.ok());
  EXPECT_NE(out.status().message().find("ConvTranspose_node"), std::string::npos);
  EXPECT_NE(out.status().message().find("[2,2,3,3]"), std::string::npos);
  Attributes a;
  a.set("strides", Dims{2, 2});
  a.set("output_padding", Dims{2, 0});
  auto bad = run_op({.op_type = "ConvTranspose",
                     .inputs = {random_tensor(DType::kFloat32, {1, 2, 4, 4}), random_tensor(DType::kFloat32, {2, 2, 3, 3})},
                     .attrs = a});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("output_padding"), std::string::npos);
}

}  // namespace
}  // namespace kiln::test
