// GridSample against a direct 2-D sampler written from the spec (every mode, padding mode and
// align_corners), N-d linear interpolation of linear maps, the spec's reflection example, dtypes
// and errors; AffineGrid against its formula and as GridSample's identity.
#include <cmath>

#include "op_test_util.hpp"

namespace kiln::test {
namespace {

Attributes gs_attrs(const std::string& mode, const std::string& padding, int64_t align) {
  Attributes a;
  a.set("mode", mode);
  a.set("padding_mode", padding);
  a.set("align_corners", align);
  return a;
}

// Mirrors x at lo and hi until it lies in between.
double mirror(double x, double lo, double hi) {
  if (hi <= lo) return lo;
  while (x < lo || x > hi) x = x < lo ? 2 * lo - x : 2 * hi - x;
  return x;
}

// Keys' cubic convolution kernel (a = -0.75) at distance d.
double keys(double d) {
  const double a = -0.75;
  d = std::abs(d);
  if (d <= 1) return (a + 2) * d * d * d - (a + 3) * d * d + 1;
  if (d < 2) return a * d * d * d - 5 * a * d * d + 8 * a * d - 4 * a;
  return 0;
}

// One sample of an h x w image at normalized (gx, gy).
double ref_sample(const std::vector<double>& img, int64_t h, int64_t w, double gx, double gy, const std::string& mode,
                  const std::string& padding, bool align) {
  auto denorm = [&](double g, int64_t size) {
    const double s = static_cast<double>(size);
    return align ? (g + 1) / 2 * (s - 1) : ((g + 1) * s - 1) / 2;
  };
  auto lo = [&](int64_t) { return align ? 0.0 : -0.5; };
  auto hi = [&](int64_t size) { return align ? static_cast<double>(size) - 1 : static_cast<double>(size) - 0.5; };
  double x = denorm(gx, w), y = denorm(gy, h);
  if (mode == "nearest") {
    x = std::nearbyint(x);
    y = std::nearbyint(y);
  }
  auto fix = [&](double v, int64_t size) {
    if (v >= lo(size) && v <= hi(size)) return v;
    if (padding == "border") return std::clamp(v, 0.0, static_cast<double>(size) - 1);
    if (padding == "reflection") return mirror(v, lo(size), hi(size));
    return v;
  };
  x = fix(x, w);
  y = fix(y, h);
  auto index = [&](int64_t i, int64_t size) -> int64_t {
    if (i >= 0 && i < size) return i;
    if (padding == "zeros") return -1;
    if (padding == "border") return std::clamp<int64_t>(i, 0, size - 1);
    return static_cast<int64_t>(mirror(static_cast<double>(i), lo(size), hi(size)));
  };
  auto pixel = [&](int64_t r, int64_t c) {
    const int64_t rr = index(r, h), cc = index(c, w);
    return rr < 0 || cc < 0 ? 0.0 : img[static_cast<size_t>(rr * w + cc)];
  };
  if (mode == "nearest") return pixel(static_cast<int64_t>(y), static_cast<int64_t>(x));
  const int64_t x0 = static_cast<int64_t>(std::floor(x)), y0 = static_cast<int64_t>(std::floor(y));
  double acc = 0;
  if (mode == "linear") {
    for (int64_t r = y0; r <= y0 + 1; ++r)
      for (int64_t c = x0; c <= x0 + 1; ++c)
        acc += (1 - std::abs(y - static_cast<double>(r))) * (1 - std::abs(x - static_cast<double>(c))) * pixel(r, c);
    return acc;
  }
  for (int64_t r = y0 - 1; r <= y0 + 2; ++r)
    for (int64_t c = x0 - 1; c <= x0 + 2; ++c)
      acc += keys(y - static_cast<double>(r)) * keys(x - static_cast<double>(c)) * pixel(r, c);
  return acc;
}

TEST(GridSample, MatchesTheDirectSamplerForEveryMode) {
  const int64_t n = 2, c = 3, h = 5, w = 6, oh = 4, ow = 7;
  Tensor x = random_tensor(DType::kFloat64, {n, c, h, w}, 1);
  // Points inside, near and far outside [-1, 1], plus exact pixel centres and halfway points.
  Tensor grid = random_tensor(DType::kFloat64, {n, oh, ow, 2}, 2, -2.7, 2.7);
  grid.data<double>()[0] = 0.0;
  grid.data<double>()[1] = 0.2;  // y = 0.2 -> pixel 2.5 (no align) / 2.4 (align) in a 5-row image
  grid.data<double>()[2] = -1.0;
  grid.data<double>()[3] = 1.0;
  for (const std::string mode : {"linear", "nearest", "cubic"})
    for (const std::string padding : {"zeros", "border", "reflection"})
      for (int64_t align : {0, 1}) {
        auto out = run_op({.op_type = "GridSample", .inputs = {x, grid}, .attrs = gs_attrs(mode, padding, align)});
        ASSERT_TRUE(out.ok()) << out.status().message();
        ASSERT_EQ(out->at(0).dims(), (Dims{n, c, oh, ow}));
        for (int64_t b = 0; b < n; ++b)
          for (int64_t ch = 0; ch < c; ++ch) {
            std::vector<double> img(x.data<double>() + (b * c + ch) * h * w, x.data<double>() + (b * c + ch + 1) * h * w);
            for (int64_t p = 0; p < oh * ow; ++p) {
              const double* g = grid.data<double>() + (b * oh * ow + p) * 2;
              EXPECT_NEAR(out->at(0).data<double>()[(b * c + ch) * oh * ow + p],
                          ref_sample(img, h, w, g[0], g[1], mode, padding, align == 1), 1e-12)
                  << mode << " " << padding << " align " << align << " at (" << g[0] << ", " << g[1] << ")";
            }
          }
      }
}

TEST(GridSample, ReflectionFollowsTheSpecExample) {
  // "x = -3.5 reflects by border -1 and becomes 1.5, then by border 1 and becomes 0.5".
  Tensor x = random_tensor(DType::kFloat32, {1, 1, 4, 6}, 3);
  Tensor far = Tensor::from_vector<float>({1, 1, 2, 2}, {-3.5f, 0.3f, 2.6f, -5.2f});
  Tensor near = Tensor::from_vector<float>({1, 1, 2, 2}, {0.5f, 0.3f, -0.6f, -0.8f});
  for (const std::string mode : {"linear", "cubic", "nearest"})
    for (int64_t align : {0, 1}) {
      auto a = run_op({.op_type = "GridSample", .inputs = {x, far}, .attrs = gs_attrs(mode, "reflection", align)});
      auto b = run_op({.op_type = "GridSample", .inputs = {x, near}, .attrs = gs_attrs(mode, "reflection", align)});
      ASSERT_TRUE(a.ok() && b.ok());
      EXPECT_TRUE(tensors_close(a->at(0), b->at(0), 1e-5, 1e-6)) << mode << " align " << align;
    }
}

// On a map linear in the pixel coordinates, N-linear interpolation is exact inside the input.
TEST(GridSample, NdLinearInterpolationOfALinearMapIsExact) {
  for (int nd : {1, 2, 3}) {
    const Dims in = Dims{5, 4, 6}, out = Dims{3, 2, 4};
    Dims xdims = {2, 2}, gdims = {2};
    for (int i = 0; i < nd; ++i) {
      xdims.push_back(in[static_cast<size_t>(i)]);
      gdims.push_back(out[static_cast<size_t>(i)]);
    }
    gdims.push_back(nd);
    const double slope[3] = {0.7, -1.3, 2.1};
    Tensor x(DType::kFloat64, xdims);
    int64_t plane = 1;
    for (int i = 0; i < nd; ++i) plane *= in[static_cast<size_t>(i)];
    for (int64_t i = 0; i < x.numel(); ++i) {
      double v = 10.0 * static_cast<double>(i / plane);  // a different offset per (batch, channel)
      for (int64_t r = i % plane, d = nd - 1; d >= 0; --d) {
        v += slope[d] * static_cast<double>(r % in[static_cast<size_t>(d)]);
        r /= in[static_cast<size_t>(d)];
      }
      x.data<double>()[i] = v;
    }
    Tensor grid = random_tensor(DType::kFloat32, gdims, static_cast<uint32_t>(nd), -1.0, 1.0);
    auto res = run_op({.op_type = "GridSample", .inputs = {x, grid}, .attrs = gs_attrs("linear", "zeros", 1)});
    ASSERT_TRUE(res.ok()) << res.status().message();
    const Tensor& y = res->at(0);
    int64_t opoints = 1;
    for (int i = 0; i < nd; ++i) opoints *= out[static_cast<size_t>(i)];
    for (int64_t bc = 0; bc < 4; ++bc)
      for (int64_t p = 0; p < opoints; ++p) {
        const float* g = grid.data<float>() + ((bc / 2) * opoints + p) * nd;
        double want = 10.0 * static_cast<double>(bc);
        for (int d = 0; d < nd; ++d)  // grid lists the innermost dim first
          want += slope[d] * (static_cast<double>(g[nd - 1 - d]) + 1) / 2 * static_cast<double>(in[static_cast<size_t>(d)] - 1);
        EXPECT_NEAR(y.data<double>()[bc * opoints + p], want, 1e-5) << nd << "-D";
      }
  }
}

TEST(GridSample, IntegerInputTruncatesAndHalfFollowsFloat) {
  Tensor xf = random_tensor(DType::kFloat32, {1, 2, 5, 5}, 7, -20, 20);
  Tensor xi = xf.cast(DType::kInt32);
  Tensor grid = random_tensor(DType::kFloat32, {1, 3, 3, 2}, 8, -1.2, 1.2);
  auto gi = run_op({.op_type = "GridSample", .inputs = {xi, grid}, .attrs = gs_attrs("linear", "border", 0)});
  auto gf = run_op({.op_type = "GridSample", .inputs = {xi.cast(DType::kFloat64), grid}, .attrs = gs_attrs("linear", "border", 0)});
  ASSERT_TRUE(gi.ok() && gf.ok()) << gi.status().message();
  EXPECT_EQ(gi->at(0).dtype(), DType::kInt32);
  std::vector<int32_t> want;
  for (double v : gf->at(0).to_double_vector()) want.push_back(static_cast<int32_t>(std::trunc(v)));
  EXPECT_TRUE(tensors_close(gi->at(0), Tensor::from_vector<int32_t>({1, 2, 3, 3}, want)));
  auto h = run_op({.op_type = "GridSample", .inputs = {xf.cast(DType::kFloat16), grid.cast(DType::kFloat16)}, .attrs = gs_attrs("cubic", "zeros", 0)});
  auto f = run_op({.op_type = "GridSample", .inputs = {xf, grid}, .attrs = gs_attrs("cubic", "zeros", 0)});
  ASSERT_TRUE(h.ok() && f.ok()) << h.status().message();
  EXPECT_LT(rel_l2(h->at(0).cast(DType::kFloat32), f->at(0)), 5e-3);
}

TEST(GridSample, ErrorsNameTheNode) {
  Tensor x = random_tensor(DType::kFloat32, {1, 1, 4, 4}, 1);
  Tensor grid = random_tensor(DType::kFloat32, {1, 2, 2, 2}, 2);
  struct Case {
    std::vector<Tensor> inputs;
    Attributes attrs;
    const char* text;
  } cases[] = {
      {{x, grid}, gs_attrs("bilinear", "zeros", 0), "'bilinear'"},
      {{x, grid}, gs_attrs("linear", "wrap", 0), "'wrap'"},
      {{x, grid}, gs_attrs("linear", "zeros", 2), "align_corners must be 0 or 1"},
      {{x, random_tensor(DType::kFloat32, {1, 2, 2, 3}, 2)}, {}, "grid must be [N, o1, ..., or, r]"},
      {{x, random_tensor(DType::kFloat32, {2, 2, 2, 2}, 2)}, {}, "differ in batch size"},
      {{x, Tensor::from_vector<int64_t>({1, 1, 1, 2}, {0, 0})}, {}, "grid must be a float tensor"},
      {{random_tensor(DType::kFloat32, {1, 1, 0, 4}, 1), grid}, {}, "empty spatial dim"},
  };
  for (const Case& c : cases) {
    auto out = run_op({.op_type = "GridSample", .inputs = c.inputs, .attrs = c.attrs});
    ASSERT_FALSE(out.ok()) << c.text;
    EXPECT_NE(out.status().message().find("GridSample_node"), std::string::npos) << out.status().message();
    EXPECT_NE(out.status().message().find(c.text), std::string::npos) << out.status().message();
  }
}

double base_coord(int64_t i, int64_t size, bool align) {
  if (align) return size == 1 ? -1.0 : -1.0 + 2.0 * static_cast<double>(i) / static_cast<double>(size - 1);
  return (2.0 * static_cast<double>(i) + 1.0) / static_cast<double>(size) - 1.0;
}

TEST(AffineGrid, MatchesThetaTimesTheBaseGrid) {
  for (int64_t align : {0, 1}) {
    Attributes a;
    a.set("align_corners", align);
    Tensor theta2 = random_tensor(DType::kFloat64, {2, 2, 3}, 1);
    auto g2 = run_op({.op_type = "AffineGrid", .inputs = {theta2, Tensor::from_vector<int64_t>({4}, {2, 3, 4, 5})}, .attrs = a});
    ASSERT_TRUE(g2.ok()) << g2.status().message();
    ASSERT_EQ(g2->at(0).dims(), (Dims{2, 4, 5, 2}));
    for (int64_t n = 0; n < 2; ++n)
      for (int64_t h = 0; h < 4; ++h)
        for (int64_t w = 0; w < 5; ++w) {
          const double* t = theta2.data<double>() + n * 6;
          const double px = base_coord(w, 5, align == 1), py = base_coord(h, 4, align == 1);
          for (int64_t k = 0; k < 2; ++k)
            EXPECT_NEAR(g2->at(0).data<double>()[((n * 4 + h) * 5 + w) * 2 + k], t[k * 3] * px + t[k * 3 + 1] * py + t[k * 3 + 2], 1e-12);
        }
    Tensor theta3 = random_tensor(DType::kFloat32, {1, 3, 4}, 2);
    auto g3 = run_op({.op_type = "AffineGrid", .inputs = {theta3, Tensor::from_vector<int64_t>({5}, {1, 1, 3, 1, 4})}, .attrs = a});
    ASSERT_TRUE(g3.ok()) << g3.status().message();
    ASSERT_EQ(g3->at(0).dims(), (Dims{1, 3, 1, 4, 3}));
    for (int64_t d = 0; d < 3; ++d)
      for (int64_t w = 0; w < 4; ++w) {
        const double p[4] = {base_coord(w, 4, align == 1), base_coord(0, 1, align == 1), base_coord(d, 3, align == 1), 1.0};
        for (int64_t k = 0; k < 3; ++k) {
          double want = 0;
          for (int j = 0; j < 4; ++j) want += static_cast<double>(theta3.data<float>()[k * 4 + j]) * p[j];
          EXPECT_NEAR(g3->at(0).data<float>()[(d * 4 + w) * 3 + k], want, 1e-5);
        }
      }
  }
}

TEST(AffineGrid, IdentityThetaMakesGridSampleACopy) {
  Tensor x = random_tensor(DType::kFloat32, {2, 3, 5, 7}, 4);
  Tensor theta = Tensor::from_vector<float>({2, 2, 3}, {1, 0, 0, 0, 1, 0, 1, 0, 0, 0, 1, 0});
  for (int64_t align : {0, 1}) {
    Attributes a;
    a.set("align_corners", align);
    auto grid = run_op({.op_type = "AffineGrid", .inputs = {theta, Tensor::from_vector<int64_t>({4}, {2, 3, 5, 7})}, .attrs = a});
    ASSERT_TRUE(grid.ok()) << grid.status().message();
    auto y = run_op({.op_type = "GridSample", .inputs = {x, grid->at(0)}, .attrs = gs_attrs("linear", "zeros", align)});
    ASSERT_TRUE(y.ok()) << y.status().message();
    EXPECT_TRUE(tensors_close(y->at(0), x, 1e-5, 1e-5)) << "align " << align;
  }
}

TEST(AffineGrid, InfersShapesAndReportsErrors) {
  Graph g;
  Value* theta = g.add_value("theta", {DType::kFloat32, Shape({Dim::symbolic("n"), Dim(2), Dim(3)})});
  Value* size = g.add_value("size", {DType::kInt64, Shape({Dim(4)})});
  Value* grid = g.add_value("grid");
  g.add_node("AffineGrid", {theta, size}, {grid}, "ag", "", 20);
  g.inputs = {theta, size};
  g.outputs = {grid};
  ASSERT_TRUE(infer_shapes(g).ok());
  EXPECT_EQ(grid->type.to_string(), "float32[n,?,?,2]");

  struct Case {
    std::vector<Tensor> inputs;
    const char* text;
  } cases[] = {
      {{random_tensor(DType::kFloat32, {1, 2, 4}, 1), Tensor::from_vector<int64_t>({4}, {1, 1, 2, 2})}, "theta must be"},
      {{random_tensor(DType::kFloat32, {1, 2, 3}, 1), Tensor::from_vector<int64_t>({5}, {1, 1, 2, 2, 2})}, "2-D grids but size has 5"},
      {{random_tensor(DType::kFloat32, {2, 2, 3}, 1), Tensor::from_vector<int64_t>({4}, {3, 1, 2, 2})}, "has batch 3 but theta has 2"},
      {{random_tensor(DType::kFloat32, {1, 2, 3}, 1), Tensor::from_vector<int64_t>({4}, {1, 1, -2, 2})}, "must not be negative"},
  };
  for (const Case& c : cases) {
    auto out = run_op({.op_type = "AffineGrid", .inputs = c.inputs});
    ASSERT_FALSE(out.ok()) << c.text;
    EXPECT_NE(out.status().message().find("AffineGrid_node"), std::string::npos) << out.status().message();
    EXPECT_NE(out.status().message().find(c.text), std::string::npos) << out.status().message();
  }
}

}  // namespace
}  // namespace kiln::test
