#include <gtest/gtest.h>

#include "nn_reference.hpp"
#include "op_test_util.hpp"

namespace kiln::test {
namespace {

constexpr const char* kDomain = "ai.onnx.preview.training";

// Runs an optimizer with R, T and the given per-tensor groups (each group: one tensor per optimized X).
Expected<std::vector<Tensor>> run_optimizer(const std::string& op, float r, int64_t t,
                                            const std::vector<std::vector<Tensor>>& groups, const Attributes& a) {
  std::vector<Tensor> inputs = {Tensor::scalar(r), Tensor::scalar(t)};
  for (const auto& g : groups) inputs.insert(inputs.end(), g.begin(), g.end());
  const int n = static_cast<int>(groups[0].size());
  return run_op({.op_type = op, .inputs = inputs, .attrs = a,
                 .num_outputs = n * static_cast<int>(groups.size() - 1), .opset = 1, .domain = kDomain});
}

std::vector<double> vals(const Tensor& t) { return t.to_double_vector(); }

TEST(Training, AdagradTwoTensors) {
  Attributes a;
  a.set("decay_factor", 0.1f);
  a.set("epsilon", 1e-5f);
  a.set("norm_coefficient", 0.01f);
  Tensor x1 = random_tensor(DType::kFloat32, {3}, 1), x2 = random_tensor(DType::kFloat32, {2, 2}, 2);
  Tensor g1 = random_tensor(DType::kFloat32, {3}, 3), g2 = random_tensor(DType::kFloat32, {2, 2}, 4);
  Tensor h1 = random_tensor(DType::kFloat32, {3}, 5, 0.1, 1), h2 = random_tensor(DType::kFloat32, {2, 2}, 6, 0.1, 1);
  auto out = run_optimizer("Adagrad", 0.2f, 3, {{x1, x2}, {g1, g2}, {h1, h2}}, a);
  ASSERT_TRUE(out.ok()) << out.status().message();
  ASSERT_EQ(out->size(), 4u);
  const std::vector<Tensor> xs = {x1, x2}, gs = {g1, g2}, hs = {h1, h2};
  for (size_t k = 0; k < 2; ++k) {
    auto x = vals(xs[k]), g = vals(gs[k]), h = vals(hs[k]);
    std::vector<double> xn(x.size()), hn(x.size());
    const double lr = 0.2 / (1 + 3 * 0.1);
    for (size_t i = 0; i < x.size(); ++i) {
      double gr = 0.01 * x[i] + g[i];
      hn[i] = h[i] + gr * gr;
      xn[i] = x[i] - lr * gr / (std::sqrt(hn[i]) + 1e-5);
    }
    EXPECT_TRUE(tensors_close(out->at(k).cast(DType::kFloat64), to_tensor(DType::kFloat64, xs[k].dims(), xn), 1e-5, 1e-6));
    EXPECT_TRUE(tensors_close(out->at(2 + k).cast(DType::kFloat64), to_tensor(DType::kFloat64, xs[k].dims(), hn), 1e-5, 1e-6));
  }
}

TEST(Training, MomentumStandardAndNesterovFirstAndLaterSteps) {
  Tensor x = random_tensor(DType::kFloat64, {5}, 1), g = random_tensor(DType::kFloat64, {5}, 2);
  Tensor v = random_tensor(DType::kFloat64, {5}, 3);
  for (std::string mode : {"standard", "nesterov"})
    for (int64_t t : {0, 4}) {
      SCOPED_TRACE(mode + " T=" + std::to_string(t));
      Attributes a;
      a.set("alpha", 0.9f);
      a.set("beta", 0.3f);
      a.set("mode", mode);
      a.set("norm_coefficient", 0.02f);
      auto out = run_optimizer("Momentum", 0.1f, t, {{x}, {g}, {v}}, a);
      ASSERT_TRUE(out.ok()) << out.status().message();
      auto xv = vals(x), gv = vals(g), vv = vals(v);
      std::vector<double> xn(5), vn(5);
      const double alpha = 0.9f, beta = t > 0 ? double(0.3f) : 1.0, norm = 0.02f, r = 0.1f;
      for (size_t i = 0; i < 5; ++i) {
        double gr = norm * xv[i] + gv[i];
        vn[i] = alpha * vv[i] + beta * gr;
        xn[i] = xv[i] - r * (mode == "nesterov" ? gr + alpha * vn[i] : vn[i]);
      }
      EXPECT_TRUE(tensors_close(out->at(0), to_tensor(DType::kFloat64, {5}, xn), 1e-12, 1e-12));
      EXPECT_TRUE(tensors_close(out->at(1), to_tensor(DType::kFloat64, {5}, vn), 1e-12, 1e-12));
    }
}

TEST(Training, AdamWithBiasCorrectionAndPostNorm) {
  Tensor x = random_tensor(DType::kFloat32, {2, 3}, 1), g = random_tensor(DType::kFloat32, {2, 3}, 2);
  Tensor v = random_tensor(DType::kFloat32, {2, 3}, 3), h = random_tensor(DType::kFloat32, {2, 3}, 4, 0.1, 1);
  for (int64_t t : {0, 2}) {
    SCOPED_TRACE(t);
    Attributes a;
    a.set("alpha", 0.8f);
    a.set("beta", 0.7f);
    a.set("epsilon", 1e-3f);
    a.set("norm_coefficient", 0.01f);
    a.set("norm_coefficient_post", 0.05f);
    auto out = run_optimizer("Adam", 0.1f, t, {{x}, {g}, {v}, {h}}, a);
    ASSERT_TRUE(out.ok()) << out.status().message();
    ASSERT_EQ(out->size(), 3u);
    auto xv = vals(x), gv = vals(g), vv = vals(v), hv = vals(h);
    std::vector<double> xn(6), vn(6), hn(6);
    const double al = 0.8f, be = 0.7f;
    const double lr = t > 0 ? 0.1 * std::sqrt(1 - std::pow(be, t)) / (1 - std::pow(al, t)) : 0.1;
    for (size_t i = 0; i < 6; ++i) {
      double gr = 0.01 * xv[i] + gv[i];
      vn[i] = al * vv[i] + (1 - al) * gr;
      hn[i] = be * hv[i] + (1 - be) * gr * gr;
      xn[i] = (1 - 0.05) * (xv[i] - lr * vn[i] / (std::sqrt(hn[i]) + 1e-3));
    }
    EXPECT_TRUE(tensors_close(out->at(0).cast(DType::kFloat64), to_tensor(DType::kFloat64, {2, 3}, xn), 1e-5, 1e-6));
    EXPECT_TRUE(tensors_close(out->at(1).cast(DType::kFloat64), to_tensor(DType::kFloat64, {2, 3}, vn), 1e-5, 1e-6));
    EXPECT_TRUE(tensors_close(out->at(2).cast(DType::kFloat64), to_tensor(DType::kFloat64, {2, 3}, hn), 1e-5, 1e-6));
  }
}

TEST(Training, Errors) {
  Tensor x = random_tensor(DType::kFloat32, {3}, 1);
  {  // Momentum's mode must be standard or nesterov
    Attributes a;
    a.set("alpha", 0.9f);
    a.set("beta", 0.1f);
    a.set("mode", std::string("heavy"));
    a.set("norm_coefficient", 0.f);
    auto out = run_optimizer("Momentum", 0.1f, 1, {{x}, {x}, {x}}, a);
    ASSERT_FALSE(out.ok());
    EXPECT_NE(out.status().message().find("Momentum_node"), std::string::npos);
    EXPECT_NE(out.status().message().find("heavy"), std::string::npos);
  }
  {  // G must match X's shape
    auto out = run_optimizer("Adagrad", 0.1f, 1, {{x}, {random_tensor(DType::kFloat32, {4}, 2)}, {x}}, {});
    ASSERT_FALSE(out.ok());
    EXPECT_NE(out.status().message().find("Adagrad_node"), std::string::npos);
  }
  {  // Adam's inputs come in 4 groups
    std::vector<Tensor> in = {Tensor::scalar(0.1f), Tensor::scalar(int64_t{1}), x, x, x, x, x};
    auto out = run_op({.op_type = "Adam", .inputs = in, .num_outputs = 3, .opset = 1, .domain = kDomain});
    ASSERT_FALSE(out.ok());
    EXPECT_NE(out.status().message().find("groups"), std::string::npos);
  }
}

}  // namespace
}  // namespace kiln::test
