// Resize against a naive reference that follows the spec's reference algorithm: per axis, the n
// nearest indices of the edge-padded input around x_original, weighted by the mode's coefficients,
// combined over all axes by a full product (no separable passes).
#include "tensorops_test_util.hpp"

namespace kiln::test {
namespace {

struct Cfg {
  std::string mode = "nearest", coord = "half_pixel", nearest = "round_prefer_floor", policy = "stretch";
  double a = -0.75;
  bool exclude = false, antialias = false;
  double extrapolation = 0;
};

double keys(double t, double a) {
  t = std::abs(t);
  if (t <= 1) return (a + 2) * t * t * t - (a + 3) * t * t + 1;
  if (t < 2) return a * t * t * t - 5 * a * t * t + 8 * a * t - 4 * a;
  return 0;
}

// Coefficients for ratio r in (0, 1] (the left neighbour is at offset 0).
std::vector<double> coeffs(const Cfg& c, double r, double scale) {
  if (c.mode == "nearest") {
    if (r == 1) return {0, 1};
    bool right = c.nearest == "round_prefer_floor" ? r > 0.5 : c.nearest == "round_prefer_ceil" ? r >= 0.5
                                                                                                 : c.nearest == "ceil";
    return {right ? 0.0 : 1.0, right ? 1.0 : 0.0};
  }
  if (!c.antialias) {
    if (c.mode == "linear") return {1 - r, r};
    return {keys(r + 1, c.a), keys(r, c.a), keys(1 - r, c.a), keys(2 - r, c.a)};
  }
  double s = std::min(scale, 1.0), support = c.mode == "linear" ? 1 : 2;
  int64_t start = static_cast<int64_t>(std::floor(-support / s)) + 1;
  std::vector<double> w;
  double sum = 0;
  for (int64_t j = start; j < 2 - start; ++j) {
    double t = (static_cast<double>(j) - r) * s;
    w.push_back(c.mode == "linear" ? std::max(0.0, 1 - std::abs(t)) : keys(t, c.a));
    sum += w.back();
  }
  for (double& v : w) v /= sum;
  return w;
}

// Per-axis list of (index, weight); empty = extrapolate.
std::vector<std::pair<int64_t, double>> axis_weights(const Cfg& c, int64_t x, int64_t in, int64_t out, double scale,
                                                     double rs, double re) {
  double ow = scale * static_cast<double>(in), xo = 0, xd = static_cast<double>(x), n_in = static_cast<double>(in);
  if (c.coord == "half_pixel") xo = (xd + 0.5) / scale - 0.5;
  if (c.coord == "half_pixel_symmetric")
    xo = n_in / 2 * (1 - static_cast<double>(out) / ow) + (xd + 0.5) / scale - 0.5;
  if (c.coord == "pytorch_half_pixel") xo = out > 1 ? (xd + 0.5) / scale - 0.5 : 0;
  if (c.coord == "align_corners") xo = ow == 1 ? 0 : xd * (n_in - 1) / (ow - 1);
  if (c.coord == "asymmetric") xo = xd / scale;
  if (c.coord == "tf_crop_and_resize") {
    xo = (ow == 1 ? (re - rs) * (n_in - 1) / 2 : xd * (re - rs) * (n_in - 1) / (ow - 1)) + rs * (n_in - 1);
    if (xo < 0 || xo > n_in - 1) return {};
  }
  double fl = std::floor(xo), r = xo == fl ? 1 : xo - fl;
  std::vector<double> w = coeffs(c, r, scale);
  const int64_t n = static_cast<int64_t>(w.size()), pad = (n + 1) / 2;
  // The n nearest indices of the padded array to xo, ties to the smaller index.
  std::vector<int64_t> cand;
  for (int64_t i = -pad; i < in + pad; ++i) cand.push_back(i);
  std::stable_sort(cand.begin(), cand.end(), [&](int64_t p, int64_t q) {
    return std::abs(xo - static_cast<double>(p)) < std::abs(xo - static_cast<double>(q));
  });
  cand.resize(static_cast<size_t>(n));
  std::sort(cand.begin(), cand.end());
  if (c.exclude && c.mode != "nearest") {
    double sum = 0;
    for (size_t i = 0; i < w.size(); ++i) {
      if (cand[i] < 0 || cand[i] >= in) w[i] = 0;
      sum += w[i];
    }
    for (double& v : w) v /= sum;
  }
  std::vector<std::pair<int64_t, double>> out_w;
  for (size_t i = 0; i < w.size(); ++i) out_w.push_back({std::clamp<int64_t>(cand[i], 0, in - 1), w[i]});
  return out_w;
}

Tensor naive_resize(const Tensor& x, const Dims& out_dims, const std::vector<double>& scales, const Cfg& c,
                    const std::vector<double>& roi = {}) {
  const size_t r = x.dims().size();
  std::vector<std::vector<std::vector<std::pair<int64_t, double>>>> w(r);
  for (size_t k = 0; k < r; ++k)
    for (int64_t o = 0; o < out_dims[k]; ++o)
      w[k].push_back(axis_weights(c, o, x.dims()[k], out_dims[k], scales[k], roi.empty() ? 0 : roi[k],
                                  roi.empty() ? 1 : roi[r + k]));
  auto xv = x.to_double_vector();
  std::vector<double> out;
  for (int64_t i = 0; i < dims_numel(out_dims); ++i) {
    auto o = unravel(i, out_dims);
    bool extrapolate = false;
    for (size_t k = 0; k < r; ++k) extrapolate |= w[k][static_cast<size_t>(o[k])].empty();
    if (extrapolate) {
      out.push_back(c.extrapolation);
      continue;
    }
    double acc = 0;
    std::vector<size_t> t(r, 0);
    while (true) {  // every combination of one tap per axis
      double wt = 1;
      std::vector<int64_t> src(r);
      for (size_t k = 0; k < r; ++k) {
        auto [idx, wk] = w[k][static_cast<size_t>(o[k])][t[k]];
        wt *= wk;
        src[k] = idx;
      }
      acc += wt * xv[static_cast<size_t>(ravel(src, x.dims()))];
      size_t k = r;
      while (k-- > 0 && ++t[k] == w[k][static_cast<size_t>(o[k])].size()) t[k] = 0;
      if (k == static_cast<size_t>(-1)) break;
    }
    out.push_back(acc);
  }
  return Tensor::from_vector<double>(out_dims, out).cast(x.dtype());
}

OpCall resize_call(const Tensor& x, const Cfg& c, const std::vector<float>& scales, const std::vector<int64_t>& sizes,
                   const std::vector<int64_t>& axes = {}, const std::vector<float>& roi = {}) {
  OpCall call{"Resize", {x, roi.empty() ? Tensor() : Tensor::from_vector<float>({static_cast<int64_t>(roi.size())}, roi),
                         scales.empty() ? Tensor() : Tensor::from_vector<float>({static_cast<int64_t>(scales.size())}, scales),
                         sizes.empty() ? Tensor() : i64v(sizes)}};
  call.attrs.set("mode", c.mode);
  call.attrs.set("coordinate_transformation_mode", c.coord);
  call.attrs.set("nearest_mode", c.nearest);
  call.attrs.set("keep_aspect_ratio_policy", c.policy);
  call.attrs.set("cubic_coeff_a", static_cast<float>(c.a));
  call.attrs.set("exclude_outside", int64_t{c.exclude});
  call.attrs.set("antialias", int64_t{c.antialias});
  call.attrs.set("extrapolation_value", static_cast<float>(c.extrapolation));
  if (!axes.empty()) call.attrs.set("axes", axes);
  return call;
}

TEST(Resize, EveryModeAndCoordinateTransformWithScales) {
  Tensor x = random_tensor(DType::kFloat32, {1, 2, 4, 5}, 1);
  for (std::string mode : {"nearest", "linear", "cubic"}) {
    for (std::string coord : {"half_pixel", "half_pixel_symmetric", "pytorch_half_pixel", "align_corners", "asymmetric"}) {
      for (std::vector<float> s : {std::vector<float>{1, 1, 2, 1.5f}, std::vector<float>{1, 1, 0.6f, 0.5f},
                                   std::vector<float>{1, 1, 1.7f, 0.8f}}) {
        Cfg c;
        c.mode = mode;
        c.coord = coord;
        Dims od = {1, 2, static_cast<int64_t>(std::floor(4 * double(s[2]))), static_cast<int64_t>(std::floor(5 * double(s[3])))};
        Tensor want = naive_resize(x, od, {1, 1, s[2], s[3]}, c);
        EXPECT_TRUE(tensors_close(run1(resize_call(x, c, s, {})), want, 1e-5, 1e-5))
            << mode << " " << coord << " " << s[2] << "x" << s[3];
      }
    }
  }
}

TEST(Resize, NearestModesWithSizes) {
  Tensor x = random_tensor(DType::kInt64, {1, 1, 3, 4}, 2, -100, 100);
  for (std::string nm : {"round_prefer_floor", "round_prefer_ceil", "floor", "ceil"}) {
    for (std::string coord : {"half_pixel", "asymmetric", "align_corners"}) {
      Cfg c;
      c.nearest = nm;
      c.coord = coord;
      Tensor want = naive_resize(x, {1, 1, 7, 9}, {1, 1, 7.0 / 3, 9.0 / 4}, c);
      EXPECT_TRUE(tensors_equal(run1(resize_call(x, c, {}, {1, 1, 7, 9})), want)) << nm << " " << coord;
    }
  }
}

TEST(Resize, CubicCoefficientExcludeOutsideAndAntialias) {
  Tensor x = random_tensor(DType::kFloat32, {2, 6, 7}, 3);
  for (bool exclude : {false, true}) {
    for (bool aa : {false, true}) {
      for (std::string mode : {"linear", "cubic"}) {
        Cfg c;
        c.mode = mode;
        c.a = -0.5;
        c.exclude = exclude;
        c.antialias = aa;
        for (std::vector<float> s : {std::vector<float>{1, 0.5f, 0.3f}, std::vector<float>{1, 1.5f, 2}}) {
          Dims od = {2, static_cast<int64_t>(6 * double(s[1])), static_cast<int64_t>(std::floor(7 * double(s[2])))};
          Tensor want = naive_resize(x, od, {1, s[1], s[2]}, c);
          EXPECT_TRUE(tensors_close(run1(resize_call(x, c, s, {})), want, 1e-5, 1e-5))
              << mode << " exclude " << exclude << " antialias " << aa << " " << s[1];
        }
      }
    }
  }
}

TEST(Resize, TfCropAndResizeExtrapolates) {
  Tensor x = random_tensor(DType::kFloat32, {1, 1, 4, 4}, 4);
  Cfg c;
  c.mode = "linear";
  c.coord = "tf_crop_and_resize";
  c.extrapolation = 10;
  std::vector<float> roi = {0, 0, 0.4f, -0.3f, 1, 1, 1.2f, 0.7f};
  std::vector<double> droi(roi.begin(), roi.end());
  Tensor want = naive_resize(x, {1, 1, 3, 3}, {1, 1, 0.75, 0.75}, c, droi);
  EXPECT_TRUE(tensors_close(run1(resize_call(x, c, {}, {1, 1, 3, 3}, {}, roi)), want, 1e-5, 1e-5));
}

TEST(Resize, AxesAndKeepAspectRatio) {
  Tensor x = random_tensor(DType::kFloat32, {1, 2, 4, 6}, 5);
  Cfg c;
  c.mode = "linear";
  // axes [3, 2] with sizes given in that order.
  Tensor want = naive_resize(x, {1, 2, 8, 3}, {1, 1, 2, 0.5}, c);
  EXPECT_TRUE(tensors_close(run1(resize_call(x, c, {}, {3, 8}, {3, -2})), want, 1e-5, 1e-5));
  // not_larger: scale = min(8/4, 9/6) = 1.5 -> 6x9; not_smaller: scale = 2 -> 8x12.
  c.policy = "not_larger";
  want = naive_resize(x, {1, 2, 6, 9}, {1, 1, 1.5, 1.5}, c);
  EXPECT_TRUE(tensors_close(run1(resize_call(x, c, {}, {8, 9}, {2, 3})), want, 1e-5, 1e-5));
  c.policy = "not_smaller";
  want = naive_resize(x, {1, 2, 8, 12}, {1, 1, 2, 2}, c);
  EXPECT_TRUE(tensors_close(run1(resize_call(x, c, {}, {8, 9}, {2, 3})), want, 1e-5, 1e-5));
}

TEST(Resize, Float16AndUint8) {
  Cfg c;
  c.mode = "linear";
  Tensor h = random_tensor(DType::kFloat16, {1, 1, 3, 3}, 6);
  Tensor want = naive_resize(h, {1, 1, 6, 6}, {1, 1, 2, 2}, c);
  EXPECT_TRUE(tensors_close(run1(resize_call(h, c, {1, 1, 2, 2}, {})), want, 1e-3, 1e-3));
  // Integer outputs are rounded to nearest.
  Tensor u = Tensor::from_vector<uint8_t>({1, 2}, {10, 21});
  Tensor y = run1(resize_call(u, c, {}, {1, 4}));
  EXPECT_TRUE(tensors_equal(y, Tensor::from_vector<uint8_t>({1, 4}, {10, 13, 18, 21})));  // 10, 12.75, 18.25, 21
}

TEST(Resize, ErrorsAndInference) {
  Tensor x = random_tensor(DType::kFloat32, {1, 1, 2, 2}, 7);
  Cfg c;
  expect_error(resize_call(x, c, {1, 1, 2}, {}), {"scales has 3 values", "expected 4"});
  expect_error(resize_call(x, c, {1, 1, 2, 2}, {1, 1, 4, 4}), {"only one of scales and sizes"});
  expect_error(resize_call(x, c, {1, 1, 0, 2}, {}), {"positive"});
  c.mode = "bilinear";
  expect_error(resize_call(x, c, {1, 1, 2, 2}, {}), {"mode must be one of", "'bilinear'"});
  c.mode = "nearest";
  c.coord = "corners";
  expect_error(resize_call(x, c, {1, 1, 2, 2}, {}), {"coordinate_transformation_mode"});
  // Symbolic batch keeps its name; resized dims are computed at import from constant scales.
  Attributes a;
  a.set("mode", std::string("nearest"));
  auto r = infer_op("Resize", {ttype(DType::kFloat32, {Dim::symbolic("n"), 3, 10, 10}), Tensor(),
                               Tensor::from_vector<float>({4}, {1, 1, 2, 2})}, a);
  ASSERT_TRUE(r.status.ok()) << r.status.message();
  EXPECT_EQ(r.outputs[0].to_string(), "float32[n,3,20,20]");
}

}  // namespace
}  // namespace kiln::test
