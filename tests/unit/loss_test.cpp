#include <gtest/gtest.h>

#include <optional>

#include "nn_reference.hpp"
#include "op_test_util.hpp"

namespace kiln::test {
namespace {

struct LossRef {
  Tensor loss;      // float64
  Tensor log_prob;  // float64, SCE only
};

// The loss by direct loops over the target's indices (n, d1..dk), in double.
LossRef ref_loss(bool softmax, const Tensor& x, const Tensor& target, const Tensor* weight,
                 const std::string& reduction, std::optional<int64_t> ignore) {
  const Dims& xd = x.dims();
  std::vector<double> xv = x.to_double_vector();
  std::vector<double> logp = xv;
  if (softmax) {
    Dims lines = xd;
    lines[1] = 1;
    for_each_index(lines, [&](const Dims& l) {
      Dims i = l;
      double sum = 0;
      for (int64_t c = 0; c < xd[1]; ++c) {
        i[1] = c;
        sum += std::exp(xv[static_cast<size_t>(offset_of(xd, i))]);
      }
      for (int64_t c = 0; c < xd[1]; ++c) {
        i[1] = c;
        size_t o = static_cast<size_t>(offset_of(xd, i));
        logp[o] = xv[o] - std::log(sum);
      }
    });
  }
  auto tv = *target.to_int64_vector();
  std::vector<double> wv = weight ? weight->to_double_vector() : std::vector<double>{};
  std::vector<double> loss(tv.size());
  double total = 0, wsum = 0;
  for_each_index(target.dims(), [&](const Dims& ti) {
    size_t to = static_cast<size_t>(offset_of(target.dims(), ti));
    int64_t t = tv[to];
    if (ignore && t == *ignore) return;
    Dims xi = ti;
    xi.insert(xi.begin() + 1, t);
    double w = weight ? wv[static_cast<size_t>(t)] : 1.0;
    loss[to] = -w * logp[static_cast<size_t>(offset_of(xd, xi))];
    total += loss[to];
    wsum += w;
  });
  LossRef r;
  if (reduction == "none") r.loss = to_tensor(DType::kFloat64, target.dims(), loss);
  else r.loss = to_tensor(DType::kFloat64, {}, {reduction == "sum" ? total : total / wsum});
  r.log_prob = to_tensor(DType::kFloat64, xd, logp);
  return r;
}

// Targets in [0, C) with every class present, some equal to `ignore` when given.
Tensor random_target(DType dtype, Dims dims, int64_t classes, uint32_t seed) {
  Tensor t = random_tensor(DType::kFloat64, dims, seed, 0, static_cast<double>(classes));
  auto v = t.to_double_vector();
  std::vector<double> ints(v.size());
  for (size_t i = 0; i < v.size(); ++i) ints[i] = std::floor(v[i]);
  return to_tensor(dtype, dims, ints);
}

TEST(Loss, AllReductionsWeightsIgnoreIndexAndRanks) {
  const std::vector<Dims> shapes = {{3, 5}, {2, 4, 3}, {2, 3, 2, 2, 3}};
  for (std::string op : {"NegativeLogLikelihoodLoss", "SoftmaxCrossEntropyLoss"})
    for (const Dims& xd : shapes)
      for (std::string reduction : {"none", "sum", "mean"})
        for (bool weighted : {false, true})
          for (std::optional<int64_t> ignore : {std::optional<int64_t>{}, std::optional<int64_t>{1},
                                                std::optional<int64_t>{-3}}) {
            SCOPED_TRACE(op + " " + dims_to_string(xd) + " " + reduction + (weighted ? " weighted" : "") +
                         (ignore ? " ii " + std::to_string(*ignore) : ""));
            const bool sce = op == "SoftmaxCrossEntropyLoss";
            Tensor x = random_tensor(DType::kFloat32, xd, 3, -3, 3);
            Dims td = xd;
            td.erase(td.begin() + 1);
            Tensor target = random_target(DType::kInt64, td, xd[1], 5);
            if (ignore && *ignore < 0) {  // a negative ignore_index is a valid marker outside [0, C)
              target.data<int64_t>()[0] = *ignore;
            }
            Tensor w = random_tensor(DType::kFloat32, {xd[1]}, 9, 0.1, 2);
            Attributes a;
            a.set("reduction", reduction);
            if (ignore) a.set("ignore_index", *ignore);
            auto out = run_op({.op_type = op, .inputs = {x, target, weighted ? w : Tensor()}, .attrs = a,
                               .num_outputs = sce ? 2 : 1});
            ASSERT_TRUE(out.ok()) << out.status().message();
            LossRef ref = ref_loss(sce, x, target, weighted ? &w : nullptr, reduction, ignore);
            EXPECT_TRUE(tensors_close(out->at(0).cast(DType::kFloat64), ref.loss, 1e-5, 1e-6));
            if (sce) {
              EXPECT_TRUE(tensors_close(out->at(1).cast(DType::kFloat64), ref.log_prob, 1e-5, 1e-6));
            }
          }
}

TEST(Loss, DoubleAndHalfAndInt32Targets) {
  Tensor x = random_tensor(DType::kFloat64, {4, 3, 2}, 11);
  Tensor target = random_target(DType::kInt32, {4, 2}, 3, 12);
  Tensor w = random_tensor(DType::kFloat64, {3}, 13, 0.5, 1.5);
  for (std::string op : {"NegativeLogLikelihoodLoss", "SoftmaxCrossEntropyLoss"}) {
    SCOPED_TRACE(op);
    const bool sce = op == "SoftmaxCrossEntropyLoss";
    auto out = run_op({.op_type = op, .inputs = {x, target, w}});
    ASSERT_TRUE(out.ok()) << out.status().message();
    EXPECT_EQ(out->at(0).dtype(), DType::kFloat64);
    EXPECT_TRUE(tensors_close(out->at(0), ref_loss(sce, x, target, &w, "mean", {}).loss, 1e-12, 1e-12));
    Tensor xh = x.cast(DType::kFloat16), wh = w.cast(DType::kFloat16);
    auto outh = run_op({.op_type = op, .inputs = {xh, target, wh}});
    ASSERT_TRUE(outh.ok()) << outh.status().message();
    EXPECT_EQ(outh->at(0).dtype(), DType::kFloat16);
    Tensor xr = xh.cast(DType::kFloat64), wr = wh.cast(DType::kFloat64);
    EXPECT_TRUE(tensors_close(outh->at(0).cast(DType::kFloat64), ref_loss(sce, xr, target, &wr, "mean", {}).loss,
                              2e-3, 1e-3));
  }
}

TEST(Loss, MeanOfAllIgnoredIsNaN) {
  Tensor x = random_tensor(DType::kFloat32, {2, 3}, 1);
  Tensor target = Tensor::from_vector<int64_t>({2}, {2, 2});
  Attributes a;
  a.set("ignore_index", int64_t{2});
  auto out = run_op({.op_type = "NegativeLogLikelihoodLoss", .inputs = {x, target}, .attrs = a});
  ASSERT_TRUE(out.ok()) << out.status().message();
  EXPECT_TRUE(std::isnan(out->at(0).scalar_as_double()));
}

TEST(Loss, Errors) {
  Tensor x = random_tensor(DType::kFloat32, {2, 3}, 1);
  Tensor target = Tensor::from_vector<int64_t>({2}, {0, 1});
  {
    Attributes a;
    a.set("reduction", std::string("max"));
    auto out = run_op({.op_type = "NegativeLogLikelihoodLoss", .inputs = {x, target}, .attrs = a});
    ASSERT_FALSE(out.ok());
    EXPECT_NE(out.status().message().find("NegativeLogLikelihoodLoss_node"), std::string::npos);
    EXPECT_NE(out.status().message().find("max"), std::string::npos);
  }
  {  // a target class outside [0, C) that is not ignore_index
    Tensor bad = Tensor::from_vector<int64_t>({2}, {0, 3});
    auto out = run_op({.op_type = "SoftmaxCrossEntropyLoss", .inputs = {x, bad}});
    ASSERT_FALSE(out.ok());
    EXPECT_NE(out.status().message().find("out of range"), std::string::npos);
  }
  {  // target rank must be input rank - 1
    Tensor bad = Tensor::from_vector<int64_t>({2, 1}, {0, 1});
    auto out = run_op({.op_type = "SoftmaxCrossEntropyLoss", .inputs = {x, bad}});
    ASSERT_FALSE(out.ok());
    EXPECT_NE(out.status().message().find("SoftmaxCrossEntropyLoss_node"), std::string::npos);
  }
  {  // weight must have C entries
    auto out = run_op({.op_type = "NegativeLogLikelihoodLoss",
                       .inputs = {x, target, random_tensor(DType::kFloat32, {4}, 2)}});
    ASSERT_FALSE(out.ok());
    EXPECT_NE(out.status().message().find("weight"), std::string::npos);
  }
  {  // integer scores are unsupported
    auto out = run_op({.op_type = "NegativeLogLikelihoodLoss", .inputs = {x.cast(DType::kInt32), target}});
    ASSERT_FALSE(out.ok());
    EXPECT_EQ(out.status().code(), StatusCode::kUnsupported);
  }
}

}  // namespace
}  // namespace kiln::test
