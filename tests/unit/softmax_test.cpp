#include <gtest/gtest.h>

#include "nn_reference.hpp"
#include "op_test_util.hpp"

namespace kiln::test {
namespace {

// Softmax/LogSoftmax/Hardmax along `axis` by direct loops over each line.
Tensor ref_softmax(const std::string& op, const Tensor& x, int64_t axis) {
  const Dims& d = x.dims();
  const int64_t r = static_cast<int64_t>(d.size()), ax = axis < 0 ? axis + r : axis;
  auto xv = x.to_double_vector();
  std::vector<double> y(xv.size());
  Dims lines = d;
  lines[static_cast<size_t>(ax)] = 1;
  for_each_index(lines, [&](const Dims& l) {
    Dims i = l;
    std::vector<size_t> offs;
    for (int64_t k = 0; k < d[static_cast<size_t>(ax)]; ++k) {
      i[static_cast<size_t>(ax)] = k;
      offs.push_back(static_cast<size_t>(offset_of(d, i)));
    }
    double sum = 0;
    size_t arg = offs[0];
    for (size_t o : offs) {
      sum += std::exp(xv[o]);
      if (xv[o] > xv[arg]) arg = o;
    }
    for (size_t o : offs) {
      if (op == "Softmax") y[o] = std::exp(xv[o]) / sum;
      else if (op == "LogSoftmax") y[o] = xv[o] - std::log(sum);
      else y[o] = o == arg ? 1.0 : 0.0;
    }
  });
  return to_tensor(DType::kFloat64, d, y);
}

TEST(Softmax, AllKindsAllAxes) {
  Dims xd{2, 3, 4};
  for (std::string op : {"Softmax", "LogSoftmax", "Hardmax"})
    for (int64_t axis : {0, 1, 2, -1, -3}) {
      SCOPED_TRACE(op + " axis " + std::to_string(axis));
      Tensor x = random_tensor(DType::kFloat32, xd, 7, -4, 4);
      Attributes a;
      a.set("axis", axis);
      auto out = run_op({.op_type = op, .inputs = {x}, .attrs = a});
      ASSERT_TRUE(out.ok()) << out.status().message();
      EXPECT_TRUE(tensors_close(out->at(0).cast(DType::kFloat64), ref_softmax(op, x, axis), 1e-5, 1e-6));
    }
}

TEST(Softmax, DefaultAxisIsLastAndLargeValuesStayFinite) {
  Tensor x = Tensor::from_vector<float>({2, 4}, {10000, 10001, 10002, 10003, -5, 0, 5, 1});
  auto out = run_op({.op_type = "Softmax", .inputs = {x}});
  ASSERT_TRUE(out.ok());
  Tensor shifted = Tensor::from_vector<float>({2, 4}, {0, 1, 2, 3, -5, 0, 5, 1});
  EXPECT_TRUE(tensors_close(out->at(0).cast(DType::kFloat64), ref_softmax("Softmax", shifted, -1), 1e-5, 1e-7));
  auto log_out = run_op({.op_type = "LogSoftmax", .inputs = {x}});
  ASSERT_TRUE(log_out.ok());
  EXPECT_TRUE(tensors_close(log_out->at(0).cast(DType::kFloat64), ref_softmax("LogSoftmax", shifted, -1), 1e-5, 1e-5));
}

TEST(Softmax, OtherTypes) {
  for (DType dt : {DType::kFloat64, DType::kFloat16, DType::kBFloat16}) {
    SCOPED_TRACE(dtype_name(dt));
    Tensor x = random_tensor(dt, {3, 5}, 8);
    auto out = run_op({.op_type = "Softmax", .inputs = {x}});
    ASSERT_TRUE(out.ok());
    ASSERT_EQ(out->at(0).dtype(), dt);
    EXPECT_LT(rel_l2(out->at(0), ref_softmax("Softmax", x, -1)), dt == DType::kFloat64 ? 1e-14 : 1e-2);
  }
}

// Ties: Hardmax marks the first maximum only.
TEST(Hardmax, FirstMaximumWins) {
  Tensor x = Tensor::from_vector<float>({2, 3}, {1, 3, 3, 2, 2, 2});
  auto out = run_op({.op_type = "Hardmax", .inputs = {x}});
  ASSERT_TRUE(out.ok());
  EXPECT_TRUE(tensors_close(out->at(0), Tensor::from_vector<float>({2, 3}, {0, 1, 0, 1, 0, 0})));
}

TEST(Softmax, Errors) {
  Attributes a;
  a.set("axis", int64_t{2});
  auto r = run_op({.op_type = "Softmax", .inputs = {random_tensor(DType::kFloat32, {2, 3})}, .attrs = a});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("Softmax_node"), std::string::npos);
  EXPECT_NE(r.status().message().find("axis 2"), std::string::npos);
  auto t = run_op({.op_type = "Softmax", .inputs = {random_tensor(DType::kInt32, {2, 3})}});
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().code(), StatusCode::kUnsupported);
}

TEST(Dropout, InferenceIsIdentityWithTrueMask) {
  Tensor x = random_tensor(DType::kFloat32, {3, 4}, 9);
  auto out = run_op({.op_type = "Dropout", .inputs = {x, Tensor::scalar<float>(0.7f)}, .num_outputs = 2});
  ASSERT_TRUE(out.ok()) << out.status().message();
  EXPECT_TRUE(tensors_close(out->at(0), x, 0, 0));
  ASSERT_EQ(out->at(1).dtype(), DType::kBool);
  for (int64_t i = 0; i < 12; ++i) EXPECT_TRUE(out->at(1).data<bool>()[i]);
  auto explicit_off = run_op({.op_type = "Dropout", .inputs = {x, Tensor::scalar<float>(0.7f), Tensor::scalar<bool>(false)}});
  ASSERT_TRUE(explicit_off.ok());
  EXPECT_TRUE(tensors_close(explicit_off->at(0), x, 0, 0));
}

TEST(Dropout, TrainingModeDropsAndScales) {
  Tensor x = random_tensor(DType::kFloat32, {100, 100}, 10, 1, 2);  // no zeros in x
  Attributes a;
  a.set("seed", int64_t{42});
  auto out = run_op({.op_type = "Dropout", .inputs = {x, Tensor::scalar<float>(0.25f), Tensor::scalar<bool>(true)},
                     .attrs = a, .num_outputs = 2});
  ASSERT_TRUE(out.ok()) << out.status().message();
  const float* y = out->at(0).data<float>();
  const bool* m = out->at(1).data<bool>();
  int64_t kept = 0;
  for (int64_t i = 0; i < x.numel(); ++i) {
    if (m[i]) {
      ++kept;
      EXPECT_NEAR(y[i], x.data<float>()[i] / 0.75f, 1e-5);
    } else {
      EXPECT_EQ(y[i], 0.f);
    }
  }
  EXPECT_NEAR(static_cast<double>(kept) / 10000.0, 0.75, 0.03);
  // The same seed gives the same mask.
  auto again = run_op({.op_type = "Dropout", .inputs = {x, Tensor::scalar<float>(0.25f), Tensor::scalar<bool>(true)},
                       .attrs = a, .num_outputs = 2});
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(tensors_close(again->at(0), out->at(0), 0, 0));

  // The mask follows numpy's RandomState(seed).random_sample() >= ratio, like the ONNX reference:
  // seed 7 draws 0.076, 0.780, 0.438, 0.723, 0.978, 0.538.
  Attributes seven;
  seven.set("seed", int64_t{7});
  auto np_like = run_op({.op_type = "Dropout",
                         .inputs = {Tensor::from_vector<float>({6}, {1, 2, 3, 4, 5, 6}), Tensor::scalar<float>(0.5f), Tensor::scalar<bool>(true)},
                         .attrs = seven});
  ASSERT_TRUE(np_like.ok());
  EXPECT_TRUE(tensors_close(np_like->at(0), Tensor::from_vector<float>({6}, {0, 4, 0, 8, 10, 12})));

  auto bad = run_op({.op_type = "Dropout", .inputs = {x, Tensor::scalar<float>(1.0f), Tensor::scalar<bool>(true)}});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("ratio"), std::string::npos);
}

}  // namespace
}  // namespace kiln::test
