// RoiAlign: on a linear map (which bilinear interpolation reproduces exactly) every avg output is
// the map's value at its bin centre; max mode on samples that hit pixel centres is a max pool.
#include "op_test_util.hpp"

namespace kiln::test {
namespace {

Attributes roi_attrs(int64_t oh, int64_t ow, int64_t sampling, float scale, const std::string& ctm,
                     const std::string& mode = "avg") {
  Attributes a;
  a.set("output_height", oh);
  a.set("output_width", ow);
  a.set("sampling_ratio", sampling);
  a.set("spatial_scale", scale);
  a.set("coordinate_transformation_mode", ctm);
  a.set("mode", mode);
  return a;
}

TEST(RoiAlign, AvgOfALinearMapIsItsValueAtTheBinCentre) {
  const int64_t n = 2, c = 3, h = 12, w = 14;
  Tensor x(DType::kFloat32, {n, c, h, w});
  auto f = [](int64_t b, int64_t ch, double y, double xx) { return 0.5 * y - 0.25 * xx + 3.0 * static_cast<double>(ch) + 7.0 * static_cast<double>(b); };
  for (int64_t b = 0; b < n; ++b)
    for (int64_t ch = 0; ch < c; ++ch)
      for (int64_t y = 0; y < h; ++y)
        for (int64_t xx = 0; xx < w; ++xx)
          x.data<float>()[((b * c + ch) * h + y) * w + xx] = static_cast<float>(f(b, ch, static_cast<double>(y), static_cast<double>(xx)));
  // rois in image coordinates (x1, y1, x2, y2); with scale 0.5 they stay inside the 12x14 map.
  const std::vector<float> rois = {4.f, 3.f, 20.f, 17.f, 2.5f, 6.f, 11.f, 19.5f, 8.f, 8.f, 14.f, 12.f};
  const std::vector<int64_t> batch = {1, 0, 1};
  for (const std::string ctm : {"half_pixel", "output_half_pixel"}) {
    for (int64_t sampling : {0, 1, 2, 3}) {
      const int64_t oh = 3, ow = 4;
      auto out = run_op({.op_type = "RoiAlign",
                         .inputs = {x, Tensor::from_vector<float>({3, 4}, rois), Tensor::from_vector<int64_t>({3}, batch)},
                         .attrs = roi_attrs(oh, ow, sampling, 0.5f, ctm)});
      ASSERT_TRUE(out.ok()) << out.status().message();
      const Tensor& y = out->at(0);
      ASSERT_EQ(y.dims(), (Dims{3, c, oh, ow}));
      const double off = ctm == "half_pixel" ? 0.5 : 0.0;
      for (size_t r = 0; r < 3; ++r) {
        const double x1 = rois[r * 4] * 0.5 - off, y1 = rois[r * 4 + 1] * 0.5 - off;
        const double bw = (rois[r * 4 + 2] - rois[r * 4]) * 0.5 / static_cast<double>(ow);
        const double bh = (rois[r * 4 + 3] - rois[r * 4 + 1]) * 0.5 / static_cast<double>(oh);
        for (int64_t ch = 0; ch < c; ++ch)
          for (int64_t ph = 0; ph < oh; ++ph)
            for (int64_t pw = 0; pw < ow; ++pw) {
              const double want = f(batch[r], ch, y1 + (static_cast<double>(ph) + 0.5) * bh, x1 + (static_cast<double>(pw) + 0.5) * bw);
              EXPECT_NEAR(y.data<float>()[((static_cast<int64_t>(r) * c + ch) * oh + ph) * ow + pw], want, 1e-4)
                  << ctm << " sampling " << sampling << " roi " << r;
            }
      }
    }
  }
}

TEST(RoiAlign, MaxModeOnPixelCentresIsAMaxPool) {
  // roi 0..8 with output 2x2 and sampling 2 (legacy coordinates): samples at rows/cols 1, 3, 5, 7.
  Tensor x = random_tensor(DType::kFloat32, {1, 2, 9, 9}, 3, 0.5, 4.0);
  Tensor rois = Tensor::from_vector<float>({1, 4}, {0.f, 0.f, 8.f, 8.f});
  Tensor batch = Tensor::from_vector<int64_t>({1}, {0});
  for (const std::string mode : {"max", "avg"}) {
    auto out = run_op({.op_type = "RoiAlign", .inputs = {x, rois, batch}, .attrs = roi_attrs(2, 2, 2, 1.f, "output_half_pixel", mode)});
    ASSERT_TRUE(out.ok()) << out.status().message();
    for (int64_t ch = 0; ch < 2; ++ch)
      for (int64_t ph = 0; ph < 2; ++ph)
        for (int64_t pw = 0; pw < 2; ++pw) {
          double mx = 0, sum = 0;
          for (int64_t iy : {1, 3})
            for (int64_t ix : {1, 3}) {
              const double v = x.data<float>()[(ch * 9 + ph * 4 + iy) * 9 + pw * 4 + ix];
              mx = std::max(mx, v);
              sum += v;
            }
          EXPECT_NEAR(out->at(0).data<float>()[(ch * 2 + ph) * 2 + pw], mode == "max" ? mx : sum / 4, 1e-5) << mode;
        }
  }
  // float16 follows the float path within half precision.
  auto h = run_op({.op_type = "RoiAlign", .inputs = {x.cast(DType::kFloat16), rois.cast(DType::kFloat16), batch},
                   .attrs = roi_attrs(2, 2, 2, 1.f, "output_half_pixel", "avg")});
  ASSERT_TRUE(h.ok()) << h.status().message();
  auto f = run_op({.op_type = "RoiAlign", .inputs = {x, rois, batch}, .attrs = roi_attrs(2, 2, 2, 1.f, "output_half_pixel", "avg")});
  ASSERT_TRUE(f.ok());
  EXPECT_TRUE(tensors_close(h->at(0).cast(DType::kFloat32), f->at(0), 5e-3, 5e-3));
}

TEST(RoiAlign, ErrorsNameTheNode) {
  Tensor x = random_tensor(DType::kFloat32, {1, 1, 4, 4}, 1);
  Tensor rois = Tensor::from_vector<float>({1, 4}, {0.f, 0.f, 2.f, 2.f});
  auto bad_batch = run_op({.op_type = "RoiAlign", .inputs = {x, rois, Tensor::from_vector<int64_t>({1}, {1})}});
  ASSERT_FALSE(bad_batch.ok());
  EXPECT_NE(bad_batch.status().message().find("RoiAlign_node"), std::string::npos) << bad_batch.status().message();
  EXPECT_NE(bad_batch.status().message().find("batch index 1"), std::string::npos);
  Attributes bad_mode = roi_attrs(1, 1, 0, 1.f, "half_pixel", "median");
  auto m = run_op({.op_type = "RoiAlign", .inputs = {x, rois, Tensor::from_vector<int64_t>({1}, {0})}, .attrs = bad_mode});
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.status().message().find("median"), std::string::npos) << m.status().message();
  auto count = run_op({.op_type = "RoiAlign", .inputs = {x, rois, Tensor::from_vector<int64_t>({2}, {0, 0})}});
  ASSERT_FALSE(count.ok());
  EXPECT_NE(count.status().message().find("num_rois"), std::string::npos) << count.status().message();
}

}  // namespace
}  // namespace kiln::test
