// Calibrators on known distributions, the histogram's growth, algorithm parsing and the cache file.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>

#include <unistd.h>

#include "quant/calibration_cache.hpp"
#include "quant/calibrator.hpp"

namespace kiln {
namespace {

TEST(Calibrator, MinMaxIsTheLargestMagnitudeOverBatches) {
  Histogram h;
  std::vector<float> a = {0.5f, -1.25f, 0.0f}, b = {3.0f, -7.5f, 2.0f}, c = {1.0f};
  h.add(a.data(), a.size());
  h.add(b.data(), b.size());
  h.add(c.data(), c.size());
  EXPECT_EQ(minmax_amax(h), 7.5);
  EXPECT_EQ(choose_amax(h, *parse_calibration_algorithm("minmax")), 7.5);
  EXPECT_EQ(h.total(), 7);
}

TEST(Calibrator, HistogramGrowsByMergingBinsAndKeepsCounts) {
  Histogram h;
  std::vector<float> a(1000), b = {100.0f};
  for (size_t i = 0; i < a.size(); ++i) a[i] = static_cast<float>(i) / 1000.0f;  // [0, 1)
  h.add(a.data(), a.size());
  const double w0 = h.bin_width();
  h.add(b.data(), b.size());
  EXPECT_GE(h.bin_width() * Histogram::kBins, 100.0);
  EXPECT_NEAR(std::log2(h.bin_width() / w0), std::round(std::log2(h.bin_width() / w0)), 1e-9);  // doublings
  double sum = 0;
  for (double c : h.counts()) sum += c;
  EXPECT_EQ(sum, 1001);
}

TEST(Calibrator, NonFiniteValuesAreIgnored) {
  Histogram h;
  std::vector<float> a = {1.0f, NAN, INFINITY, -2.0f};
  h.add(a.data(), a.size());
  EXPECT_EQ(h.max_abs(), 2.0);
  EXPECT_EQ(h.total(), 2);
}

TEST(Calibrator, PercentileOfAUniformSample) {
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::vector<float> x(200000);
  for (float& v : x) v = u(rng);
  Histogram h;
  h.add(x.data(), x.size() / 2);
  h.add(x.data() + x.size() / 2, x.size() / 2);
  // |x| is uniform on [0, 1): the P-th percentile is P/100 (within a bin and sampling noise).
  for (double p : {50.0, 90.0, 99.0}) EXPECT_NEAR(percentile_amax(h, p), p / 100.0, 0.005) << p;
  EXPECT_NEAR(percentile_amax(h, 100.0), h.max_abs(), 1e-12);
  EXPECT_NEAR(choose_amax(h, *parse_calibration_algorithm("percentile=90")), 0.9, 0.005);
}

TEST(Calibrator, EntropyClipsOutliersOfAGaussian) {
  std::mt19937 rng(3);
  std::normal_distribution<float> n(0.0f, 1.0f);
  std::vector<float> x(100000);
  for (float& v : x) v = n(rng);
  x[10] = 40.0f;
  x[20] = -35.0f;
  x[30] = 38.0f;
  Histogram h;
  h.add(x.data(), x.size());
  const double amax = entropy_amax(h);
  EXPECT_EQ(h.max_abs(), 40.0);
  EXPECT_LT(amax, 20.0);  // far below the outliers
  EXPECT_GT(amax, 3.0);   // but keeps the bulk of the Gaussian (about 4 sigma)
}

TEST(Calibrator, EntropyKeepsTheRangeOfDiscreteLevels) {
  // Pixels of 17 grey levels k/16 with many zeros (scikit-learn's digits scaled to [0, 1]): every
  // level is information, none an outlier.
  std::mt19937 rng(7);
  std::uniform_int_distribution<int> level(0, 16), coin(0, 1);
  std::vector<float> x(64000);
  for (float& v : x) v = coin(rng) ? 0.0f : static_cast<float>(level(rng)) / 16.0f;
  Histogram h;
  h.add(x.data(), x.size());
  EXPECT_EQ(h.max_abs(), 1.0);
  EXPECT_GT(entropy_amax(h), 0.9);
  EXPECT_LE(entropy_amax(h), 1.0);
}

TEST(Calibrator, EntropyKeepsTheRangeOfAUniformSample) {
  // Nothing is an outlier in a uniform distribution: clipping would only lose information.
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> u(-2.0f, 2.0f);
  std::vector<float> x(100000);
  for (float& v : x) v = u(rng);
  Histogram h;
  h.add(x.data(), x.size());
  EXPECT_GT(entropy_amax(h), 0.95 * h.max_abs());
  EXPECT_LE(entropy_amax(h), h.max_abs());
}

TEST(Calibrator, EmptyOrZeroHistogramGivesZero) {
  Histogram h;
  EXPECT_EQ(entropy_amax(h), 0.0);
  std::vector<float> z(10, 0.0f);
  h.add(z.data(), z.size());
  EXPECT_EQ(percentile_amax(h, 99.0), 0.0);
  EXPECT_EQ(minmax_amax(h), 0.0);
}

TEST(Calibrator, ParsesAlgorithms) {
  EXPECT_EQ(parse_calibration_algorithm("minmax")->name(), "minmax");
  EXPECT_EQ(parse_calibration_algorithm("entropy")->name(), "entropy");
  EXPECT_EQ(parse_calibration_algorithm("percentile")->name(), "percentile=99.99");
  EXPECT_EQ(parse_calibration_algorithm("percentile=99.9")->name(), "percentile=99.9");
  for (const char* bad : {"max", "percentile=0", "percentile=101", "percentile=x", "percentile="}) {
    auto r = parse_calibration_algorithm(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_NE(r.status().message().find(bad), std::string::npos) << r.status().message();
  }
}

std::string temp_path(const std::string& name) {
  return (std::filesystem::temp_directory_path() / ("kiln_calib_" + std::to_string(::getpid()) + "_" + name)).string();
}

TEST(CalibrationCache, RoundTripsExactly) {
  RangeTable t;
  t.algorithm = "percentile=99.99";
  t.amax = {{"conv1_out", 0.1f}, {"x", 3.14159274f}, {"a: b", 1e-30f}, {"big", 3.0e38f}};
  const std::string path = temp_path("cache.txt");
  ASSERT_TRUE(write_calibration_cache(path, t).ok());
  std::ifstream in(path);
  std::string first;
  std::getline(in, first);
  EXPECT_EQ(first, "kiln-calibration-cache 1 percentile=99.99");
  auto back = read_calibration_cache(path);
  ASSERT_TRUE(back.ok()) << back.status().message();
  EXPECT_EQ(back->algorithm, t.algorithm);
  EXPECT_EQ(back->amax, t.amax);  // bit-exact floats, names with ": " included
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));
  std::filesystem::remove(path);
}

TEST(CalibrationCache, BadFilesAreErrorsNamingThem) {
  const std::string path = temp_path("bad.txt");
  auto expect_error = [&](const std::string& text, const std::string& part) {
    std::ofstream(path) << text;
    auto r = read_calibration_cache(path);
    ASSERT_FALSE(r.ok()) << text;
    EXPECT_NE(r.status().message().find(path), std::string::npos) << r.status().message();
    EXPECT_NE(r.status().message().find(part), std::string::npos) << r.status().message();
  };
  expect_error("", "empty");
  expect_error("TRT-8601-EntropyCalibration2\n", "not a kiln calibration cache");
  expect_error("kiln-calibration-cache 7 minmax\n", "version 7");
  expect_error("kiln-calibration-cache 1 minmax\nx 1.0\n", "line 2");
  expect_error("kiln-calibration-cache 1 minmax\nx: -1\n", "not a positive number");
  expect_error("kiln-calibration-cache 1 minmax\nx: 0x1p+\n", "not a positive number");
  std::filesystem::remove(path);
  EXPECT_FALSE(read_calibration_cache(path).ok());
}

}  // namespace
}  // namespace kiln
