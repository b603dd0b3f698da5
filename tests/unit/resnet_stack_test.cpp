// A ResNet-50-shaped stack of the NN ops (batch 1, 224x224): every convolution of the network with
// its real shapes, max pool, global average pool, the classifier Gemm and Softmax. Elementwise ops
// (ReLU, residual Add) are left out so the test needs only this family; the downsample branches are
// extra graph outputs. Its run time is the NN kernels' share of a ResNet-50 inference:
//   build/tests/kiln_unit_tests --gtest_filter='ResNetStack.*'
#include <gtest/gtest.h>

#include <cmath>

#include "op_test_util.hpp"

namespace kiln::test {
namespace {

struct StackBuilder {
  GraphPtr g = std::make_shared<Graph>();
  int counter = 0;
  uint32_t seed = 2463534242u;

  // Uniform in [-bound, bound) from a xorshift generator: 25M weights, so cheaper than mt19937.
  Tensor weights(Dims dims, double bound) {
    Tensor t(DType::kFloat32, std::move(dims));
    float* p = t.data<float>();
    for (int64_t i = 0; i < t.numel(); ++i) {
      seed ^= seed << 13;
      seed ^= seed >> 17;
      seed ^= seed << 5;
      p[i] = static_cast<float>((static_cast<double>(seed) / 4294967296.0 * 2.0 - 1.0) * bound);
    }
    return t;
  }

  Value* conv(Value* x, int64_t cin, int64_t cout, int64_t k, int64_t stride) {
    const std::string id = std::to_string(counter++);
    // Weights scaled by 1 / sqrt(fan_in) keep activations of order 1 through the linear stack.
    Value* w = g->add_constant("w" + id, weights({cout, cin, k, k}, std::sqrt(3.0 / static_cast<double>(cin * k * k))));
    Value* b = g->add_constant("b" + id, weights({cout}, 0.1));
    Value* y = g->add_value("conv" + id);
    Node* n = g->add_node("Conv", {x, w, b}, {y}, "conv" + id, "", 21);
    n->attrs.set("strides", Dims{stride, stride});
    n->attrs.set("pads", Dims{k / 2, k / 2, k / 2, k / 2});
    return y;
  }
};

TEST(ResNetStack, RunsEveryResNet50Layer) {
  StackBuilder s;
  Graph& g = *s.g;
  Value* x = g.add_value("image", {DType::kFloat32, Shape::from_dims({1, 3, 224, 224})});
  g.inputs = {x};
  Value* h = s.conv(x, 3, 64, 7, 2);
  Value* pooled = g.add_value("pool");
  Node* mp = g.add_node("MaxPool", {h}, {pooled}, "maxpool", "", 21);
  mp->attrs.set("kernel_shape", Dims{3, 3});
  mp->attrs.set("strides", Dims{2, 2});
  mp->attrs.set("pads", Dims{1, 1, 1, 1});
  h = pooled;
  int64_t cin = 64;
  const int64_t blocks[4] = {3, 4, 6, 3}, widths[4] = {64, 128, 256, 512};
  std::vector<Value*> side_outputs;
  for (int stage = 0; stage < 4; ++stage) {
    for (int64_t b = 0; b < blocks[stage]; ++b) {
      const int64_t w = widths[stage], stride = (b == 0 && stage > 0) ? 2 : 1;
      if (b == 0) side_outputs.push_back(s.conv(h, cin, 4 * w, 1, stride));  // downsample branch
      Value* t = s.conv(h, cin, w, 1, 1);
      t = s.conv(t, w, w, 3, stride);
      h = s.conv(t, w, 4 * w, 1, 1);
      cin = 4 * w;
    }
  }
  Value* gap = g.add_value("gap");
  g.add_node("GlobalAveragePool", {h}, {gap}, "gap", "", 21);
  // Flatten is not in this family: a 1x1 Conv to 1000 classes plays the classifier instead of Gemm.
  Value* logits4 = s.conv(gap, 2048, 1000, 1, 1);
  Value* probs = g.add_value("probs");
  Node* sm = g.add_node("Softmax", {logits4}, {probs}, "softmax", "", 21);
  sm->attrs.set("axis", int64_t{1});
  g.outputs = {probs};
  for (Value* v : side_outputs) g.outputs.push_back(v);
  ASSERT_TRUE(infer_shapes(g).ok());
  auto exec = CpuExecutor::create(s.g);
  ASSERT_TRUE(exec.ok()) << exec.status().message();
  auto out = (*exec)->run({{"image", random_tensor(DType::kFloat32, {1, 3, 224, 224}, 7)}});
  ASSERT_TRUE(out.ok()) << out.status().message();
  const Tensor& p = out->at(0);
  ASSERT_EQ(p.dims(), (Dims{1, 1000, 1, 1}));
  double sum = 0;
  for (int64_t i = 0; i < p.numel(); ++i) {
    ASSERT_TRUE(std::isfinite(p.data<float>()[i]));
    sum += p.data<float>()[i];
  }
  EXPECT_NEAR(sum, 1.0, 1e-4);
  EXPECT_EQ(out->at(1).dims(), (Dims{1, 256, 56, 56}));
  EXPECT_EQ(out->at(4).dims(), (Dims{1, 2048, 7, 7}));
}

}  // namespace
}  // namespace kiln::test
