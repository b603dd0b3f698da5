// load_calibration_batches: the .npy conventions (samples, batches, one folder per input), images
// with preprocessing (PNG/JPEG written here with libpng/libjpeg, PPM/PGM by hand), and every error.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include <unistd.h>

#include <png.h>
// jpeglib.h needs FILE declared first.
#include <jpeglib.h>

#include "io/npy.hpp"
#include "quant/calibration_data.hpp"
#include "quant/image_io.hpp"

namespace kiln {
namespace {

namespace fs = std::filesystem;

class CalibrationData : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = (fs::temp_directory_path() / ("kiln_calibdata_" + std::to_string(::getpid()) + "_" +
                                         ::testing::UnitTest::GetInstance()->current_test_info()->name()))
               .string();
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string path(const std::string& name) const { return (fs::path(dir_) / name).string(); }

  // A graph with inputs of the given shapes (dim -1: dynamic) and an Identity per input.
  static GraphPtr graph(const std::vector<std::pair<std::string, std::vector<int64_t>>>& inputs,
                        DType dtype = DType::kFloat32) {
    auto g = std::make_shared<Graph>();
    for (const auto& [name, dims] : inputs) {
      std::vector<Dim> ds;
      for (int64_t d : dims) ds.push_back(d < 0 ? Dim() : Dim(d));
      Value* in = g->add_value(name, TensorType{dtype, Shape(ds)});
      g->inputs.push_back(in);
      Value* out = g->add_value(name + "_out");
      g->add_node("Identity", {in}, {out}, name + "_id");
      g->outputs.push_back(out);
    }
    return g;
  }

  static Tensor ramp(Dims dims, float start) {
    Tensor t(DType::kFloat32, std::move(dims));
    for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = start + static_cast<float>(i);
    return t;
  }

  Expected<std::vector<std::map<std::string, Tensor>>> load(const Graph& g, int batch, int max_batches = 0) {
    CalibrationDataOptions o;
    o.dir = dir_;
    o.batch = batch;
    o.max_batches = max_batches;
    o.log = [this](std::string_view l) { log_.emplace_back(l); };
    return load_calibration_batches(g, o);
  }

  static void expect_error(const Expected<std::vector<std::map<std::string, Tensor>>>& r,
                           const std::vector<std::string>& parts) {
    ASSERT_FALSE(r.ok());
    for (const std::string& p : parts)
      EXPECT_NE(r.status().message().find(p), std::string::npos) << "'" << p << "' not in: " << r.status().message();
  }

  std::string dir_;
  std::vector<std::string> log_;
};

TEST_F(CalibrationData, SamplesAndBatchesAreConcatenatedInNameOrderAndCut) {
  auto g = graph({{"x", {-1, 2, 3}}});
  // b.npy: one sample without batch dim; a.npy: a batch of 3; c.npy: one sample with batch 1.
  ASSERT_TRUE(save_npy(path("a.npy"), ramp({3, 2, 3}, 0)).ok());
  ASSERT_TRUE(save_npy(path("b.npy"), ramp({2, 3}, 100)).ok());
  ASSERT_TRUE(save_npy(path("c.npy"), ramp({1, 2, 3}, 200)).ok());
  std::ofstream(path("notes.txt")) << "ignored";
  auto r = load(*g, 2);
  ASSERT_TRUE(r.ok()) << r.status().message();
  ASSERT_EQ(r->size(), 2u);  // 5 samples: two batches of 2, one sample left over (noted)
  const Tensor& b0 = (*r)[0].at("x");
  const Tensor& b1 = (*r)[1].at("x");
  EXPECT_EQ(b0.dims(), (Dims{2, 2, 3}));
  EXPECT_EQ(b0.data<float>()[0], 0);
  EXPECT_EQ(b0.data<float>()[6], 6);    // a.npy's second sample
  EXPECT_EQ(b1.data<float>()[0], 12);   // a.npy's third
  EXPECT_EQ(b1.data<float>()[6], 100);  // b.npy
  ASSERT_FALSE(log_.empty());
  EXPECT_NE(log_.back().find("4 of 5 samples"), std::string::npos) << log_.back();

  auto capped = load(*g, 1, 3);
  ASSERT_TRUE(capped.ok());
  EXPECT_EQ(capped->size(), 3u);
  EXPECT_EQ((*capped)[2].at("x").data<float>()[0], 12);
}

TEST_F(CalibrationData, FixedBatchDimOverridesCalibBatch) {
  auto g = graph({{"x", {2, 4}}});
  ASSERT_TRUE(save_npy(path("a.npy"), ramp({4, 4}, 0)).ok());
  auto r = load(*g, 3);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->size(), 2u);
  EXPECT_EQ((*r)[1].at("x").dims(), (Dims{2, 4}));
  ASSERT_FALSE(log_.empty());
  EXPECT_NE(log_[0].find("batch dim is 2"), std::string::npos) << log_[0];
}

TEST_F(CalibrationData, SeveralInputsUseASubfolderEach) {
  auto g = graph({{"ids", {-1, 3}}, {"mask", {-1, 3}}}, DType::kInt64);
  fs::create_directories(path("ids"));
  fs::create_directories(path("mask"));
  for (int i = 0; i < 2; ++i) {
    Tensor a = Tensor::zeros(DType::kInt64, {3});
    Tensor b = Tensor::zeros(DType::kInt64, {3});
    a.data<int64_t>()[0] = i + 1;
    b.data<int64_t>()[0] = 10 * (i + 1);
    ASSERT_TRUE(save_npy(path("ids/" + std::to_string(i) + ".npy"), a).ok());
    ASSERT_TRUE(save_npy(path("mask/" + std::to_string(i) + ".npy"), b).ok());
  }
  auto r = load(*g, 1);
  ASSERT_TRUE(r.ok()) << r.status().message();
  ASSERT_EQ(r->size(), 2u);
  EXPECT_EQ((*r)[1].at("ids").data<int64_t>()[0], 2);
  EXPECT_EQ((*r)[1].at("mask").data<int64_t>()[0], 20);

  fs::remove(path("mask/1.npy"));
  expect_error(load(*g, 1), {"'ids' has 2 samples", "'mask' has 1"});
  fs::remove_all(path("mask"));
  expect_error(load(*g, 1), {"subfolder per input", "mask"});
}

TEST_F(CalibrationData, ErrorsNameTheFolderFileAndInput) {
  auto g = graph({{"x", {-1, 2, 3}}});
  expect_error(load(*g, 1), {dir_, "is empty"});
  std::ofstream(path("readme.txt")) << "x";
  expect_error(load(*g, 1), {dir_, "no .npy files"});
  std::ofstream(path("cat.ppm")) << "P3 1 1 255 1 2 3\n";
  expect_error(load(*g, 1), {"holds images", "--calib-preprocess"});
  fs::remove(path("cat.ppm"));

  ASSERT_TRUE(save_npy(path("a.npy"), ramp({2, 4}, 0)).ok());
  expect_error(load(*g, 1), {path("a.npy"), "input 'x'", "expected shape [?,2,3]", "got [2,4]"});
  ASSERT_TRUE(save_npy(path("a.npy"), Tensor::zeros(DType::kFloat64, {2, 3})).ok());
  expect_error(load(*g, 1), {path("a.npy"), "input 'x'", "expected dtype float32, got float64"});
  ASSERT_TRUE(save_npy(path("a.npy"), ramp({5, 6, 7, 8}, 0)).ok());
  expect_error(load(*g, 1), {path("a.npy"), "got [5,6,7,8]"});
  std::ofstream(path("a.npy")) << "not numpy";
  expect_error(load(*g, 1), {"a.npy"});
  ASSERT_TRUE(save_npy(path("a.npy"), ramp({2, 3}, 0)).ok());
  expect_error(load(*g, 2), {"1 samples, fewer than one batch of 2"});

  CalibrationDataOptions o;
  o.dir = path("missing");
  expect_error(load_calibration_batches(*g, o), {"missing", "does not exist"});
  o.dir = path("a.npy");
  expect_error(load_calibration_batches(*g, o), {"is not a folder"});
}

TEST_F(CalibrationData, DynamicNonBatchDimsMustAgreeAcrossFiles) {
  auto g = graph({{"x", {-1, -1}}});
  ASSERT_TRUE(save_npy(path("a.npy"), ramp({4}, 0)).ok());
  ASSERT_TRUE(save_npy(path("b.npy"), ramp({5}, 0)).ok());
  expect_error(load(*g, 1), {path("b.npy"), "as the files before"});
}

// --- images ---

void write_png(const std::string& file, int w, int h, const std::vector<uint8_t>& rgb) {
  png_image img{};
  img.version = PNG_IMAGE_VERSION;
  img.width = w;
  img.height = h;
  img.format = PNG_FORMAT_RGB;
  ASSERT_TRUE(png_image_write_to_file(&img, file.c_str(), 0, rgb.data(), 0, nullptr)) << img.message;
}

void write_jpeg(const std::string& file, int w, int h, const std::vector<uint8_t>& rgb) {
  std::FILE* f = std::fopen(file.c_str(), "wb");
  ASSERT_NE(f, nullptr);
  jpeg_compress_struct c{};
  jpeg_error_mgr err{};
  c.err = jpeg_std_error(&err);
  jpeg_create_compress(&c);
  jpeg_stdio_dest(&c, f);
  c.image_width = w;
  c.image_height = h;
  c.input_components = 3;
  c.in_color_space = JCS_RGB;
  jpeg_set_defaults(&c);
  jpeg_set_quality(&c, 100, TRUE);
  jpeg_start_compress(&c, TRUE);
  while (c.next_scanline < c.image_height) {
    JSAMPROW row = const_cast<uint8_t*>(rgb.data()) + static_cast<size_t>(c.next_scanline) * w * 3;
    jpeg_write_scanlines(&c, &row, 1);
  }
  jpeg_finish_compress(&c);
  jpeg_destroy_compress(&c);
  std::fclose(f);
}

std::vector<uint8_t> pattern(int w, int h) {
  std::vector<uint8_t> rgb(static_cast<size_t>(w) * h * 3);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      rgb[(y * w + x) * 3 + 0] = static_cast<uint8_t>(40 + 10 * x);
      rgb[(y * w + x) * 3 + 1] = static_cast<uint8_t>(100 + 20 * y);
      rgb[(y * w + x) * 3 + 2] = 200;
    }
  return rgb;
}

TEST_F(CalibrationData, DecodesPngJpegPpmAndPgm) {
  const auto rgb = pattern(4, 3);
  write_png(path("a.png"), 4, 3, rgb);
  write_jpeg(path("b.JPG"), 4, 3, rgb);
  {
    std::ofstream f(path("c.ppm"), std::ios::binary);
    f << "P6\n# a comment\n4 3\n255\n";
    f.write(reinterpret_cast<const char*>(rgb.data()), static_cast<std::streamsize>(rgb.size()));
  }
  std::ofstream(path("d.pgm")) << "P2\n2 1\n15\n0 15\n";
  auto png = read_image(path("a.png"));
  ASSERT_TRUE(png.ok()) << png.status().message();
  EXPECT_EQ(png->width, 4);
  EXPECT_EQ(png->height, 3);
  EXPECT_EQ(png->rgb, rgb);
  auto ppm = read_image(path("c.ppm"));
  ASSERT_TRUE(ppm.ok()) << ppm.status().message();
  EXPECT_EQ(ppm->rgb, rgb);
  auto jpg = read_image(path("b.JPG"));
  ASSERT_TRUE(jpg.ok()) << jpg.status().message();
  ASSERT_EQ(jpg->rgb.size(), rgb.size());
  for (size_t i = 0; i < rgb.size(); ++i) EXPECT_NEAR(jpg->rgb[i], rgb[i], 12) << i;  // lossy
  auto pgm = read_image(path("d.pgm"));
  ASSERT_TRUE(pgm.ok()) << pgm.status().message();
  EXPECT_EQ(pgm->rgb, (std::vector<uint8_t>{0, 0, 0, 255, 255, 255}));
  EXPECT_TRUE(is_image_file("x/Y.JPEG"));
  EXPECT_FALSE(is_image_file("x.npy"));
}

TEST_F(CalibrationData, CorruptImagesAreErrorsNamingTheFile) {
  const auto rgb = pattern(4, 3);
  write_png(path("a.png"), 4, 3, rgb);
  write_jpeg(path("b.jpg"), 4, 3, rgb);
  for (const char* name : {"a.png", "b.jpg"}) {
    std::string bytes;
    {
      std::ifstream in(path(name), std::ios::binary);
      bytes.assign(std::istreambuf_iterator<char>(in), {});
    }
    std::ofstream(path(name), std::ios::binary | std::ios::trunc) << bytes.substr(0, bytes.size() / 3);
    auto r = read_image(path(name));
    ASSERT_FALSE(r.ok()) << name;
    EXPECT_NE(r.status().message().find(path(name)), std::string::npos) << r.status().message();
  }
  // A JPEG cut inside its scan data: libjpeg would fill the rest with gray; kiln refuses it.
  {
    std::vector<uint8_t> noise(64 * 64 * 3);
    for (size_t i = 0; i < noise.size(); ++i) noise[i] = static_cast<uint8_t>((i * 2654435761u) >> 13);
    write_jpeg(path("big.jpg"), 64, 64, noise);
    std::ifstream in(path("big.jpg"), std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    in.close();
    std::ofstream(path("big.jpg"), std::ios::binary | std::ios::trunc) << bytes.substr(0, bytes.size() * 9 / 10);
    auto r = read_image(path("big.jpg"));
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.status().message().find("ends early"), std::string::npos) << r.status().message();
    fs::remove(path("big.jpg"));
  }
  std::ofstream(path("c.ppm")) << "P6\n4 3\n255\nabc";
  EXPECT_FALSE(read_image(path("c.ppm")).ok());
  std::ofstream(path("d.png")) << "hello";
  auto r = read_image(path("d.png"));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("not a PNG, JPEG, PPM or PGM"), std::string::npos);

  // Through load_calibration_batches: the bad file is named.
  auto g = graph({{"x", {-1, 3, 3, 4}}});
  CalibrationDataOptions o;
  o.dir = dir_;
  o.image = ImagePreprocess{};
  auto batches = load_calibration_batches(*g, o);
  ASSERT_FALSE(batches.ok());
  EXPECT_NE(batches.status().message().find(path("a.png")), std::string::npos) << batches.status().message();
}

TEST_F(CalibrationData, ParsesPreprocessSpecs) {
  auto p = parse_image_preprocess("resize=224x200,order=BGR,mean=0.485:0.456:0.406,std=0.5,scale=1/255,layout=NHWC");
  ASSERT_TRUE(p.ok()) << p.status().message();
  EXPECT_EQ(p->height, 224);
  EXPECT_EQ(p->width, 200);
  EXPECT_EQ(p->channel_order, "BGR");
  EXPECT_EQ(p->layout, "NHWC");
  EXPECT_FLOAT_EQ(p->mean[1], 0.456f);
  EXPECT_FLOAT_EQ(p->std[2], 0.5f);
  EXPECT_FLOAT_EQ(p->scale, 1.0f / 255.0f);
  auto d = parse_image_preprocess("");
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->height, 0);
  for (const char* bad : {"resize=224", "order=RGBA", "mean=1:2", "std=0", "scale=1/0", "layout=CHW", "foo=1", "x"})
    EXPECT_FALSE(parse_image_preprocess(bad).ok()) << bad;
}

TEST_F(CalibrationData, PreprocessingMath) {
  // 2x1 image, no resize: out = (pixel * scale - mean[c]) / std[c] in the chosen order and layout.
  Image img;
  img.width = 2;
  img.height = 1;
  img.rgb = {10, 20, 30, 40, 50, 60};
  ImagePreprocess p;
  p.scale = 0.5f;
  p.mean = {1.0f, 2.0f, 3.0f};
  p.std = {2.0f, 4.0f, 8.0f};
  std::vector<float> out(6);
  image_to_tensor(img, p, 3, 1, 2, out.data());  // NCHW, RGB
  EXPECT_EQ(out, (std::vector<float>{(5 - 1) / 2.f, (20 - 1) / 2.f, (10 - 2) / 4.f, (25 - 2) / 4.f, (15 - 3) / 8.f,
                                     (30 - 3) / 8.f}));
  p.channel_order = "BGR";
  p.layout = "NHWC";
  image_to_tensor(img, p, 3, 1, 2, out.data());
  EXPECT_EQ(out, (std::vector<float>{(15 - 1) / 2.f, (10 - 2) / 4.f, (5 - 3) / 8.f, (30 - 1) / 2.f, (25 - 2) / 4.f,
                                     (20 - 3) / 8.f}));
  // Bilinear 2x1 -> 4x1 with half-pixel centers: 10, 17.5, 32.5, 40 (red channel).
  auto up = resize_bilinear(img, 4, 1);
  EXPECT_FLOAT_EQ(up[0], 10.0f);
  EXPECT_FLOAT_EQ(up[3], 17.5f);
  EXPECT_FLOAT_EQ(up[6], 32.5f);
  EXPECT_FLOAT_EQ(up[9], 40.0f);
}

TEST_F(CalibrationData, ImageBatchesResizeAndNormalize) {
  write_png(path("0.png"), 8, 6, std::vector<uint8_t>(8 * 6 * 3, 255));
  {
    std::ofstream f(path("1.ppm"), std::ios::binary);
    f << "P6 2 2 255\n";
    f << std::string(12, '\0');
  }
  auto g = graph({{"img", {-1, 3, 4, 4}}});
  CalibrationDataOptions o;
  o.dir = dir_;
  o.batch = 2;
  o.image = *parse_image_preprocess("mean=0.5,std=0.5");
  auto r = load_calibration_batches(*g, o);
  ASSERT_TRUE(r.ok()) << r.status().message();
  ASSERT_EQ(r->size(), 1u);
  const Tensor& t = (*r)[0].at("img");
  EXPECT_EQ(t.dims(), (Dims{2, 3, 4, 4}));
  for (int i = 0; i < 48; ++i) EXPECT_FLOAT_EQ(t.data<float>()[i], 1.0f);    // white: (1 - 0.5) / 0.5
  for (int i = 48; i < 96; ++i) EXPECT_FLOAT_EQ(t.data<float>()[i], -1.0f);  // black

  // Errors: dynamic H/W without resize=, a resize that does not fit, a non-image input.
  auto dyn = graph({{"img", {-1, 3, -1, -1}}});
  o.image = ImagePreprocess{};
  auto e1 = load_calibration_batches(*dyn, o);
  ASSERT_FALSE(e1.ok());
  EXPECT_NE(e1.status().message().find("resize=HxW"), std::string::npos);
  o.image->height = o.image->width = 5;
  auto e2 = load_calibration_batches(*g, o);
  ASSERT_FALSE(e2.ok());
  EXPECT_NE(e2.status().message().find("does not fit"), std::string::npos);
  auto flat = graph({{"v", {-1, 10}}});
  auto e3 = load_calibration_batches(*flat, o);
  ASSERT_FALSE(e3.ok());
  EXPECT_NE(e3.status().message().find("rank 4"), std::string::npos);
}

}  // namespace
}  // namespace kiln
