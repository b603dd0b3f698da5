// MatMulInteger, QLinearMatMul, ConvInteger and QLinearConv against naive references: direct
// sums in double over explicitly indexed, zero-point-corrected elements.
#include <cfenv>
#include <cmath>

#include "elementwise_test_util.hpp"
#include "nn_reference.hpp"
#include "ops/shape_inference.hpp"

namespace kiln::test {
namespace {

// numpy matmul's 1-D promotion.
Dims promote(const Dims& d, bool a) {
  if (d.size() != 1) return d;
  return a ? Dims{1, d[0]} : Dims{d[0], 1};
}

// A zero point / scale of operand A or B in dims that broadcast against the promoted operand.
Dims param_shape(const Dims& p, bool a) {
  if (numel_of(p) == 1 && p.size() <= 1) return {};
  if (p.size() == 1) return a ? Dims{p[0], 1} : Dims{1, p[0]};
  return p;
}

// The value of a per-tensor / per-row (A) / per-column (B) parameter for the operand element at
// flat index `f` of the promoted operand dims.
double param_at(const Tensor& p, const Dims& operand, bool a, int64_t f) {
  const auto v = p.to_double_vector();
  return v[static_cast<size_t>(naive_broadcast_index(operand, param_shape(p.dims(), a), f))];
}

struct NaiveMatmul {
  Dims out_dims;            // with numpy's squeezes
  std::vector<double> acc;  // exact sums of (a - a_zp) * (b - b_zp)
  std::vector<double> a_scale, b_scale;  // per output element (when scales are given)
};

NaiveMatmul naive_matmul(const Tensor& a, const Tensor& b, const Tensor& azp, const Tensor& bzp,
                         const Tensor* as = nullptr, const Tensor* bs = nullptr) {
  const Dims ad = promote(a.dims(), true), bd = promote(b.dims(), false);
  const int64_t m = ad[ad.size() - 2], k = ad.back(), n = bd.back();
  const Dims a_batch(ad.begin(), ad.end() - 2), b_batch(bd.begin(), bd.end() - 2);
  Dims batch = *broadcast_dims(a_batch, b_batch);
  const auto av = a.to_double_vector(), bv = b.to_double_vector();
  NaiveMatmul r;
  for (int64_t ob = 0; ob < numel_of(batch); ++ob) {
    const int64_t ab = naive_broadcast_index(batch, a_batch, ob), bb = naive_broadcast_index(batch, b_batch, ob);
    for (int64_t i = 0; i < m; ++i) {
      for (int64_t j = 0; j < n; ++j) {
        double sum = 0;
        for (int64_t p = 0; p < k; ++p) {
          const int64_t fa = (ab * m + i) * k + p, fb = (bb * k + p) * n + j;
          sum += (av[static_cast<size_t>(fa)] - param_at(azp, ad, true, fa)) *
                 (bv[static_cast<size_t>(fb)] - param_at(bzp, bd, false, fb));
        }
        r.acc.push_back(sum);
        if (as) r.a_scale.push_back(param_at(*as, ad, true, (ab * m + i) * k));
        if (bs) r.b_scale.push_back(param_at(*bs, bd, false, (bb * k) * n + j));
      }
    }
  }
  r.out_dims = batch;
  if (a.rank() != 1) r.out_dims.push_back(m);
  if (b.rank() != 1) r.out_dims.push_back(n);
  return r;
}

Tensor int32_tensor(const Dims& dims, const std::vector<double>& v) {
  std::vector<int32_t> w;
  for (double d : v) w.push_back(static_cast<int32_t>(static_cast<int64_t>(d)));
  return Tensor::from_vector<int32_t>(dims, w);
}

// saturate(nearbyint(acc * float32(s_a * s_b / s_y)) + zp), as the ONNX reference requantizes.
double requantize(double acc, double sa, double sb, double sy, double zp, DType out) {
  EXPECT_EQ(std::fegetround(), FE_TONEAREST);
  const float mult = static_cast<float>(sa) * static_cast<float>(sb) / static_cast<float>(sy);
  const double q = std::nearbyint(acc * static_cast<double>(mult)) + zp;
  return out == DType::kUInt8 ? std::clamp(q, 0.0, 255.0) : std::clamp(q, -128.0, 127.0);
}

Tensor random_u8(Dims d, uint32_t seed) { return random_tensor(DType::kUInt8, std::move(d), seed, 0, 256); }
Tensor random_i8(Dims d, uint32_t seed) { return random_tensor(DType::kInt8, std::move(d), seed, -128, 128); }

TEST(MatMulInteger, SpecExample) {
  Tensor a = Tensor::from_vector<uint8_t>({4, 3}, {11, 7, 3, 10, 6, 2, 9, 5, 1, 8, 4, 0});
  Tensor b = Tensor::from_vector<uint8_t>({3, 2}, {1, 4, 2, 5, 3, 6});
  Tensor y = run1({"MatMulInteger", {a, b, Tensor::from_vector<uint8_t>({1}, {12}), Tensor::from_vector<uint8_t>({1}, {0})}});
  EXPECT_EQ(y.dtype(), DType::kInt32);
  EXPECT_EQ(y.to_double_vector(), (std::vector<double>{-38, -83, -44, -98, -50, -113, -56, -128}));
}

TEST(MatMulInteger, ZeroPointGranularitiesAndBroadcasting) {
  struct Case {
    Dims a, b, azp, bzp;
  };
  const std::vector<Case> cases = {
      {{5, 7}, {7, 3}, {}, {}},                      // per tensor
      {{5, 7}, {7, 3}, {5}, {3}},                    // per row / per column
      {{2, 1, 3, 4}, {3, 4, 5}, {2, 1, 3, 1}, {3, 1, 5}},  // N-D, batch broadcast
      {{4}, {4, 6}, {1}, {6}},                       // 1-D A
      {{3, 4}, {4}, {3}, {}},                        // 1-D B
      {{2, 3, 0}, {0, 2}, {}, {}},                   // K = 0: zeros
  };
  uint32_t seed = 100;
  for (const Case& c : cases) {
    for (bool signed_a : {false, true}) {
      Tensor a = signed_a ? random_i8(c.a, seed++) : random_u8(c.a, seed++);
      Tensor b = signed_a ? random_u8(c.b, seed++) : random_i8(c.b, seed++);
      Tensor azp = random_tensor(a.dtype(), c.azp, seed++, 0, 100);
      Tensor bzp = random_tensor(b.dtype(), c.bzp, seed++, 0, 100);
      NaiveMatmul want = naive_matmul(a, b, azp, bzp);
      Tensor y = run1({"MatMulInteger", {a, b, azp, bzp}});
      EXPECT_TRUE(tensors_close(y, int32_tensor(want.out_dims, want.acc), 0, 0))
          << dims_to_string(c.a) << " x " << dims_to_string(c.b);
    }
  }
  // No zero points: plain integer matmul.
  Tensor a = random_u8({3, 5}, seed++), b = random_u8({5, 2}, seed++);
  NaiveMatmul want = naive_matmul(a, b, Tensor::scalar<uint8_t>(0), Tensor::scalar<uint8_t>(0));
  EXPECT_TRUE(tensors_close(run1({"MatMulInteger", {a, b}}), int32_tensor(want.out_dims, want.acc), 0, 0));
}

TEST(MatMulInteger, AccumulationWrapsAt32Bits) {
  // 40000 * 255 * 255 = 2.6e9 > 2^31: the int32 result wraps.
  const int64_t k = 40000;
  Tensor a(DType::kUInt8, {1, k}), b(DType::kUInt8, {k, 1});
  std::fill(a.data<uint8_t>(), a.data<uint8_t>() + k, 255);
  std::fill(b.data<uint8_t>(), b.data<uint8_t>() + k, 255);
  Tensor y = run1({"MatMulInteger", {a, b}});
  EXPECT_EQ(y.data<int32_t>()[0], static_cast<int32_t>(k * 255 * 255));
  EXPECT_LT(y.data<int32_t>()[0], 0);
}

TEST(QLinearMatMul, SpecExample2DAnd3D) {
  const std::vector<uint8_t> av = {208, 236, 0, 238, 3, 214, 255, 29};
  const std::vector<uint8_t> bv = {152, 51, 244, 60, 26, 255, 0, 127, 246, 127, 254, 247};
  auto f = [](float v) { return Tensor::from_vector<float>({1}, {v}); };
  auto u = [](uint8_t v) { return Tensor::from_vector<uint8_t>({1}, {v}); };
  Tensor y = run1({"QLinearMatMul", {Tensor::from_vector<uint8_t>({2, 4}, av), f(0.0066f), u(113),
                                     Tensor::from_vector<uint8_t>({4, 3}, bv), f(0.00705f), u(114), f(0.0107f), u(118)}});
  EXPECT_EQ(y.to_double_vector(), (std::vector<double>{168, 115, 255, 1, 66, 151}));
  std::vector<uint8_t> a3 = av, b3 = bv;
  a3.insert(a3.end(), av.begin(), av.end());
  b3.insert(b3.end(), bv.begin(), bv.end());
  y = run1({"QLinearMatMul", {Tensor::from_vector<uint8_t>({2, 2, 4}, a3), f(0.0066f), u(113),
                              Tensor::from_vector<uint8_t>({2, 4, 3}, b3), f(0.00705f), u(114), f(0.0107f), u(118)}});
  EXPECT_EQ(y.dims(), (Dims{2, 2, 3}));
  EXPECT_EQ(y.to_double_vector(), (std::vector<double>{168, 115, 255, 1, 66, 151, 168, 115, 255, 1, 66, 151}));
}

TEST(QLinearMatMul, PerRowAndPerColumnScalesSaturating) {
  struct Case {
    Dims a, b, ap, bp;  // ap / bp: dims of A's and B's scale and zero point
    DType out;
  };
  const std::vector<Case> cases = {
      {{4, 6}, {6, 5}, {}, {}, DType::kUInt8},
      {{4, 6}, {6, 5}, {4}, {5}, DType::kInt8},
      {{2, 3, 6}, {6, 2}, {2, 3, 1}, {1, 2}, DType::kUInt8},
      {{6}, {3, 6, 4}, {}, {3, 1, 4}, DType::kInt8},
  };
  uint32_t seed = 200;
  for (const Case& c : cases) {
    Tensor a = random_u8(c.a, seed++), b = random_i8(c.b, seed++);
    Tensor as = random_tensor(DType::kFloat32, c.ap, seed++, 0.001, 0.02);
    Tensor bs = random_tensor(DType::kFloat32, c.bp, seed++, 0.001, 0.02);
    Tensor azp = random_tensor(DType::kUInt8, c.ap, seed++, 100, 150);
    Tensor bzp = random_tensor(DType::kInt8, c.bp, seed++, -10, 10);
    // A small y_scale makes some outputs saturate.
    Tensor ys = Tensor::scalar<float>(0.002f);
    Tensor yzp = c.out == DType::kUInt8 ? Tensor::scalar<uint8_t>(128) : Tensor::scalar<int8_t>(-3);
    NaiveMatmul want = naive_matmul(a, b, azp, bzp, &as, &bs);
    std::vector<double> yv;
    for (size_t i = 0; i < want.acc.size(); ++i)
      yv.push_back(requantize(want.acc[i], want.a_scale[i], want.b_scale[i], 0.002, yzp.scalar_as_double(), c.out));
    Tensor y = run1({"QLinearMatMul", {a, as, azp, b, bs, bzp, ys, yzp}});
    EXPECT_TRUE(tensors_close(y, to_tensor(c.out, want.out_dims, yv), 0, 0)) << dims_to_string(c.a);
    const auto got = y.to_double_vector();
    const double top = c.out == DType::kUInt8 ? 255 : 127;
    EXPECT_TRUE(std::count(got.begin(), got.end(), top) > 0 || std::count(got.begin(), got.end(), c.out == DType::kUInt8 ? 0 : -128) > 0)
        << "no saturated output in " << dims_to_string(c.a);
  }
}

// Output size of one spatial dim.
int64_t conv_out(int64_t in, int64_t k, int64_t s, int64_t d, int64_t pb, int64_t pe) {
  return (in + pb + pe - ((k - 1) * d + 1)) / s + 1;
}

// ref_conv on (x - x_zp) and (w - w_zp[m]); positions in the padding contribute 0 (= x_zp).
std::vector<double> naive_conv_integer(const Tensor& x, const Tensor& xzp, const Tensor& w, const Tensor& wzp,
                                       const ConvParams& p, const Dims& yd) {
  auto xv = x.to_double_vector(), wv = w.to_double_vector();
  const auto xz = xzp.to_double_vector(), wz = wzp.to_double_vector();
  for (double& v : xv) v -= xz[0];
  const int64_t per_m = numel_of(w.dims()) / w.dim(0);
  for (size_t i = 0; i < wv.size(); ++i) wv[i] -= wz[wz.size() == 1 ? 0 : i / static_cast<size_t>(per_m)];
  return ref_conv(xv, x.dims(), wv, w.dims(), nullptr, p, yd);
}

Attributes conv_attrs(const ConvParams& p) {
  Attributes a;
  a.set("strides", p.strides);
  a.set("dilations", p.dilations);
  Dims pads = p.pads_begin;
  pads.insert(pads.end(), p.pads_end.begin(), p.pads_end.end());
  a.set("pads", pads);
  a.set("group", p.group);
  return a;
}

TEST(ConvInteger, SpecExamples) {
  Tensor x = Tensor::from_vector<uint8_t>({1, 1, 3, 3}, {2, 3, 4, 5, 6, 7, 8, 9, 10});
  Tensor w = Tensor::from_vector<uint8_t>({1, 1, 2, 2}, {1, 1, 1, 1});
  Tensor y = run1({"ConvInteger", {x, w, Tensor::scalar<uint8_t>(1)}});
  EXPECT_EQ(y.to_double_vector(), (std::vector<double>{12, 16, 24, 28}));
  Attributes pads;
  pads.set("pads", std::vector<int64_t>{1, 1, 1, 1});
  // The padding holds the zero point: it adds nothing.
  y = run1({"ConvInteger", {x, w, Tensor::scalar<uint8_t>(1)}, {}, pads});
  EXPECT_EQ(y.to_double_vector(), (std::vector<double>{1, 3, 5, 3, 5, 12, 16, 9, 11, 24, 28, 15, 7, 15, 17, 9}));
}

TEST(ConvInteger, GroupsStridesDilationsPerChannelZeroPoints) {
  struct Case {
    Dims x, w;
    ConvParams p;
  };
  const std::vector<Case> cases = {
      {{2, 4, 6, 5}, {6, 2, 3, 2}, {{2, 1}, {1, 2}, {1, 0}, {1, 1}, 2}},
      {{1, 3, 9}, {4, 3, 3}, {{2}, {1}, {2}, {1}, 1}},
      {{1, 2, 4, 3, 4}, {2, 1, 2, 2, 3}, {{1, 1, 1}, {1, 1, 1}, {0, 1, 1}, {1, 0, 1}, 2}},
  };
  uint32_t seed = 300;
  for (const Case& c : cases) {
    for (bool signed_x : {false, true}) {
      Tensor x = signed_x ? random_i8(c.x, seed++) : random_u8(c.x, seed++);
      Tensor w = signed_x ? random_u8(c.w, seed++) : random_i8(c.w, seed++);
      Tensor xzp = random_tensor(x.dtype(), {}, seed++, 0, 100);
      Tensor wzp = random_tensor(w.dtype(), {c.w[0]}, seed++, 0, 20);
      Dims yd{c.x[0], c.w[0]};
      for (size_t i = 2; i < c.x.size(); ++i)
        yd.push_back(conv_out(c.x[i], c.w[i], c.p.strides[i - 2], c.p.dilations[i - 2], c.p.pads_begin[i - 2],
                              c.p.pads_end[i - 2]));
      Tensor y = run1({"ConvInteger", {x, w, xzp, wzp}, {}, conv_attrs(c.p)});
      EXPECT_TRUE(tensors_close(y, int32_tensor(yd, naive_conv_integer(x, xzp, w, wzp, c.p, yd)), 0, 0))
          << dims_to_string(c.x);
    }
  }
  // Without zero points.
  Tensor x = random_u8({1, 2, 4, 4}, seed++), w = random_u8({3, 2, 2, 2}, seed++);
  ConvParams p{{1, 1}, {1, 1}, {0, 0}, {0, 0}, 1};
  Dims yd{1, 3, 3, 3};
  EXPECT_TRUE(tensors_close(run1({"ConvInteger", {x, w}}),
                            int32_tensor(yd, naive_conv_integer(x, Tensor::scalar<uint8_t>(0), w,
                                                                Tensor::scalar<uint8_t>(0), p, yd)),
                            0, 0));
}

TEST(QLinearConv, PerTensorAndPerChannelWithBias) {
  uint32_t seed = 400;
  for (bool per_channel : {false, true}) {
    for (DType out : {DType::kUInt8, DType::kInt8}) {
      const Dims xd{2, 4, 5, 5}, wd{6, 2, 3, 3};
      const ConvParams p{{1, 2}, {1, 1}, {1, 1}, {1, 0}, 2};
      const Dims yd{2, 6, conv_out(5, 3, 1, 1, 1, 1), conv_out(5, 3, 2, 1, 1, 0)};
      Tensor x = random_u8(xd, seed++), w = random_i8(wd, seed++);
      const Dims pd = per_channel ? Dims{6} : Dims{};
      Tensor xs = Tensor::scalar<float>(0.02f), xzp = Tensor::scalar<uint8_t>(120);
      Tensor ws = random_tensor(DType::kFloat32, pd, seed++, 0.001, 0.01);
      Tensor wzp = random_tensor(DType::kInt8, pd, seed++, -5, 5);
      Tensor bias = random_tensor(DType::kInt32, {6}, seed++, -3000, 3000);
      Tensor ys = Tensor::scalar<float>(0.05f);
      Tensor yzp = out == DType::kUInt8 ? Tensor::scalar<uint8_t>(100) : Tensor::scalar<int8_t>(5);
      const std::vector<double> acc = naive_conv_integer(x, xzp, w, wzp, p, yd);
      const auto wsv = ws.to_double_vector(), bv = bias.to_double_vector();
      std::vector<double> yv(acc.size());
      const int64_t plane = yd[2] * yd[3];
      for (size_t i = 0; i < acc.size(); ++i) {
        const size_t m = static_cast<size_t>((static_cast<int64_t>(i) / plane) % 6);
        yv[i] = requantize(acc[i] + bv[m], 0.02, wsv[per_channel ? m : 0], 0.05, yzp.scalar_as_double(), out);
      }
      Tensor y = run1({"QLinearConv", {x, xs, xzp, w, ws, wzp, ys, yzp, bias}, {}, conv_attrs(p)});
      EXPECT_TRUE(tensors_close(y, to_tensor(out, yd, yv), 0, 0)) << per_channel << " " << dtype_name(out);
    }
  }
}

// Import-time inference: symbolic dims pass through, known ones are checked.
TEST(QuantizedLinear, InfersSymbolicShapes) {
  Graph g;
  Value* x = g.add_value("x", {DType::kFloat32, Shape({Dim::symbolic("n"), Dim(3), Dim::symbolic("h"), Dim(8)})});
  Value* s = g.add_constant("s", Tensor::from_vector<float>({3}, {0.1f, 0.2f, 0.3f}));
  Value* zp = g.add_constant("zp", Tensor::from_vector<uint8_t>({3}, {1, 2, 3}));
  Value* q = g.add_value("q");
  g.add_node("QuantizeLinear", {x, s, zp}, {q}, "quant", "", 21);
  Value* ws = g.add_constant("ws", Tensor::scalar<float>(0.1f));
  Value* wzp = g.add_constant("wzp", Tensor::scalar<int8_t>(0));
  Value* w = g.add_constant("w", random_i8({4, 3, 3, 3}, 1));
  Value* yc = g.add_value("yc");
  Node* conv = g.add_node("QLinearConv", {q, ws, g.add_constant("xzp", Tensor::scalar<uint8_t>(1)), w, ws, wzp, ws,
                                          g.add_constant("yzp", Tensor::scalar<int8_t>(0))},
                          {yc}, "qconv", "", 10);
  conv->attrs.set("strides", Dims{2, 2});
  Value* a = g.add_value("a", {DType::kInt8, Shape({Dim::symbolic("b"), Dim::symbolic("m"), Dim(6)})});
  Value* ym = g.add_value("ym");
  g.add_node("MatMulInteger", {a, g.add_constant("bm", random_i8({6, 5}, 2))}, {ym}, "mmi", "", 10);
  Value* logits = g.add_value("logits", {DType::kFloat32, Shape({Dim::symbolic("b"), Dim(10)})});
  Value* samples = g.add_value("samples");
  g.add_node("Multinomial", {logits}, {samples}, "mn", "", 7)->attrs.set("sample_size", int64_t{4});
  g.inputs = {x, a, logits};
  g.outputs = {yc, ym, samples};
  ASSERT_TRUE(infer_shapes(g).ok());
  EXPECT_EQ(q->type.to_string(), "uint8[n,3,h,8]");
  EXPECT_EQ(yc->type.to_string(), "int8[n,4,?,3]");
  EXPECT_EQ(ym->type.to_string(), "int32[b,m,5]");
  EXPECT_EQ(samples->type.to_string(), "int32[b,4]");
}

TEST(QuantizedLinear, Errors) {
  auto expect_error = [](const OpCall& call, const std::string& what) {
    Status st = run_err(call);
    EXPECT_TRUE(contains(st.message(), call.op_type + "_node") && contains(st.message(), what)) << st.message();
  };
  Tensor a = random_u8({4, 3}, 1), b = random_i8({3, 2}, 2);
  // Zero points must have their operand's dtype.
  expect_error({"MatMulInteger", {a, b, Tensor::scalar<int8_t>(0)}}, "a_zero_point is int8 but A is uint8");
  expect_error({"MatMulInteger", {a, b, Tensor::scalar<uint8_t>(0), Tensor::scalar<uint8_t>(0)}},
               "b_zero_point is uint8 but B is int8");
  expect_error({"MatMulInteger", {a, b, random_u8({3}, 3)}}, "one value per row");
  expect_error({"MatMulInteger", {a, b, Tensor(), random_i8({3}, 3)}}, "one value per column");
  expect_error({"MatMulInteger", {a, b, random_u8({4, 3}, 3)}}, "per row");
  expect_error({"MatMulInteger", {random_tensor(DType::kInt16, {4, 3}), b}}, "A must be int8 or uint8");
  expect_error({"MatMulInteger", {a, random_i8({4, 2}, 2)}}, "inner dims");
  Tensor f = Tensor::scalar<float>(0.1f), u = Tensor::scalar<uint8_t>(1), i8 = Tensor::scalar<int8_t>(1);
  expect_error({"QLinearMatMul", {a, f, i8, b, f, i8, f, u}}, "a_zero_point is int8 but a is uint8");
  expect_error({"QLinearMatMul", {a, f, u, b, f, i8, random_tensor(DType::kFloat32, {2}), u}}, "y_scale");
  expect_error({"QLinearMatMul", {a, u, u, b, f, i8, f, u}}, "a_scale must be a floating-point");
  expect_error({"QLinearMatMul", {a, f, u, b, f, i8, f, Tensor::scalar<int32_t>(0)}}, "y_zero_point");
  Tensor x = random_u8({1, 2, 4, 4}, 4), w = random_i8({3, 2, 2, 2}, 5);
  expect_error({"ConvInteger", {x, w, u, u}}, "w_zero_point is uint8 but w is int8");
  expect_error({"ConvInteger", {x, w, u, random_i8({2}, 6)}}, "w_zero_point");
  expect_error({"ConvInteger", {x, w, random_u8({2}, 6)}}, "x_zero_point");
  expect_error({"ConvInteger", {x, random_i8({3, 3, 2, 2}, 5)}}, "channels");
  expect_error({"QLinearConv", {x, f, u, w, f, i8, f, u, random_tensor(DType::kFloat32, {3})}}, "B must be int32");
  expect_error({"QLinearConv", {x, f, u, w, f, u, f, u}}, "w_zero_point is uint8 but w is int8");
  expect_error({"QLinearConv", {x, f, u, w, random_tensor(DType::kFloat32, {2}), i8, f, u}}, "w_scale");
  expect_error({"QLinearConv", {x, f, u, w, f, i8, f, u, random_tensor(DType::kInt32, {2})}}, "one value per output channel");
}

}  // namespace
}  // namespace kiln::test
