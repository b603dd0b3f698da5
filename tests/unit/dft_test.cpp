// DFT and STFT against a direct O(n^2) sum in long double (every FFT path: radix-2, direct and
// Bluestein lengths), plus RFFT/IRFFT round trips, shape inference and errors.
#include <cmath>
#include <complex>
#include <numbers>

#include "op_test_util.hpp"

namespace kiln::test {
namespace {

using cld = std::complex<long double>;

// y[k] = sum_j x[j] e^{-+2 pi i jk/n} (scaled by 1/n when inverse), x zero-padded/truncated to n.
std::vector<cld> naive_dft(const std::vector<cld>& x, int64_t n, bool inverse) {
  std::vector<cld> y(static_cast<size_t>(n));
  for (int64_t k = 0; k < n; ++k) {
    cld acc = 0;
    for (int64_t j = 0; j < n && j < static_cast<int64_t>(x.size()); ++j) {
      const long double a = (inverse ? 2 : -2) * std::numbers::pi_v<long double> * static_cast<long double>((j * k) % n) /
                            static_cast<long double>(n);
      acc += x[static_cast<size_t>(j)] * cld(std::cos(a), std::sin(a));
    }
    y[static_cast<size_t>(k)] = inverse ? acc / static_cast<long double>(n) : acc;
  }
  return y;
}

// Reads line (o, i) of a [outer, len, inner, comp] tensor as complex values.
std::vector<cld> line(const Tensor& t, int64_t o, int64_t i, int64_t len, int64_t inner) {
  const int64_t comp = t.dim(t.rank() - 1);
  auto v = t.to_double_vector();
  std::vector<cld> out;
  for (int64_t k = 0; k < len; ++k) {
    const size_t p = static_cast<size_t>(((o * len + k) * inner + i) * comp);
    out.emplace_back(v[p], comp == 2 ? v[p + 1] : 0.0);
  }
  return out;
}

Attributes dft_attrs(int64_t inverse, int64_t onesided) {
  Attributes a;
  a.set("inverse", inverse);
  a.set("onesided", onesided);
  return a;
}

TEST(DFT, MatchesTheDirectSumForEveryLengthAxisAndDirection) {
  for (int64_t n : {1, 5, 8, 16, 33, 64, 100}) {
    for (int64_t comp : {1, 2}) {
      for (int64_t inverse : {0, 1}) {
        // [2, n, 3, comp] transformed along axis 1 (given as 1 and as -3).
        Tensor x = random_tensor(DType::kFloat64, {2, n, 3, comp}, static_cast<uint32_t>(n * 7 + comp));
        for (int64_t axis : {1, -3}) {
          auto out = run_op({.op_type = "DFT", .inputs = {x, Tensor(), Tensor::scalar<int64_t>(axis)},
                             .attrs = dft_attrs(inverse, 0)});
          ASSERT_TRUE(out.ok()) << out.status().message();
          const Tensor& y = out->at(0);
          ASSERT_EQ(y.dims(), (Dims{2, n, 3, 2}));
          for (int64_t o = 0; o < 2; ++o)
            for (int64_t i = 0; i < 3; ++i) {
              auto want = naive_dft(line(x, o, i, n, 3), n, inverse == 1);
              auto got = line(y, o, i, n, 3);
              for (int64_t k = 0; k < n; ++k) {
                EXPECT_NEAR(static_cast<double>(got[static_cast<size_t>(k)].real()), static_cast<double>(want[static_cast<size_t>(k)].real()), 1e-9)
                    << "n " << n << " comp " << comp << " inverse " << inverse;
                EXPECT_NEAR(static_cast<double>(got[static_cast<size_t>(k)].imag()), static_cast<double>(want[static_cast<size_t>(k)].imag()), 1e-9);
              }
            }
        }
      }
    }
  }
}

TEST(DFT, DefaultAxisIsTheLastSignalDimAndDftLengthPadsOrTruncates) {
  Tensor x = random_tensor(DType::kFloat32, {3, 10, 2}, 4);
  for (int64_t len : {4, 10, 37}) {
    auto out = run_op({.op_type = "DFT", .inputs = {x, Tensor::scalar<int32_t>(static_cast<int32_t>(len))}});
    ASSERT_TRUE(out.ok()) << out.status().message();
    ASSERT_EQ(out->at(0).dims(), (Dims{3, len, 2}));
    for (int64_t o = 0; o < 3; ++o) {
      auto want = naive_dft(line(x, o, 0, 10, 1), len, false);
      auto got = line(out->at(0), o, 0, len, 1);
      for (int64_t k = 0; k < len; ++k) {
        EXPECT_NEAR(static_cast<double>(got[static_cast<size_t>(k)].real()), static_cast<double>(want[static_cast<size_t>(k)].real()), 2e-5) << len;
        EXPECT_NEAR(static_cast<double>(got[static_cast<size_t>(k)].imag()), static_cast<double>(want[static_cast<size_t>(k)].imag()), 2e-5) << len;
      }
    }
  }
}

TEST(DFT, OnesidedForwardIsTheFirstHalfAndIrfftInvertsIt) {
  for (int64_t n : {6, 7, 40, 45}) {
    Tensor x = random_tensor(DType::kFloat64, {2, n, 1}, static_cast<uint32_t>(n));
    auto half = run_op({.op_type = "DFT", .inputs = {x}, .attrs = dft_attrs(0, 1)});
    ASSERT_TRUE(half.ok()) << half.status().message();
    ASSERT_EQ(half->at(0).dims(), (Dims{2, n / 2 + 1, 2}));
    auto full = run_op({.op_type = "DFT", .inputs = {x}});
    ASSERT_TRUE(full.ok());
    for (int64_t o = 0; o < 2; ++o) {
      auto h = line(half->at(0), o, 0, n / 2 + 1, 1), f = line(full->at(0), o, 0, n, 1);
      for (size_t k = 0; k < h.size(); ++k) EXPECT_NEAR(static_cast<double>(std::abs(h[k] - f[k])), 0.0, 1e-12);
    }
    // IRFFT: one-sided spectrum back to the real signal; the length must be given for odd n.
    Tensor len = Tensor::scalar<int64_t>(n);
    auto back = run_op({.op_type = "DFT", .inputs = {half->at(0), n % 2 ? len : Tensor()}, .attrs = dft_attrs(1, 1)});
    ASSERT_TRUE(back.ok()) << back.status().message();
    EXPECT_TRUE(tensors_close(back->at(0), x, 1e-9, 1e-12)) << n;
  }
}

TEST(DFT, HalfPrecisionFollowsDouble) {
  Tensor x = random_tensor(DType::kFloat32, {4, 12, 2}, 9);
  auto f = run_op({.op_type = "DFT", .inputs = {x}});
  auto h = run_op({.op_type = "DFT", .inputs = {x.cast(DType::kFloat16)}});
  ASSERT_TRUE(f.ok() && h.ok());
  EXPECT_EQ(h->at(0).dtype(), DType::kFloat16);
  EXPECT_LT(rel_l2(h->at(0).cast(DType::kFloat32), f->at(0)), 2e-3);
}

TEST(DFT, InfersShapesWithSymbolicDims) {
  Graph g;
  Value* x = g.add_value("x", {DType::kFloat32, Shape({Dim::symbolic("b"), Dim(16), Dim(1)})});
  Value* y = g.add_value("y");
  Node* n = g.add_node("DFT", {x, nullptr, g.add_constant("axis", Tensor::scalar<int64_t>(1))}, {y}, "dft", "", 20);
  n->attrs.set("onesided", int64_t{1});
  Value* len = g.add_value("len", {DType::kInt64, Shape::scalar()});  // unknown value
  Value* z = g.add_value("z");
  g.add_node("DFT", {x, len}, {z}, "dft_len", "", 20);
  g.inputs = {x, len};
  g.outputs = {y, z};
  ASSERT_TRUE(infer_shapes(g).ok());
  EXPECT_EQ(y->type.to_string(), "float32[b,9,2]");
  EXPECT_EQ(z->type.to_string(), "float32[b,?,2]");
}

TEST(DFT, ErrorsNameTheNode) {
  Tensor real = random_tensor(DType::kFloat32, {2, 8, 1}, 1), cplx = random_tensor(DType::kFloat32, {2, 8, 2}, 2);
  struct Case {
    OpCall call;
    const char* text;
  } cases[] = {
      {{.op_type = "DFT", .inputs = {real, Tensor(), Tensor::scalar<int64_t>(-1)}}, "axis -1"},
      {{.op_type = "DFT", .inputs = {real, Tensor(), Tensor::scalar<int64_t>(2)}}, "axis 2"},
      {{.op_type = "DFT", .inputs = {cplx}, .attrs = dft_attrs(0, 1)}, "real input"},
      {{.op_type = "DFT", .inputs = {real}, .attrs = dft_attrs(1, 1)}, "complex input"},
      {{.op_type = "DFT", .inputs = {real, Tensor::scalar<int64_t>(0)}}, "dft_length must be positive"},
      {{.op_type = "DFT", .inputs = {random_tensor(DType::kFloat32, {2, 8, 3}, 3)}}, "1 (real) or 2 (complex)"},
      {{.op_type = "DFT", .inputs = {real}, .attrs = dft_attrs(2, 0)}, "inverse must be 0 or 1"},
      {{.op_type = "DFT", .inputs = {Tensor::from_vector<int32_t>({2, 1}, {1, 2})}}, "float tensor"},
  };
  for (const Case& c : cases) {
    auto out = run_op(c.call);
    ASSERT_FALSE(out.ok()) << c.text;
    EXPECT_NE(out.status().message().find("DFT_node"), std::string::npos) << out.status().message();
    EXPECT_NE(out.status().message().find(c.text), std::string::npos) << out.status().message();
  }
}

// STFT frames of `frame` samples every `step`, windowed, transformed by the direct sum.
TEST(STFT, MatchesWindowedFramesOfTheDirectSum) {
  const int64_t len = 50, step = 7, frame = 12, frames = 1 + (len - frame) / step;
  for (int64_t comp : {1, 2}) {
    for (int64_t onesided : {0, 1}) {
      if (comp == 2 && onesided) continue;
      Tensor signal = random_tensor(DType::kFloat64, {2, len, comp}, static_cast<uint32_t>(comp + 10));
      Tensor window = random_tensor(DType::kFloat64, {frame}, 5, 0.1, 1.0);
      Attributes a;
      a.set("onesided", onesided);
      // The frame length comes from the window, from frame_length, or from both.
      for (int form = 0; form < 3; ++form) {
        const bool with_window = form != 1, with_length = form != 0;
        auto out = run_op({.op_type = "STFT",
                           .inputs = {signal, Tensor::scalar<int64_t>(step), with_window ? window : Tensor(),
                                      with_length ? Tensor::scalar<int32_t>(frame) : Tensor()},
                           .attrs = a});
        ASSERT_TRUE(out.ok()) << out.status().message();
        const int64_t bins = onesided ? frame / 2 + 1 : frame;
        ASSERT_EQ(out->at(0).dims(), (Dims{2, frames, bins, 2}));
        auto y = out->at(0).to_double_vector();
        for (int64_t b = 0; b < 2; ++b)
          for (int64_t f = 0; f < frames; ++f) {
            auto all = line(signal, b, 0, len, 1);
            std::vector<cld> x(all.begin() + f * step, all.begin() + f * step + frame);
            for (int64_t k = 0; k < frame; ++k)
              if (with_window) x[static_cast<size_t>(k)] *= static_cast<long double>(window.data<double>()[k]);
            auto want = naive_dft(x, frame, false);
            for (int64_t k = 0; k < bins; ++k) {
              const size_t p = static_cast<size_t>(((b * frames + f) * bins + k) * 2);
              EXPECT_NEAR(y[p], static_cast<double>(want[static_cast<size_t>(k)].real()), 1e-9);
              EXPECT_NEAR(y[p + 1], static_cast<double>(want[static_cast<size_t>(k)].imag()), 1e-9);
            }
          }
      }
    }
  }
}

TEST(STFT, ErrorsNameTheNode) {
  Tensor signal = random_tensor(DType::kFloat32, {1, 20, 1}, 1);
  Tensor window = random_tensor(DType::kFloat32, {8}, 2);
  struct Case {
    std::vector<Tensor> inputs;
    const char* text;
  } cases[] = {
      {{signal, Tensor::scalar<int64_t>(4), window, Tensor::scalar<int64_t>(6)}, "window has 8 values but frame_length is 6"},
      {{signal, Tensor::scalar<int64_t>(0), window}, "frame_step must be positive"},
      {{signal, Tensor::scalar<int64_t>(4), Tensor(), Tensor::scalar<int64_t>(21)}, "shorter than one frame"},
      {{random_tensor(DType::kFloat32, {1, 20, 2}, 3), Tensor::scalar<int64_t>(4), window}, "onesided=1 needs a real signal"},
      {{signal, Tensor::scalar<int64_t>(4), window.cast(DType::kFloat64)}, "must have one dtype"},
  };
  for (const Case& c : cases) {
    auto out = run_op({.op_type = "STFT", .inputs = c.inputs});
    ASSERT_FALSE(out.ok()) << c.text;
    EXPECT_NE(out.status().message().find("STFT_node"), std::string::npos) << out.status().message();
    EXPECT_NE(out.status().message().find(c.text), std::string::npos) << out.status().message();
  }
}

}  // namespace
}  // namespace kiln::test
