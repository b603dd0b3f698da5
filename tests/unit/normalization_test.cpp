#include <gtest/gtest.h>

#include <map>

#include "nn_reference.hpp"
#include "op_test_util.hpp"

namespace kiln::test {
namespace {

double tol_for(DType t) { return t == DType::kFloat32 ? 1e-5 : t == DType::kFloat64 ? 1e-12 : 1e-2; }

TEST(BatchNormalization, Inference) {
  for (DType dt : {DType::kFloat32, DType::kFloat64, DType::kFloat16}) {
    SCOPED_TRACE(dtype_name(dt));
    Dims xd{2, 3, 4, 5};
    Tensor x = random_tensor(dt, xd, 1), scale = random_tensor(dt, {3}, 2), b = random_tensor(dt, {3}, 3);
    Tensor mean = random_tensor(dt, {3}, 4), var = random_tensor(dt, {3}, 5, 0.5, 2.0);
    Attributes a;
    a.set("epsilon", 1e-3f);
    auto out = run_op({.op_type = "BatchNormalization", .inputs = {x, scale, b, mean, var}, .attrs = a});
    ASSERT_TRUE(out.ok()) << out.status().message();
    auto xv = x.to_double_vector(), sv = scale.to_double_vector(), bv = b.to_double_vector();
    auto mv = mean.to_double_vector(), vv = var.to_double_vector();
    std::vector<double> want;
    for_each_index(xd, [&](const Dims& i) {
      size_t c = static_cast<size_t>(i[1]);
      want.push_back(sv[c] * (xv[static_cast<size_t>(offset_of(xd, i))] - mv[c]) / std::sqrt(vv[c] + static_cast<double>(1e-3f)) + bv[c]);  // the attribute is a float
    });
    EXPECT_LT(rel_l2(out->at(0), to_tensor(DType::kFloat64, xd, want)), tol_for(dt));
  }
}

TEST(BatchNormalization, TrainingModeOutputsRunningStats) {
  Dims xd{3, 2, 4};
  Tensor x = random_tensor(DType::kFloat32, xd, 6), scale = random_tensor(DType::kFloat32, {2}, 7);
  Tensor b = random_tensor(DType::kFloat32, {2}, 8), mean = random_tensor(DType::kFloat32, {2}, 9);
  Tensor var = random_tensor(DType::kFloat32, {2}, 10, 0.5, 2);
  Attributes a;
  a.set("training_mode", int64_t{1});
  a.set("momentum", 0.8f);
  auto out = run_op({.op_type = "BatchNormalization", .inputs = {x, scale, b, mean, var}, .attrs = a, .num_outputs = 3});
  ASSERT_TRUE(out.ok()) << out.status().message();
  auto xv = x.to_double_vector();
  std::vector<double> bm(2), bvar(2);
  for (int64_t c = 0; c < 2; ++c) {
    double s = 0, s2 = 0;
    for (int64_t n = 0; n < 3; ++n)
      for (int64_t j = 0; j < 4; ++j) s += xv[static_cast<size_t>((n * 2 + c) * 4 + j)];
    bm[static_cast<size_t>(c)] = s / 12;
    for (int64_t n = 0; n < 3; ++n)
      for (int64_t j = 0; j < 4; ++j) s2 += std::pow(xv[static_cast<size_t>((n * 2 + c) * 4 + j)] - s / 12, 2);
    bvar[static_cast<size_t>(c)] = s2 / 12;
  }
  auto sv = scale.to_double_vector(), bv = b.to_double_vector(), mv = mean.to_double_vector(), vv = var.to_double_vector();
  std::vector<double> y;
  for_each_index(xd, [&](const Dims& i) {
    size_t c = static_cast<size_t>(i[1]);
    y.push_back(sv[c] * (xv[static_cast<size_t>(offset_of(xd, i))] - bm[c]) / std::sqrt(bvar[c] + 1e-5) + bv[c]);
  });
  EXPECT_LT(rel_l2(out->at(0), to_tensor(DType::kFloat64, xd, y)), 1e-5);
  std::vector<double> rm{mv[0] * 0.8 + bm[0] * 0.2, mv[1] * 0.8 + bm[1] * 0.2};
  std::vector<double> rv{vv[0] * 0.8 + bvar[0] * 0.2, vv[1] * 0.8 + bvar[1] * 0.2};
  EXPECT_TRUE(tensors_close(out->at(1), to_tensor(DType::kFloat32, {2}, rm), 1e-5, 1e-6));
  EXPECT_TRUE(tensors_close(out->at(2), to_tensor(DType::kFloat32, {2}, rv), 1e-5, 1e-6));
}

TEST(BatchNormalization, Errors) {
  Tensor x = random_tensor(DType::kFloat32, {1, 3, 2, 2});
  Tensor p3 = random_tensor(DType::kFloat32, {3}), p4 = random_tensor(DType::kFloat32, {4});
  auto bad = run_op({.op_type = "BatchNormalization", .inputs = {x, p4, p3, p3, p3}});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("BatchNormalization_node"), std::string::npos);
  EXPECT_NE(bad.status().message().find("scale [4]"), std::string::npos) << bad.status().message();
  auto outs = run_op({.op_type = "BatchNormalization", .inputs = {x, p3, p3, p3, p3}, .num_outputs = 3});
  ASSERT_FALSE(outs.ok());
  EXPECT_NE(outs.status().message().find("training_mode"), std::string::npos);
}

// Normalizes x (N, C, inner) per (n, group of C / groups channels), then scale/bias per channel.
std::vector<double> ref_group_norm(const Tensor& x, const Tensor& scale, const Tensor& bias, int64_t groups, double eps) {
  const Dims& d = x.dims();
  const int64_t n = d[0], c = d[1], inner = numel_of(d) / (n * c), per = c / groups;
  auto xv = x.to_double_vector(), sv = scale.to_double_vector(), bv = bias.to_double_vector();
  std::vector<double> y(xv.size());
  for (int64_t i = 0; i < n; ++i)
    for (int64_t g = 0; g < groups; ++g) {
      const int64_t begin = (i * c + g * per) * inner, count = per * inner;
      double m = 0, v = 0;
      for (int64_t k = 0; k < count; ++k) m += xv[static_cast<size_t>(begin + k)];
      m /= static_cast<double>(count);
      for (int64_t k = 0; k < count; ++k) v += std::pow(xv[static_cast<size_t>(begin + k)] - m, 2);
      v /= static_cast<double>(count);
      for (int64_t k = 0; k < count; ++k) {
        size_t ch = static_cast<size_t>(g * per + k / inner);
        y[static_cast<size_t>(begin + k)] = (xv[static_cast<size_t>(begin + k)] - m) / std::sqrt(v + eps) * sv[ch] + bv[ch];
      }
    }
  return y;
}

TEST(InstanceNormalization, MatchesReference) {
  for (DType dt : {DType::kFloat32, DType::kFloat16}) {
    Dims xd{2, 3, 5, 4};
    Tensor x = random_tensor(dt, xd, 11), s = random_tensor(dt, {3}, 12), b = random_tensor(dt, {3}, 13);
    Attributes a;
    a.set("epsilon", 1e-2f);
    auto out = run_op({.op_type = "InstanceNormalization", .inputs = {x, s, b}, .attrs = a});
    ASSERT_TRUE(out.ok()) << out.status().message();
    EXPECT_LT(rel_l2(out->at(0), to_tensor(DType::kFloat64, xd, ref_group_norm(x, s, b, 3, 1e-2))), tol_for(dt));
  }
}

TEST(GroupNormalization, PerChannelScaleAndBias) {
  for (int64_t groups : {1, 2, 6}) {
    SCOPED_TRACE(groups);
    Dims xd{2, 6, 3, 3};
    Tensor x = random_tensor(DType::kFloat32, xd, 14), s = random_tensor(DType::kFloat32, {6}, 15);
    Tensor b = random_tensor(DType::kFloat32, {6}, 16);
    Attributes a;
    a.set("num_groups", groups);
    auto out = run_op({.op_type = "GroupNormalization", .inputs = {x, s, b}, .attrs = a});
    ASSERT_TRUE(out.ok()) << out.status().message();
    EXPECT_LT(rel_l2(out->at(0), to_tensor(DType::kFloat64, xd, ref_group_norm(x, s, b, groups, 1e-5))), 1e-5);
  }
  Attributes bad;
  bad.set("num_groups", int64_t{4});
  auto r = run_op({.op_type = "GroupNormalization",
                   .inputs = {random_tensor(DType::kFloat32, {1, 6, 2}), random_tensor(DType::kFloat32, {6}), random_tensor(DType::kFloat32, {6})},
                   .attrs = bad});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("num_groups 4"), std::string::npos) << r.status().message();
}

void check_layer_norm(const Dims& xd, int64_t axis, const Dims& scale_dims, bool with_bias, DType dt = DType::kFloat32) {
  SCOPED_TRACE(::testing::Message() << dims_to_string(xd) << " axis " << axis << " scale " << dims_to_string(scale_dims));
  Tensor x = random_tensor(dt, xd, 17), s = random_tensor(dt, scale_dims, 18), b = random_tensor(dt, scale_dims, 19);
  Attributes a;
  a.set("axis", axis);
  a.set("epsilon", 1e-4f);
  std::vector<Tensor> ins{x, s};
  if (with_bias) ins.push_back(b);
  auto out = run_op({.op_type = "LayerNormalization", .inputs = ins, .attrs = a, .num_outputs = 3});
  ASSERT_TRUE(out.ok()) << out.status().message();
  const int64_t r = static_cast<int64_t>(xd.size()), ax = axis < 0 ? axis + r : axis;
  int64_t rows = 1, cols = 1;
  for (int64_t i = 0; i < r; ++i) (i < ax ? rows : cols) *= xd[static_cast<size_t>(i)];
  auto xv = x.to_double_vector(), sv = s.to_double_vector(), bv = b.to_double_vector();
  const int64_t sn = numel_of(scale_dims);  // the scale covers the trailing sn values of each row
  std::vector<double> y, mean, inv;
  for (int64_t row = 0; row < rows; ++row) {
    double m = 0, v = 0;
    for (int64_t i = 0; i < cols; ++i) m += xv[static_cast<size_t>(row * cols + i)];
    m /= static_cast<double>(cols);
    for (int64_t i = 0; i < cols; ++i) v += std::pow(xv[static_cast<size_t>(row * cols + i)] - m, 2);
    v /= static_cast<double>(cols);
    mean.push_back(m);
    inv.push_back(1 / std::sqrt(v + 1e-4));
    for (int64_t i = 0; i < cols; ++i) {
      size_t k = static_cast<size_t>(i % sn);
      y.push_back((xv[static_cast<size_t>(row * cols + i)] - m) / std::sqrt(v + 1e-4) * sv[k] + (with_bias ? bv[k] : 0));
    }
  }
  EXPECT_LT(rel_l2(out->at(0), to_tensor(DType::kFloat64, xd, y)), tol_for(dt));
  Dims sd(xd.begin(), xd.begin() + ax);
  sd.resize(xd.size(), 1);
  ASSERT_EQ(out->at(1).dims(), sd);
  ASSERT_EQ(out->at(1).dtype(), DType::kFloat32);  // stash_type default
  EXPECT_TRUE(tensors_close(out->at(1), to_tensor(DType::kFloat32, sd, mean), 1e-4, 1e-5));
  EXPECT_TRUE(tensors_close(out->at(2), to_tensor(DType::kFloat32, sd, inv), 1e-4, 1e-5));
}

TEST(LayerNormalization, AxesScaleShapesAndStatsOutputs) {
  check_layer_norm({2, 3, 8}, -1, {8}, true);
  check_layer_norm({2, 3, 4}, 1, {3, 4}, true);
  check_layer_norm({2, 3, 4}, 1, {4}, false);  // scale broadcast over the normalized dims
  check_layer_norm({4, 5}, 0, {4, 5}, true);
  check_layer_norm({2, 3, 4, 2}, -3, {3, 4, 2}, true);
  check_layer_norm({3, 16}, -1, {16}, true, DType::kFloat16);
  check_layer_norm({3, 16}, 1, {16}, true, DType::kFloat64);
}

TEST(LayerNormalization, Errors) {
  Attributes a;
  a.set("axis", int64_t{3});
  auto r = run_op({.op_type = "LayerNormalization", .inputs = {random_tensor(DType::kFloat32, {2, 3}), random_tensor(DType::kFloat32, {3})}, .attrs = a});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("axis 3"), std::string::npos) << r.status().message();
  auto s = run_op({.op_type = "LayerNormalization", .inputs = {random_tensor(DType::kFloat32, {2, 3}), random_tensor(DType::kFloat32, {4})}});
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("Scale [4]"), std::string::npos) << s.status().message();
}

TEST(LRN, MatchesFormula) {
  for (int64_t size : {1, 2, 3, 5}) {
    SCOPED_TRACE(size);
    Dims xd{2, 6, 3, 2};
    Tensor x = random_tensor(DType::kFloat32, xd, 20);
    Attributes a;
    a.set("size", size);
    a.set("alpha", 0.02f);
    a.set("beta", 0.6f);
    a.set("bias", 2.0f);
    auto out = run_op({.op_type = "LRN", .inputs = {x}, .attrs = a});
    ASSERT_TRUE(out.ok()) << out.status().message();
    auto xv = x.to_double_vector();
    std::vector<double> want;
    for_each_index(xd, [&](const Dims& i) {
      double sum = 0;
      for (int64_t c = std::max<int64_t>(0, i[1] - (size - 1) / 2); c <= std::min<int64_t>(5, i[1] + size / 2); ++c) {
        Dims j = i;
        j[1] = c;
        sum += std::pow(xv[static_cast<size_t>(offset_of(xd, j))], 2);
      }
      want.push_back(xv[static_cast<size_t>(offset_of(xd, i))] / std::pow(2.0 + 0.02 / static_cast<double>(size) * sum, 0.6));
    });
    EXPECT_LT(rel_l2(out->at(0), to_tensor(DType::kFloat64, xd, want)), 1e-6);
  }
  auto r = run_op({.op_type = "LRN", .inputs = {random_tensor(DType::kFloat32, {1, 2, 2})}});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("size"), std::string::npos);
}

void check_mvn(const Dims& xd, const Dims* axes) {
  Tensor x = random_tensor(DType::kFloat32, xd, 21, -3, 5);
  Attributes a;
  if (axes) a.set("axes", *axes);
  Dims ax = axes ? *axes : Dims{0, 2, 3};
  auto out = run_op({.op_type = "MeanVarianceNormalization", .inputs = {x}, .attrs = a});
  ASSERT_TRUE(out.ok()) << out.status().message();
  auto xv = x.to_double_vector();
  // Group elements by their kept coordinates.
  auto key = [&](const Dims& i) {
    Dims k = i;
    for (int64_t a2 : ax) k[static_cast<size_t>(a2 < 0 ? a2 + static_cast<int64_t>(xd.size()) : a2)] = 0;
    return offset_of(xd, k);
  };
  std::map<int64_t, std::pair<double, double>> acc;  // key -> sum, count
  for_each_index(xd, [&](const Dims& i) {
    auto& p = acc[key(i)];
    p.first += xv[static_cast<size_t>(offset_of(xd, i))];
    p.second += 1;
  });
  std::map<int64_t, double> var;
  for_each_index(xd, [&](const Dims& i) {
    auto& p = acc[key(i)];
    var[key(i)] += std::pow(xv[static_cast<size_t>(offset_of(xd, i))] - p.first / p.second, 2) / p.second;
  });
  std::vector<double> want;
  for_each_index(xd, [&](const Dims& i) {
    auto& p = acc[key(i)];
    want.push_back((xv[static_cast<size_t>(offset_of(xd, i))] - p.first / p.second) / (std::sqrt(var[key(i)]) + 1e-9));
  });
  EXPECT_LT(rel_l2(out->at(0), to_tensor(DType::kFloat64, xd, want)), 1e-6);
}

TEST(MeanVarianceNormalization, DefaultAndCustomAxes) {
  check_mvn({2, 3, 4, 5}, nullptr);
  Dims last{-1};
  check_mvn({3, 7}, &last);
  Dims some{1, 3};
  check_mvn({2, 3, 2, 4}, &some);
}

}  // namespace
}  // namespace kiln::test
