#include <gtest/gtest.h>

#include <limits>

#include "nn_reference.hpp"
#include "op_test_util.hpp"

namespace kiln::test {
namespace {

struct PoolCase {
  std::string op;
  Dims x, kernel;
  Dims strides, dilations, pads;  // empty: absent
  bool ceil_mode = false;
  bool count_include_pad = false;
  int64_t p = 2;
  DType dtype = DType::kFloat32;
};

// Direct pooling: each output visits kernel taps at o * s + k * d - pad_begin.
Tensor ref_pool(const PoolCase& c, const Tensor& x, const Dims& yd, Tensor* argmax) {
  const size_t nd = c.kernel.size();
  Dims s = c.strides.empty() ? Dims(nd, 1) : c.strides, d = c.dilations.empty() ? Dims(nd, 1) : c.dilations;
  Dims pads = c.pads.empty() ? Dims(2 * nd, 0) : c.pads;
  auto xv = x.to_double_vector();
  std::vector<double> y;
  std::vector<int64_t> idx;
  for_each_index(yd, [&](const Dims& yi) {
    double mx = -std::numeric_limits<double>::infinity(), sum = 0, lp = 0;
    int64_t valid = 0, padded = 0, arg = -1;
    for_each_index(c.kernel, [&](const Dims& k) {
      Dims xi{yi[0], yi[1]};
      bool inside = true, in_padded = true;
      for (size_t i = 0; i < nd; ++i) {
        int64_t pos = yi[2 + i] * s[i] + k[i] * d[i] - pads[i];
        inside &= pos >= 0 && pos < c.x[2 + i];
        in_padded &= pos < c.x[2 + i] + pads[nd + i];
        xi.push_back(pos);
      }
      padded += in_padded;
      if (!inside) return;
      double v = xv[static_cast<size_t>(offset_of(c.x, xi))];
      ++valid;
      if (v > mx) {
        mx = v;
        arg = offset_of(c.x, xi);
      }
      sum += v;
      lp += std::pow(std::abs(v), static_cast<double>(c.p));
    });
    if (c.op == "MaxPool") y.push_back(mx);
    else if (c.op == "AveragePool") y.push_back(sum / static_cast<double>(c.count_include_pad ? padded : valid));
    else y.push_back(std::pow(lp, 1.0 / static_cast<double>(c.p)));
    idx.push_back(arg);
  });
  if (argmax) *argmax = Tensor::from_vector<int64_t>(yd, idx);
  return to_tensor(DType::kFloat64, yd, y);
}

// Output sizes by the ONNX formula (ceil mode drops a window starting in the end padding).
Dims pool_out_dims(const PoolCase& c) {
  const size_t nd = c.kernel.size();
  Dims yd{c.x[0], c.x[1]};
  for (size_t i = 0; i < nd; ++i) {
    int64_t s = c.strides.empty() ? 1 : c.strides[i], d = c.dilations.empty() ? 1 : c.dilations[i];
    int64_t pb = c.pads.empty() ? 0 : c.pads[i], pe = c.pads.empty() ? 0 : c.pads[nd + i];
    double span = static_cast<double>((c.kernel[i] - 1) * d + 1);
    double q = (static_cast<double>(c.x[2 + i] + pb + pe) - span) / static_cast<double>(s);
    int64_t out = static_cast<int64_t>(c.ceil_mode ? std::ceil(q) : std::floor(q)) + 1;
    if (c.ceil_mode && (out - 1) * s >= c.x[2 + i] + pb) --out;
    yd.push_back(out);
  }
  return yd;
}

Attributes pool_attrs(const PoolCase& c) {
  Attributes a;
  a.set("kernel_shape", c.kernel);
  if (!c.strides.empty()) a.set("strides", c.strides);
  if (!c.dilations.empty()) a.set("dilations", c.dilations);
  if (!c.pads.empty()) a.set("pads", c.pads);
  if (c.ceil_mode) a.set("ceil_mode", int64_t{1});
  if (c.count_include_pad) a.set("count_include_pad", int64_t{1});
  if (c.op == "LpPool") a.set("p", c.p);
  return a;
}

void check_pool(const PoolCase& c) {
  SCOPED_TRACE(::testing::Message() << c.op << " x " << dims_to_string(c.x) << " kernel " << dims_to_string(c.kernel)
                                    << " ceil " << c.ceil_mode << " include_pad " << c.count_include_pad << " "
                                    << dtype_name(c.dtype));
  Tensor x = random_tensor(c.dtype, c.x, 31, -5, 5);
  Dims yd = pool_out_dims(c);
  Tensor want_idx;
  Tensor want = ref_pool(c, x, yd, &want_idx);
  const bool with_indices = c.op == "MaxPool";
  auto out = run_op({.op_type = c.op, .inputs = {x}, .attrs = pool_attrs(c), .num_outputs = with_indices ? 2 : 1});
  ASSERT_TRUE(out.ok()) << out.status().message();
  ASSERT_EQ(out->at(0).dims(), yd);
  ASSERT_EQ(out->at(0).dtype(), c.dtype);
  EXPECT_TRUE(tensors_close(out->at(0).cast(DType::kFloat64), want, c.dtype == DType::kFloat16 ? 1e-3 : 1e-5, 1e-5));
  if (with_indices && is_floating(c.dtype)) {  // random floats: ties do not occur
    EXPECT_TRUE(tensors_close(out->at(1), want_idx, 0, 0));
  }
}

TEST(MaxPool, Variants) {
  check_pool({.op = "MaxPool", .x = {2, 3, 7, 8}, .kernel = {3, 3}});
  check_pool({.op = "MaxPool", .x = {1, 2, 9, 9}, .kernel = {3, 2}, .strides = {2, 2}, .pads = {1, 0, 1, 1}});
  check_pool({.op = "MaxPool", .x = {1, 2, 10, 9}, .kernel = {2, 3}, .strides = {2, 1}, .dilations = {2, 2}, .pads = {1, 1, 0, 2}});
  check_pool({.op = "MaxPool", .x = {1, 2, 8, 7}, .kernel = {3, 3}, .strides = {2, 2}, .pads = {1, 1, 1, 1}, .ceil_mode = true});
  check_pool({.op = "MaxPool", .x = {1, 1, 6, 6}, .kernel = {2, 2}, .strides = {3, 3}, .pads = {0, 0, 2, 2}, .ceil_mode = true});
  check_pool({.op = "MaxPool", .x = {2, 3, 11}, .kernel = {4}, .strides = {3}, .pads = {2, 1}});
  check_pool({.op = "MaxPool", .x = {1, 2, 5, 6, 7}, .kernel = {2, 3, 2}, .strides = {1, 2, 2}, .pads = {0, 1, 1, 1, 0, 0}});
  check_pool({.op = "MaxPool", .x = {1, 2, 6, 6}, .kernel = {3, 3}, .strides = {2, 2}, .dtype = DType::kFloat16});
  check_pool({.op = "MaxPool", .x = {1, 2, 6, 6}, .kernel = {3, 3}, .pads = {1, 1, 1, 1}, .dtype = DType::kFloat64});
  check_pool({.op = "MaxPool", .x = {1, 2, 6, 6}, .kernel = {2, 2}, .dtype = DType::kInt8});
  check_pool({.op = "MaxPool", .x = {1, 2, 6, 6}, .kernel = {2, 2}, .strides = {2, 2}, .dtype = DType::kUInt8});
}

// The ONNX example test_maxpool_with_argmax_2d_precomputed_strides: column-major indices.
TEST(MaxPool, StorageOrderColumnMajorIndices) {
  std::vector<float> xv(25);
  for (size_t i = 0; i < 25; ++i) xv[i] = static_cast<float>(i + 1);
  Attributes a;
  a.set("kernel_shape", Dims{2, 2});
  a.set("strides", Dims{2, 2});
  a.set("storage_order", int64_t{1});
  auto out = run_op({.op_type = "MaxPool", .inputs = {Tensor::from_vector<float>({1, 1, 5, 5}, xv)}, .attrs = a, .num_outputs = 2});
  ASSERT_TRUE(out.ok()) << out.status().message();
  EXPECT_TRUE(tensors_close(out->at(0), Tensor::from_vector<float>({1, 1, 2, 2}, {7, 9, 17, 19})));
  EXPECT_TRUE(tensors_close(out->at(1), Tensor::from_vector<int64_t>({1, 1, 2, 2}, {6, 16, 8, 18})));
}

// Flat indices count the whole tensor (n and c included).
TEST(MaxPool, IndicesSpanBatchAndChannels) {
  Tensor x = random_tensor(DType::kFloat32, {2, 3, 4, 4}, 41);
  Attributes a;
  a.set("kernel_shape", Dims{4, 4});
  auto out = run_op({.op_type = "MaxPool", .inputs = {x}, .attrs = a, .num_outputs = 2});
  ASSERT_TRUE(out.ok());
  const float* xd = x.data<float>();
  for (int64_t pl = 0; pl < 6; ++pl) {
    int64_t best = pl * 16;
    for (int64_t i = pl * 16; i < pl * 16 + 16; ++i)
      if (xd[i] > xd[best]) best = i;
    EXPECT_EQ(out->at(1).data<int64_t>()[pl], best);
  }
}

TEST(AveragePool, Variants) {
  for (bool include : {false, true}) {
    check_pool({.op = "AveragePool", .x = {2, 3, 7, 8}, .kernel = {3, 3}, .pads = {1, 1, 1, 1}, .count_include_pad = include});
    check_pool({.op = "AveragePool", .x = {1, 2, 9, 8}, .kernel = {3, 2}, .strides = {2, 3}, .pads = {1, 0, 2, 1}, .count_include_pad = include});
    check_pool({.op = "AveragePool", .x = {1, 2, 8, 7}, .kernel = {3, 3}, .strides = {2, 2}, .pads = {1, 1, 1, 1}, .ceil_mode = true, .count_include_pad = include});
    check_pool({.op = "AveragePool", .x = {1, 2, 10, 9}, .kernel = {2, 2}, .strides = {1, 2}, .dilations = {2, 3}, .pads = {1, 1, 1, 1}, .count_include_pad = include});
    check_pool({.op = "AveragePool", .x = {1, 2, 9}, .kernel = {4}, .strides = {2}, .pads = {2, 2}, .ceil_mode = true, .count_include_pad = include});
    check_pool({.op = "AveragePool", .x = {1, 1, 4, 5, 6}, .kernel = {2, 2, 3}, .pads = {1, 0, 1, 0, 1, 1}, .count_include_pad = include});
  }
  check_pool({.op = "AveragePool", .x = {1, 2, 6, 6}, .kernel = {3, 3}, .dtype = DType::kFloat16});
}

// The ONNX example test_averagepool_2d_ceil.
TEST(AveragePool, CeilModeSpecValues) {
  std::vector<float> xv(16);
  for (size_t i = 0; i < 16; ++i) xv[i] = static_cast<float>(i + 1);
  Attributes a;
  a.set("kernel_shape", Dims{3, 3});
  a.set("strides", Dims{2, 2});
  a.set("ceil_mode", int64_t{1});
  auto out = run_op({.op_type = "AveragePool", .inputs = {Tensor::from_vector<float>({1, 1, 4, 4}, xv)}, .attrs = a});
  ASSERT_TRUE(out.ok()) << out.status().message();
  EXPECT_TRUE(tensors_close(out->at(0), Tensor::from_vector<float>({1, 1, 2, 2}, {6, 7.5, 12, 13.5})));
}

// SAME_UPPER / SAME_LOWER place the odd padding pixel at the end / the beginning; padding is not
// counted in the average.
TEST(AveragePool, AutoPadSame) {
  Tensor x = random_tensor(DType::kFloat32, {1, 2, 5, 6}, 51);
  for (std::string mode : {"SAME_UPPER", "SAME_LOWER"}) {
    SCOPED_TRACE(mode);
    Attributes a;
    a.set("kernel_shape", Dims{2, 3});
    a.set("auto_pad", mode);
    auto out = run_op({.op_type = "AveragePool", .inputs = {x}, .attrs = a});
    ASSERT_TRUE(out.ok()) << out.status().message();
    // Total padding: 1 along H, 2 along W.
    Dims pads = mode == "SAME_UPPER" ? Dims{0, 1, 1, 1} : Dims{1, 1, 0, 1};
    PoolCase c{.op = "AveragePool", .x = {1, 2, 5, 6}, .kernel = {2, 3}, .pads = pads};
    EXPECT_TRUE(tensors_close(out->at(0).cast(DType::kFloat64), ref_pool(c, x, {1, 2, 5, 6}, nullptr), 1e-5, 1e-6));
  }
}

TEST(LpPool, Variants) {
  check_pool({.op = "LpPool", .x = {1, 3, 6, 7}, .kernel = {2, 3}, .p = 2});
  check_pool({.op = "LpPool", .x = {1, 2, 7, 7}, .kernel = {3, 3}, .strides = {2, 2}, .pads = {1, 1, 1, 1}, .p = 1});
  check_pool({.op = "LpPool", .x = {2, 2, 9}, .kernel = {3}, .dilations = {2}, .p = 3});
}

void check_global(const std::string& op, const Dims& xd, int64_t p = 2) {
  SCOPED_TRACE(op + " " + dims_to_string(xd));
  Tensor x = random_tensor(DType::kFloat32, xd, 61);
  Attributes a;
  if (op == "GlobalLpPool") a.set("p", p);
  auto out = run_op({.op_type = op, .inputs = {x}, .attrs = a});
  ASSERT_TRUE(out.ok()) << out.status().message();
  Dims yd{xd[0], xd[1]};
  yd.resize(xd.size(), 1);
  ASSERT_EQ(out->at(0).dims(), yd);
  auto xv = x.to_double_vector();
  const int64_t size = numel_of(xd) / (xd[0] * xd[1]);
  std::vector<double> want;
  for (int64_t pl = 0; pl < xd[0] * xd[1]; ++pl) {
    double mx = -1e300, sum = 0, lp = 0;
    for (int64_t i = 0; i < size; ++i) {
      double v = xv[static_cast<size_t>(pl * size + i)];
      mx = std::max(mx, v);
      sum += v;
      lp += std::pow(std::abs(v), static_cast<double>(p));
    }
    want.push_back(op == "GlobalMaxPool" ? mx : op == "GlobalAveragePool" ? sum / static_cast<double>(size)
                                                                         : std::pow(lp, 1.0 / static_cast<double>(p)));
  }
  EXPECT_TRUE(tensors_close(out->at(0).cast(DType::kFloat64), to_tensor(DType::kFloat64, yd, want), 1e-5, 1e-6));
}

TEST(GlobalPool, AllKinds) {
  for (std::string op : {"GlobalMaxPool", "GlobalAveragePool", "GlobalLpPool"}) {
    check_global(op, {2, 3, 5, 4});
    check_global(op, {1, 4, 7});
    check_global(op, {1, 2, 3, 2, 4});
  }
  check_global("GlobalLpPool", {1, 3, 4, 4}, 3);
}

TEST(Pool, ErrorsNameTheNode) {
  Tensor x = random_tensor(DType::kFloat32, {1, 1, 4, 4});
  auto no_kernel = run_op({.op_type = "MaxPool", .inputs = {x}});
  ASSERT_FALSE(no_kernel.ok());
  EXPECT_NE(no_kernel.status().message().find("MaxPool_node"), std::string::npos);
  EXPECT_NE(no_kernel.status().message().find("kernel_shape"), std::string::npos);
  Attributes a;
  a.set("kernel_shape", Dims{2, 2});
  a.set("storage_order", int64_t{2});
  auto bad_order = run_op({.op_type = "MaxPool", .inputs = {x}, .attrs = a});
  ASSERT_FALSE(bad_order.ok());
  EXPECT_NE(bad_order.status().message().find("storage_order"), std::string::npos);
  Attributes k3;
  k3.set("kernel_shape", Dims{2, 2, 2});
  auto bad_rank = run_op({.op_type = "AveragePool", .inputs = {x}, .attrs = k3});
  ASSERT_FALSE(bad_rank.ok());
  EXPECT_NE(bad_rank.status().message().find("kernel_shape"), std::string::npos);
  auto rank2 = run_op({.op_type = "GlobalAveragePool", .inputs = {random_tensor(DType::kFloat32, {3, 4})}});
  ASSERT_FALSE(rank2.ok());
  EXPECT_NE(rank2.status().message().find("rank 3"), std::string::npos);
}

// ---- MaxUnpool ----

TEST(MaxUnpool, SpecExamples) {
  Attributes a;
  a.set("kernel_shape", Dims{2, 2});
  a.set("strides", Dims{2, 2});
  Tensor ind = Tensor::from_vector<int64_t>({1, 1, 2, 2}, {5, 7, 13, 15});
  auto out = run_op({.op_type = "MaxUnpool", .inputs = {Tensor::from_vector<float>({1, 1, 2, 2}, {1, 2, 3, 4}), ind}, .attrs = a});
  ASSERT_TRUE(out.ok()) << out.status().message();
  EXPECT_TRUE(tensors_close(out->at(0), Tensor::from_vector<float>({1, 1, 4, 4}, {0, 0, 0, 0, 0, 1, 0, 2, 0, 0, 0, 0, 0, 3, 0, 4})));

  Tensor shape = Tensor::from_vector<int64_t>({4}, {1, 1, 5, 5});
  auto out5 = run_op({.op_type = "MaxUnpool", .inputs = {Tensor::from_vector<float>({1, 1, 2, 2}, {5, 6, 7, 8}), ind, shape}, .attrs = a});
  ASSERT_TRUE(out5.ok()) << out5.status().message();
  std::vector<float> want(25, 0.f);
  want[6] = 5, want[8] = 6, want[16] = 7, want[18] = 8;
  EXPECT_TRUE(tensors_close(out5->at(0), Tensor::from_vector<float>({1, 1, 5, 5}, want)));
}

// MaxPool then MaxUnpool keeps each window's maximum in place and zeros the rest.
TEST(MaxUnpool, InvertsMaxPool) {
  Tensor x = random_tensor(DType::kFloat32, {2, 3, 6, 4}, 71);
  Attributes a;
  a.set("kernel_shape", Dims{2, 2});
  a.set("strides", Dims{2, 2});
  auto pooled = run_op({.op_type = "MaxPool", .inputs = {x}, .attrs = a, .num_outputs = 2});
  ASSERT_TRUE(pooled.ok());
  auto un = run_op({.op_type = "MaxUnpool", .inputs = {pooled->at(0), pooled->at(1)}, .attrs = a});
  ASSERT_TRUE(un.ok()) << un.status().message();
  ASSERT_EQ(un->at(0).dims(), x.dims());
  const float* xd = x.data<float>();
  const float* ud = un->at(0).data<float>();
  int64_t kept = 0;
  for (int64_t i = 0; i < x.numel(); ++i) {
    if (ud[i] != 0.f) {
      EXPECT_EQ(ud[i], xd[i]);
      ++kept;
    }
  }
  EXPECT_EQ(kept, pooled->at(0).numel());
}

TEST(MaxUnpool, OutOfRangeIndexIsAnError) {
  Attributes a;
  a.set("kernel_shape", Dims{2, 2});
  a.set("strides", Dims{2, 2});
  auto out = run_op({.op_type = "MaxUnpool",
                     .inputs = {Tensor::from_vector<float>({1, 1, 1, 1}, {1}), Tensor::from_vector<int64_t>({1, 1, 1, 1}, {4})},
                     .attrs = a});
  ASSERT_FALSE(out.ok());
  EXPECT_NE(out.status().message().find("MaxUnpool_node"), std::string::npos);
  EXPECT_NE(out.status().message().find("index 4 "), std::string::npos) << out.status().message();
}

// ---- MaxRoiPool ----

TEST(MaxRoiPool, BinsOfScaledRois) {
  // X: one 1-channel 6x6 image with value 10 * row + col.
  std::vector<float> xv;
  for (int r = 0; r < 6; ++r)
    for (int c = 0; c < 6; ++c) xv.push_back(static_cast<float>(10 * r + c));
  Tensor x = Tensor::from_vector<float>({1, 1, 6, 6}, xv);
  // RoI (x1, y1, x2, y2) = (2, 2, 10, 6) at scale 0.5 -> columns 1..5, rows 1..3.
  Tensor rois = Tensor::from_vector<float>({2, 5}, {0, 2, 2, 10, 6, 0, 2, 2, 2, 2});
  Attributes a;
  a.set("pooled_shape", Dims{2, 2});
  a.set("spatial_scale", 0.5f);
  auto out = run_op({.op_type = "MaxRoiPool", .inputs = {x, rois}, .attrs = a});
  ASSERT_TRUE(out.ok()) << out.status().message();
  // RoI 0: 3 rows (bin height 1.5: rows 1-2, 2-3), 5 columns (bin width 2.5: cols 1-3, 3-5).
  // RoI 1: the single pixel (1, 1); bins of 0.5 ([0, 1) and [0.5, 1) rounded out) all see it.
  Tensor want = Tensor::from_vector<float>({2, 1, 2, 2}, {23, 25, 33, 35, 11, 11, 11, 11});
  EXPECT_TRUE(tensors_close(out->at(0), want));
}

}  // namespace
}  // namespace kiln::test
