// HannWindow / HammingWindow / BlackmanWindow against their textbook formulas, and
// MelWeightMatrix against the ONNX spec example and a direct construction of the triangles.
#include <cmath>
#include <numbers>

#include "op_test_util.hpp"

namespace kiln::test {
namespace {

Attributes window_attrs(int64_t periodic, int64_t datatype = 1) {
  Attributes a;
  a.set("periodic", periodic);
  a.set("output_datatype", datatype);
  return a;
}

double textbook(const std::string& op, int64_t n, int64_t size, bool periodic) {
  const double N = static_cast<double>(periodic ? size : size - 1), pi = std::numbers::pi;
  const double x = static_cast<double>(n);
  if (op == "HannWindow") return std::pow(std::sin(pi * x / N), 2);
  if (op == "HammingWindow") return 25.0 / 46 - 21.0 / 46 * std::cos(2 * pi * x / N);
  return 0.42 - 0.5 * std::cos(2 * pi * x / N) + 0.08 * std::cos(4 * pi * x / N);
}

TEST(SignalWindows, MatchTheirFormulas) {
  for (const std::string op : {"HannWindow", "HammingWindow", "BlackmanWindow"}) {
    for (int64_t periodic : {0, 1}) {
      for (int64_t size : {2, 7, 10, 64}) {
        auto out = run_op({.op_type = op, .inputs = {Tensor::scalar<int64_t>(size)}, .attrs = window_attrs(periodic, 11)});
        ASSERT_TRUE(out.ok()) << out.status().message();
        const Tensor& y = out->at(0);
        ASSERT_EQ(y.dtype(), DType::kFloat64);
        ASSERT_EQ(y.dims(), (Dims{size}));
        for (int64_t n = 0; n < size; ++n)
          EXPECT_NEAR(y.data<double>()[n], textbook(op, n, size, periodic == 1), 1e-12) << op << " " << size << " " << n;
      }
    }
    // float32 is the default output type; int32 size works too.
    auto f = run_op({.op_type = op, .inputs = {Tensor::scalar<int32_t>(5)}});
    ASSERT_TRUE(f.ok()) << f.status().message();
    EXPECT_EQ(f->at(0).dtype(), DType::kFloat32);
    EXPECT_NEAR(f->at(0).data<float>()[2], textbook(op, 2, 5, true), 1e-6);
    // A one-point symmetric window is [1]; an empty one is empty.
    auto one = run_op({.op_type = op, .inputs = {Tensor::scalar<int64_t>(1)}, .attrs = window_attrs(0)});
    ASSERT_TRUE(one.ok());
    EXPECT_EQ(one->at(0).data<float>()[0], 1.0f);
    auto empty = run_op({.op_type = op, .inputs = {Tensor::scalar<int64_t>(0)}});
    ASSERT_TRUE(empty.ok());
    EXPECT_EQ(empty->at(0).numel(), 0);
  }
}

TEST(SignalWindows, IntegerOutputTruncates) {
  // periodic Hann of size 4: 0, 0.5, 1, 0.5 -> 0, 0, 1, 0.
  auto out = run_op({.op_type = "HannWindow", .inputs = {Tensor::scalar<int64_t>(4)}, .attrs = window_attrs(1, 6)});
  ASSERT_TRUE(out.ok()) << out.status().message();
  EXPECT_TRUE(tensors_close(out->at(0), Tensor::from_vector<int32_t>({4}, {0, 0, 1, 0})));
}

TEST(SignalWindows, ErrorsNameTheNode) {
  struct Case {
    OpCall call;
    const char* text;
  } cases[] = {
      {{.op_type = "HannWindow", .inputs = {Tensor::scalar<int64_t>(-3)}}, "size must not be negative"},
      {{.op_type = "HammingWindow", .inputs = {Tensor::scalar<int64_t>(4)}, .attrs = window_attrs(2)}, "periodic must be 0 or 1"},
      {{.op_type = "BlackmanWindow", .inputs = {Tensor::scalar<int64_t>(4)}, .attrs = window_attrs(1, 9)}, "numeric type"},
      {{.op_type = "BlackmanWindow", .inputs = {Tensor::scalar<int64_t>(4)}, .attrs = window_attrs(1, 8)}, "STRING"},
      {{.op_type = "HannWindow", .inputs = {Tensor::scalar<float>(4.f)}}, "int32/int64"},
      {{.op_type = "HannWindow", .inputs = {Tensor::from_vector<int64_t>({2}, {4, 5})}}, "scalar"},
  };
  for (const Case& c : cases) {
    auto out = run_op(c.call);
    ASSERT_FALSE(out.ok()) << c.text;
    EXPECT_NE(out.status().message().find(c.call.op_type + "_node"), std::string::npos) << out.status().message();
    EXPECT_NE(out.status().message().find(c.text), std::string::npos) << out.status().message();
  }
}

std::vector<Tensor> mel_inputs(int64_t bins, int64_t length, int64_t rate, float lower, float upper) {
  return {Tensor::scalar<int64_t>(bins), Tensor::scalar<int64_t>(length), Tensor::scalar<int64_t>(rate),
          Tensor::scalar<float>(lower), Tensor::scalar<float>(upper)};
}

TEST(MelWeightMatrix, MatchesTheSpecExample) {
  auto out = run_op({.op_type = "MelWeightMatrix", .inputs = mel_inputs(8, 16, 8192, 0.f, 4096.f)});
  ASSERT_TRUE(out.ok()) << out.status().message();
  std::vector<float> want(9 * 8, 0.f);
  // Rows (spectrogram bins) 0..5 from the ONNX example; rows 6..8 are zero.
  for (auto [row, col] : std::vector<std::pair<int, int>>{{0, 0}, {0, 1}, {1, 2}, {1, 3}, {2, 4}, {3, 5}, {4, 6}, {5, 7}})
    want[static_cast<size_t>(row * 8 + col)] = 1.f;
  EXPECT_TRUE(tensors_close(out->at(0), Tensor::from_vector<float>({9, 8}, want)));
}

TEST(MelWeightMatrix, TrianglesBetweenMelSpacedEdges) {
  const int64_t bins = 10, length = 128, rate = 16000;
  const double lower = 100, upper = 7000;
  Attributes a;
  a.set("output_datatype", int64_t{11});
  auto out = run_op({.op_type = "MelWeightMatrix", .inputs = mel_inputs(bins, length, rate, 100.f, 7000.f), .attrs = a});
  ASSERT_TRUE(out.ok()) << out.status().message();
  const Tensor& y = out->at(0);
  ASSERT_EQ(y.dims(), (Dims{length / 2 + 1, bins}));
  // Edge e of bins + 2, (e / (bins + 2)) of the way from mel(lower) to mel(upper), as a bin index.
  auto mel = [](double hz) { return 2595 * std::log10(1 + hz / 700); };
  std::vector<int64_t> edge;
  for (int64_t e = 0; e < bins + 2; ++e) {
    const double m = mel(lower) + static_cast<double>(e) * (mel(upper) - mel(lower)) / static_cast<double>(bins + 2);
    edge.push_back(static_cast<int64_t>(std::floor(static_cast<double>(length + 1) * 700 * (std::pow(10, m / 2595) - 1) / rate)));
  }
  for (int64_t m = 0; m < bins; ++m)
    for (int64_t k = 0; k <= length / 2; ++k) {
      const int64_t l = edge[static_cast<size_t>(m)], c = edge[static_cast<size_t>(m + 1)], r = edge[static_cast<size_t>(m + 2)];
      double want = 0;
      if (k >= l && k <= c) want = c == l ? (k == c) : static_cast<double>(k - l) / static_cast<double>(c - l);
      if (k >= c && k < r) want = static_cast<double>(r - k) / static_cast<double>(r - c);
      EXPECT_NEAR(y.data<double>()[k * bins + m], want, 1e-12) << "bin " << k << " mel " << m;
    }
}

TEST(MelWeightMatrix, ErrorsNameTheNode) {
  struct Case {
    std::vector<Tensor> inputs;
    const char* text;
  } cases[] = {
      {mel_inputs(0, 16, 8000, 0.f, 4000.f), "num_mel_bins must be positive"},
      {mel_inputs(8, 16, 8000, 4000.f, 100.f), "must be below upper_edge_hertz"},
      {mel_inputs(8, 16, 0, 0.f, 4000.f), "sample_rate must be positive"},
      {mel_inputs(8, 16, 8000, -5.f, 4000.f), "lower_edge_hertz must not be negative"},
  };
  for (const Case& c : cases) {
    auto out = run_op({.op_type = "MelWeightMatrix", .inputs = c.inputs});
    ASSERT_FALSE(out.ok()) << c.text;
    EXPECT_NE(out.status().message().find("MelWeightMatrix_node"), std::string::npos) << out.status().message();
    EXPECT_NE(out.status().message().find(c.text), std::string::npos) << out.status().message();
  }
}

}  // namespace
}  // namespace kiln::test
