// kiln.QConv / kiln.QMatMul CPU kernels against naive loops, and the qdq-fusion pass on a small
// Q/DQ network: structure after the pass, and equal CPU outputs before and after.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "backends/cpu/quant_util.hpp"
#include "io/npy.hpp"
#include "onnx/importer.hpp"
#include "op_test_util.hpp"
#include "passes/pass.hpp"

namespace kiln::test {
namespace {

// Tensors start uninitialized: zero points are filled explicitly.
Tensor int8_zeros(Dims d) {
  Tensor t(DType::kInt8, std::move(d));
  std::fill(t.data<int8_t>(), t.data<int8_t>() + t.numel(), int8_t{0});
  return t;
}

Tensor scalar(float v) {
  Tensor t(DType::kFloat32, {});
  *t.data<float>() = v;
  return t;
}

// Positive per-channel scales in [0.01, 0.05).
Tensor scales(int64_t n, uint32_t seed) {
  Tensor t = random_tensor(DType::kFloat32, {n}, seed, 0.01, 0.05);
  return t;
}

struct Epi {
  const Tensor* bias = nullptr;
  const Tensor* z = nullptr;  // float or int8
  float z_scale = 0;
  bool relu = false;
  float y_scale = 0;  // > 0: int8 output
};

// The naive epilogue over acc values in Y's order; channel of element i = (i / inner) % m.
Tensor naive_epilogue(const std::vector<int64_t>& acc, const Dims& ydims, int64_t m, int64_t inner, float xs,
                      const Tensor& ws, const Epi& e) {
  auto wsv = ws.to_double_vector();
  std::vector<double> z = e.z ? e.z->to_double_vector() : std::vector<double>();
  if (e.z && e.z->dtype() == DType::kInt8)
    for (double& v : z) v *= e.z_scale;
  auto b = e.bias ? e.bias->to_double_vector() : std::vector<double>();
  Tensor y(e.y_scale > 0 ? DType::kInt8 : DType::kFloat32, ydims);
  for (size_t i = 0; i < acc.size(); ++i) {
    const size_t c = static_cast<size_t>((static_cast<int64_t>(i) / inner) % m);
    double v = static_cast<double>(acc[i]) * xs * wsv[wsv.size() == 1 ? 0 : c];
    if (!b.empty()) v += b[c];
    if (!z.empty()) v += z[i];
    if (e.relu) v = std::max(v, 0.0);
    if (e.y_scale > 0) y.data<int8_t>()[i] = cpu::quantize_value<int8_t>(v / e.y_scale, 0);
    else y.data<float>()[i] = static_cast<float>(v);
  }
  return y;
}

OpCall q_call(const char* op, const Tensor& x, float xs, const Tensor& w, const Tensor& ws, const Epi& e) {
  OpCall call{.op_type = op, .inputs = {x, scalar(xs), w, ws, e.bias ? *e.bias : Tensor()}, .domain = "kiln"};
  call.constant_inputs = {false, true, true, true, true, false, true, true};
  call.inputs.push_back(e.z ? *e.z : Tensor());
  call.inputs.push_back(e.z && e.z->dtype() == DType::kInt8 ? scalar(e.z_scale) : Tensor());
  call.inputs.push_back(e.y_scale > 0 ? scalar(e.y_scale) : Tensor());
  while (!call.inputs.back().defined()) call.inputs.pop_back();
  call.attrs.set("activation", std::string(e.relu ? "Relu" : ""));
  return call;
}

struct ConvCase {
  Dims x, w;
  int64_t stride, pad, group;
  bool bias, residual, int8_z, relu, int8_out;
};

void check_qconv(const ConvCase& c) {
  Tensor x = random_tensor(DType::kInt8, c.x, 1, -128, 128), w = random_tensor(DType::kInt8, c.w, 2, -128, 128);
  const int64_t n = c.x[0], cin = c.x[1], h = c.x[2], wd = c.x[3], m = c.w[0], kh = c.w[2], kw = c.w[3];
  const int64_t oh = (h + 2 * c.pad - kh) / c.stride + 1, ow = (wd + 2 * c.pad - kw) / c.stride + 1;
  const int64_t cg = cin / c.group, mg = m / c.group;
  std::vector<int64_t> acc;
  for (int64_t in = 0; in < n; ++in)
    for (int64_t om = 0; om < m; ++om)
      for (int64_t y = 0; y < oh; ++y)
        for (int64_t xo = 0; xo < ow; ++xo) {
          int64_t s = 0;
          const int64_t g = om / mg;
          for (int64_t ic = 0; ic < cg; ++ic)
            for (int64_t ky = 0; ky < kh; ++ky)
              for (int64_t kx = 0; kx < kw; ++kx) {
                const int64_t iy = y * c.stride + ky - c.pad, ix = xo * c.stride + kx - c.pad;
                if (iy < 0 || iy >= h || ix < 0 || ix >= wd) continue;
                s += int64_t{x.data<int8_t>()[((in * cin + g * cg + ic) * h + iy) * wd + ix]} *
                     w.data<int8_t>()[((om * cg + ic) * kh + ky) * kw + kx];
              }
          acc.push_back(s);
        }
  const Dims ydims{n, m, oh, ow};
  Tensor bias = random_tensor(DType::kFloat32, {m}, 3), ws = scales(m, 4);
  Tensor z = c.int8_z ? random_tensor(DType::kInt8, ydims, 5, -128, 128) : random_tensor(DType::kFloat32, ydims, 5);
  Epi e{c.bias ? &bias : nullptr, c.residual ? &z : nullptr, 0.03f, c.relu, c.int8_out ? 0.07f : 0.f};
  const float xs = 0.02f;
  Tensor expected = naive_epilogue(acc, ydims, m, oh * ow, xs, ws, e);
  OpCall call = q_call("QConv", x, xs, w, ws, e);
  call.attrs.set("strides", Dims{c.stride, c.stride});
  call.attrs.set("pads", Dims{c.pad, c.pad, c.pad, c.pad});
  call.attrs.set("group", c.group);
  auto r = run_op(call);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_TRUE(tensors_close((*r)[0], expected, 1e-6, 1e-6));
}

TEST(QConvOp, MatchesNaiveConvAndEpilogue) {
  const std::vector<ConvCase> cases = {
      {{2, 4, 7, 6}, {8, 4, 3, 3}, 1, 1, 1, true, true, false, true, false},
      {{2, 4, 7, 6}, {8, 4, 3, 3}, 1, 1, 1, true, true, true, true, true},
      {{1, 3, 9, 9}, {5, 3, 3, 3}, 2, 1, 1, false, false, false, false, true},
      {{1, 6, 5, 5}, {4, 3, 1, 1}, 1, 0, 2, true, false, false, false, false},
  };
  for (const auto& c : cases) check_qconv(c);
}

// (N, C, H, W) -> (N, H, W, C) or back (`to_nhwc` false), by index arithmetic.
Tensor swap_layout(const Tensor& t, bool to_nhwc) {
  const Dims& d = t.dims();
  const Dims out = to_nhwc ? Dims{d[0], d[2], d[3], d[1]} : Dims{d[0], d[3], d[1], d[2]};
  Tensor r(t.dtype(), out);
  const size_t es = dtype_size(t.dtype());
  const int64_t n = d[0], c = to_nhwc ? d[1] : d[3], h = to_nhwc ? d[2] : d[1], w = to_nhwc ? d[3] : d[2];
  for (int64_t i = 0; i < n; ++i)
    for (int64_t ch = 0; ch < c; ++ch)
      for (int64_t y = 0; y < h; ++y)
        for (int64_t x = 0; x < w; ++x) {
          const int64_t nchw = ((i * c + ch) * h + y) * w + x, nhwc = ((i * h + y) * w + x) * c + ch;
          const int64_t src = to_nhwc ? nchw : nhwc, dst = to_nhwc ? nhwc : nchw;
          std::memcpy(static_cast<char*>(r.raw_data()) + dst * es, static_cast<const char*>(t.raw_data()) + src * es, es);
        }
  return r;
}

// layout NHWC: X, Z and Y (N, H, W, C), W as in NCHW; the same values as the NCHW node.
TEST(QConvOp, NhwcLayoutMatchesNchw) {
  for (bool int8_z : {false, true}) {
    Tensor x = random_tensor(DType::kInt8, {2, 8, 6, 5}, 1, -128, 128), w = random_tensor(DType::kInt8, {4, 8, 3, 3}, 2, -128, 128);
    Tensor bias = random_tensor(DType::kFloat32, {4}, 3);
    Tensor z = int8_z ? random_tensor(DType::kInt8, {2, 4, 3, 3}, 5, -128, 128) : random_tensor(DType::kFloat32, {2, 4, 3, 3}, 5);
    Epi e{&bias, &z, 0.03f, true, int8_z ? 0.07f : 0.f};
    OpCall call = q_call("QConv", x, 0.02f, w, scales(4, 4), e);
    call.attrs.set("strides", Dims{2, 2});
    call.attrs.set("pads", Dims{1, 1, 1, 1});
    auto ref = run_op(call);
    ASSERT_TRUE(ref.ok()) << ref.status().message();
    call.attrs.set("layout", std::string("NHWC"));
    call.inputs[0] = swap_layout(x, true);
    call.inputs[5] = swap_layout(z, true);
    auto got = run_op(call);
    ASSERT_TRUE(got.ok()) << got.status().message();
    EXPECT_EQ((*got)[0].dims(), (Dims{2, 3, 3, 4}));
    EXPECT_TRUE(tensors_close(swap_layout((*got)[0], false), (*ref)[0], 0, 0));
    call.attrs.set("layout", std::string("NCWH"));
    auto bad = run_op(call);
    ASSERT_FALSE(bad.ok());
    EXPECT_NE(bad.status().message().find("layout"), std::string::npos) << bad.status().message();
  }
}

TEST(QMatMulOp, MatchesNaiveProduct) {
  for (bool int8_out : {false, true}) {
    Tensor x = random_tensor(DType::kInt8, {2, 3, 8}, 11, -128, 128), w = random_tensor(DType::kInt8, {12, 8}, 12, -128, 128);
    std::vector<int64_t> acc;
    for (int64_t r = 0; r < 6; ++r)
      for (int64_t j = 0; j < 12; ++j) {
        int64_t s = 0;
        for (int64_t k = 0; k < 8; ++k) s += int64_t{x.data<int8_t>()[r * 8 + k]} * w.data<int8_t>()[j * 8 + k];
        acc.push_back(s);
      }
    Tensor bias = random_tensor(DType::kFloat32, {12}, 13), ws = scales(12, 14);
    Tensor z = random_tensor(DType::kInt8, {2, 3, 12}, 15, -128, 128);
    Epi e{&bias, &z, 0.05f, true, int8_out ? 0.1f : 0.f};
    Tensor expected = naive_epilogue(acc, {2, 3, 12}, 12, 1, 0.03f, ws, e);
    auto r = run_op(q_call("QMatMul", x, 0.03f, w, ws, e));
    ASSERT_TRUE(r.ok()) << r.status().message();
    EXPECT_TRUE(tensors_close((*r)[0], expected, 1e-6, 1e-6));
  }
}

TEST(QConvOp, BadInputsAreErrorsNamingTheNode) {
  Tensor x = random_tensor(DType::kInt8, {1, 4, 5, 5}, 1, -10, 10), w = random_tensor(DType::kInt8, {4, 4, 1, 1}, 2, -10, 10);
  Epi e;
  OpCall call = q_call("QConv", x, 0.1f, w, scales(3, 1), e);  // 3 scales for 4 channels
  auto r = run_op(call);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("QConv_node"), std::string::npos) << r.status().message();
  call = q_call("QConv", x.cast(DType::kFloat32), 0.1f, w, scales(4, 1), e);  // float X
  EXPECT_FALSE(run_op(call).ok());
  call = q_call("QConv", x, 0.1f, w, scales(4, 1), e);
  call.attrs.set("activation", std::string("Sigmoid"));
  EXPECT_FALSE(run_op(call).ok());
}

// ---- the pass ----

struct Builder {
  GraphPtr g = std::make_shared<Graph>();
  int id = 0;
  uint32_t seed = 100;
  Value* op(const char* type, std::vector<Value*> ins, Attributes a = {}) {
    const std::string name = std::string(type) + std::to_string(id++);
    Value* y = g->add_value(name);
    Node* n = g->add_node(type, ins, {y}, name, "", 21);
    n->attrs = std::move(a);
    return y;
  }
  Value* c(const Tensor& t) { return g->add_constant("c" + std::to_string(id++), t); }
  Value* zp() { return c(int8_zeros({})); }
  Value* q(Value* x, float s) { return op("QuantizeLinear", {x, c(scalar(s)), zp()}); }
  Value* dq(Value* x, float s) { return op("DequantizeLinear", {x, c(scalar(s)), zp()}); }
  Value* qdq(Value* x, float s) { return dq(q(x, s), s); }
  // DequantizeLinear(int8 weights, per-channel scales along `axis`).
  Value* wdq(Dims d, int64_t axis) {
    Tensor s = scales(d[static_cast<size_t>(axis)], seed++);
    Attributes a;
    a.set("axis", axis);
    Tensor zps = int8_zeros({d[static_cast<size_t>(axis)]});
    return op("DequantizeLinear", {c(random_tensor(DType::kInt8, d, seed++, -127, 128)), c(s), c(zps)}, a);
  }
  Value* conv(Value* x, int64_t cin, int64_t cout, int64_t k, bool bias, int64_t group = 1) {
    Attributes a;
    a.set("pads", Dims{k / 2, k / 2, k / 2, k / 2});
    a.set("group", group);
    Value* b = bias ? c(random_tensor(DType::kFloat32, {cout}, seed++, -0.5, 0.5)) : nullptr;
    return op("Conv", {x, wdq({cout, cin / group, k, k}, 0), b}, a);
  }
};

// Stem conv+Relu requantized; a residual block (int8 residual) requantized; a 1x1 conv with float
// output; a grouped conv (not fused: CUDA INT8 runs group 1 only); pooling; MatMul + bias.
GraphPtr qdq_net() {
  Builder b;
  Graph& g = *b.g;
  Value* x = g.add_value("x", {DType::kFloat32, Shape::from_dims({2, 16, 8, 8})});
  g.inputs = {x};
  Value* h = b.qdq(b.op("Relu", {b.conv(b.qdq(x, 0.02f), 16, 16, 3, true)}), 0.05f);
  Value* a = b.op("Relu", {b.op("Add", {b.conv(h, 16, 16, 3, true), h})});
  Value* c3 = b.conv(b.qdq(a, 0.06f), 16, 16, 1, false);
  Value* grouped = b.conv(b.qdq(c3, 0.1f), 16, 16, 3, true, 2);
  Value* pooled = b.op("Flatten", {b.op("GlobalAveragePool", {grouped})});
  Value* mm = b.op("MatMul", {b.qdq(pooled, 0.02f), b.wdq({16, 12}, 1)});
  Value* out = b.op("Add", {mm, b.c(random_tensor(DType::kFloat32, {12}, 7))});
  g.outputs = {out};
  return b.g;
}

std::vector<Tensor> run_cpu(const GraphPtr& g, const Tensor& x) {
  EXPECT_TRUE(infer_shapes(*g).ok());
  auto exec = CpuExecutor::create(g);
  EXPECT_TRUE(exec.ok()) << exec.status().message();
  auto out = (*exec)->run({{"x", x}});
  EXPECT_TRUE(out.ok()) << out.status().message();
  return out.ok() ? *out : std::vector<Tensor>{};
}

// Shape inference, the clean-up passes, qdq-fusion, then `more` in order, run to a fixed point as the
// CUDA build does.
Status run_qdq_fusion(Graph& g, std::vector<std::unique_ptr<Pass>> more = {}) {
  KILN_RETURN_IF_ERROR(infer_shapes(g));
  PassManager pm;
  add_cleanup_passes(pm, false);
  pm.add(make_qdq_fusion_pass());
  for (auto& p : more) pm.add(std::move(p));
  return pm.run(g);
}

template <typename... P>
std::vector<std::unique_ptr<Pass>> passes(P... p) {
  std::vector<std::unique_ptr<Pass>> v;
  (v.push_back(std::move(p)), ...);
  return v;
}

std::map<std::string, int> op_counts(const Graph& g) {
  std::map<std::string, int> c;
  for (const auto& n : g.nodes()) c[n->op_type]++;
  return c;
}

TEST(QdqFusionPass, FusesConvChainsAndMatMulAndKeepsOutputs) {
  Tensor x = random_tensor(DType::kFloat32, {2, 16, 8, 8}, 99);
  auto before = run_cpu(qdq_net(), x);
  GraphPtr g = qdq_net();
  ASSERT_TRUE(run_qdq_fusion(*g, passes(make_dead_code_pass())).ok());
  auto counts = op_counts(*g);
  EXPECT_EQ(counts["QConv"], 3) << graph_to_text(*g);
  EXPECT_EQ(counts["QMatMul"], 1);
  EXPECT_EQ(counts["Conv"], 1);  // the grouped one
  EXPECT_EQ(counts["MatMul"], 0);
  EXPECT_EQ(counts["Relu"], 0);
  EXPECT_EQ(counts["Add"], 0);
  // Left: the input's and the pooled value's Q, the grouped conv's DQs (x, W).
  EXPECT_EQ(counts["QuantizeLinear"], 2) << graph_to_text(*g);
  EXPECT_EQ(counts["DequantizeLinear"], 2) << graph_to_text(*g);
  int int8_out = 0, int8_z = 0;
  for (const auto& n : g->nodes()) {
    if (n->op_type != "QConv") continue;
    int8_out += n->outputs[0]->type.dtype == DType::kInt8;
    int8_z += n->inputs.size() > 5 && n->inputs[5] && n->inputs[5]->type.dtype == DType::kInt8;
    EXPECT_EQ(n->inputs[0]->type.dtype, DType::kInt8);
  }
  EXPECT_EQ(int8_out, 3);  // the 1x1 conv requantizes for the grouped conv's input
  EXPECT_EQ(int8_z, 1);
  auto after = run_cpu(g, x);
  ASSERT_EQ(before.size(), after.size());
  EXPECT_TRUE(tensors_close(after[0], before[0], 1e-5, 1e-5));
}

// nhwc-layout after qdq-fusion: the QConvs (channels multiples of 4) run NHWC, the Transposes
// between them cancel (int8 passes NHWC from one to the next), and the outputs stay equal.
TEST(QdqFusionPass, NhwcLayoutKeepsTheInt8ChainNhwc) {
  Tensor x = random_tensor(DType::kFloat32, {2, 16, 8, 8}, 99);
  auto before = run_cpu(qdq_net(), x);
  GraphPtr g = qdq_net();
  ASSERT_TRUE(
      run_qdq_fusion(*g, passes(make_nhwc_layout_pass(), make_transpose_cancellation_pass(), make_dead_code_pass()))
          .ok());
  int nhwc = 0;
  for (const auto& n : g->nodes())
    if (n->op_type == "QConv") nhwc += n->attrs.s("layout", "NCHW") == "NHWC";
  EXPECT_EQ(nhwc, 3) << graph_to_text(*g);
  // One into the chain (the stem's int8 input), one out of it (to the grouped float Conv).
  EXPECT_EQ(op_counts(*g)["Transpose"], 2) << graph_to_text(*g);
  auto after = run_cpu(g, x);
  ASSERT_EQ(before.size(), after.size());
  EXPECT_TRUE(tensors_close(after[0], before[0], 1e-5, 1e-5));
}

// Two ResNet-style blocks whose float outputs feed both the next block's input QuantizeLinear
// and its residual Add (so the QConv writes float and a QuantizeLinear stays): with
// transpose-sinking the QuantizeLinear runs NHWC too, and Transposes are left only at the borders.
TEST(QdqFusionPass, ResidualQuantizeLinearStaysNhwc) {
  auto make = [] {
    Builder b;
    Graph& g = *b.g;
    Value* x = g.add_value("x", {DType::kFloat32, Shape::from_dims({2, 16, 6, 6})});
    g.inputs = {x};
    Value* a = b.op("Relu", {b.op("Add", {b.conv(b.qdq(x, 0.03f), 16, 16, 3, true), x})});
    Value* y = b.op("Relu", {b.op("Add", {b.conv(b.qdq(a, 0.05f), 16, 16, 3, true), a})});
    g.outputs = {y};
    return b.g;
  };
  Tensor x = random_tensor(DType::kFloat32, {2, 16, 6, 6}, 98);
  auto before = run_cpu(make(), x);
  GraphPtr g = make();
  ASSERT_TRUE(run_qdq_fusion(*g, passes(make_nhwc_layout_pass(), make_transpose_sinking_pass(),
                                        make_transpose_cancellation_pass(), make_dead_code_pass()))
                  .ok());
  auto counts = op_counts(*g);
  EXPECT_EQ(counts["QConv"], 2) << graph_to_text(*g);
  EXPECT_EQ(counts["QuantizeLinear"], 2) << graph_to_text(*g);
  // x to NHWC for the first QConv's X (after its QuantizeLinear) and Z, the output back to NCHW.
  EXPECT_EQ(counts["Transpose"], 3) << graph_to_text(*g);
  auto after = run_cpu(g, x);
  ASSERT_EQ(before.size(), after.size());
  // The float Conv's float sums over 144 products vs the QConv's exact integer sums.
  EXPECT_TRUE(tensors_close(after[0], before[0], 1e-4, 1e-4));
}

TEST(QdqFusionPass, LeavesAsymmetricAndUint8Alone) {
  Builder b;
  Graph& g = *b.g;
  Value* x = g.add_value("x", {DType::kFloat32, Shape::from_dims({1, 16, 6, 6})});
  g.inputs = {x};
  // uint8 activations with a zero point: not fused.
  Value* s = b.c(scalar(0.02f));
  Tensor zpu(DType::kUInt8, {});
  *zpu.data<uint8_t>() = 128;
  Value* zu = b.c(zpu);
  Value* xq = b.op("DequantizeLinear", {b.op("QuantizeLinear", {x, s, zu}), s, zu});
  g.outputs = {b.conv(xq, 16, 16, 3, true)};
  ASSERT_TRUE(run_qdq_fusion(g).ok());
  EXPECT_EQ(op_counts(g)["QConv"], 0);
  EXPECT_EQ(op_counts(g)["Conv"], 1);
  EXPECT_EQ(op_counts(g)["DequantizeLinear"], 2);  // the weights' DQ is not constant-folded
}

// Convs with fewer than 16 input channels and a small window (a 3x3 conv of an image) stay
// DequantizeLinear -> Conv: float16 runs them faster than the int8 kernels.
TEST(QdqFusionPass, LeavesConvsWithFewInputChannelsUnfused) {
  // (input channels, kernel, stride): fused with >= 16 channels, or with fewer where the window
  // holds 64-512 values and a stride s >= 2 keeps s*s*C <= 64 (qconv_int8_worthwhile: an RGB 7x7
  // stride-2 stem, 147 values; 15 x 3x3 stride 2); 3 x 3x3 (27 values), stride 1, and 15 x 7x7
  // (735 values) stay float.
  struct C { int64_t cin, k, stride; bool fused; };
  for (const C& c : {C{3, 3, 2, false}, C{3, 7, 2, true}, C{3, 7, 1, false}, C{15, 3, 2, true}, C{15, 7, 2, false},
                     C{16, 3, 1, true}}) {
    auto make = [&c] {
      Builder b;
      Graph& g = *b.g;
      Value* x = g.add_value("x", {DType::kFloat32, Shape::from_dims({1, c.cin, 9, 9})});
      g.inputs = {x};
      Value* y = b.conv(b.qdq(x, 0.02f), c.cin, 16, c.k, true);
      y->producer->attrs.set("strides", Dims{c.stride, c.stride});
      g.outputs = {b.op("Relu", {y})};
      return b.g;
    };
    Tensor x = random_tensor(DType::kFloat32, {1, c.cin, 9, 9}, 5);
    auto before = run_cpu(make(), x);
    GraphPtr g = make();
    ASSERT_TRUE(run_qdq_fusion(*g).ok());
    auto counts = op_counts(*g);
    const std::string what = std::to_string(c.cin) + " channels " + std::to_string(c.k) + "x" + std::to_string(c.k) +
                             " stride " + std::to_string(c.stride);
    EXPECT_EQ(counts["QConv"], c.fused ? 1 : 0) << what;
    EXPECT_EQ(counts["Conv"], c.fused ? 0 : 1) << what;
    EXPECT_EQ(counts["DequantizeLinear"], c.fused ? 0 : 2) << what;  // X and W
    auto after = run_cpu(g, x);
    ASSERT_EQ(after.size(), 1u);
    EXPECT_TRUE(tensors_close(after[0], before[0], 1e-5, 1e-5)) << what;
  }
}

// QuantizeLinear(Cast(float32 x -> float16), float16 scale) reads x with a float32 scale when it
// is the Cast's only reader (an --int8 plan's input Cast); the int8 values stay within one step
// (rounding x to float16 first can move a value near a step's midpoint). A Cast read by others stays.
TEST(QdqFusionPass, QuantizeReadsTheFloat32InputOfItsCast) {
  for (bool shared : {false, true}) {
    auto g = std::make_shared<Graph>();
    Value* x = g->add_value("x", {DType::kFloat32, Shape::from_dims({2, 3, 5, 7})});
    g->inputs = {x};
    Value* h = g->add_value("h");
    Node* cast = g->add_node("Cast", {x}, {h}, "cast", "", 21);
    cast->attrs.set("to", int64_t{10});  // ONNX FLOAT16
    Value* s = g->add_constant("s", Tensor::scalar<float>(0.0173f).cast(DType::kFloat16));
    Value* zp = g->add_constant("zp", Tensor::zeros(DType::kInt8, {}));
    Value* q = g->add_value("q");
    g->add_node("QuantizeLinear", {h, s, zp}, {q}, "quantize", "", 21);
    g->outputs = {q};
    if (shared) {
      Value* r = g->add_value("r");
      g->add_node("Relu", {h}, {r}, "relu", "", 21);
      g->outputs.push_back(r);
    }
    Tensor in = random_tensor(DType::kFloat32, {2, 3, 5, 7}, 9, -2.5, 2.5);
    auto before = run_cpu(g, in);
    ASSERT_TRUE(run_qdq_fusion(*g).ok());
    const Node* qn = nullptr;
    for (const auto& n : g->nodes())
      if (n->op_type == "QuantizeLinear") qn = n.get();
    ASSERT_NE(qn, nullptr);
    EXPECT_EQ(qn->inputs[0]->name, shared ? "h" : "x");
    EXPECT_EQ(qn->inputs[1]->type.dtype, shared ? DType::kFloat16 : DType::kFloat32);
    EXPECT_EQ(op_counts(*g)["Cast"], shared ? 1 : 0);
    auto after = run_cpu(g, in);
    ASSERT_EQ(after.size(), before.size());
    const int8_t *a = after[0].data<int8_t>(), *b = before[0].data<int8_t>();
    for (int64_t i = 0; i < after[0].numel(); ++i) EXPECT_LE(std::abs(int(a[i]) - int(b[i])), 1) << i;
  }
}

// Q(DQ(q, s), s) folds to q; a 3-D MatMul with Relu and a Gemm (transB 0, bias C) fuse; a MaxPool
// between Q/DQ pairs of different scales stays float; a Concat of one scale runs on int8.
TEST(QdqFusionPass, FoldsRequantizeAndFusesMatMulAndGemm) {
  auto make = [] {
    Builder b;
    Graph& g = *b.g;
    Value* x = g.add_value("x", {DType::kFloat32, Shape::from_dims({2, 3, 8})});
    Value* y = g.add_value("y", {DType::kFloat32, Shape::from_dims({4, 8})});
    Value* p = g.add_value("p", {DType::kFloat32, Shape::from_dims({1, 4, 6, 6})});
    g.inputs = {x, y, p};
    Value* xq = b.dq(b.q(b.qdq(x, 0.02f), 0.02f), 0.02f);
    Value* mm = b.op("Relu", {b.op("MatMul", {xq, b.wdq({8, 12}, 1)})});
    Attributes ga;
    ga.set("transB", int64_t{0});
    Value* gemm = b.op("Gemm", {b.qdq(y, 0.03f), b.wdq({8, 16}, 1), b.c(random_tensor(DType::kFloat32, {16}, 8))}, ga);
    Attributes pa;
    pa.set("kernel_shape", Dims{2, 2});
    Value* pool = b.qdq(b.op("MaxPool", {b.qdq(p, 0.05f)}, pa), 0.1f);
    // Concat of two DQs of one scale, requantized at that scale: runs on int8.
    Attributes ca;
    ca.set("axis", int64_t{1});
    Value* cat = b.dq(b.q(b.op("Concat", {b.qdq(p, 0.04f), b.qdq(b.op("Relu", {p}), 0.04f)}, ca), 0.04f), 0.04f);
    g.outputs = {mm, gemm, pool, cat};
    return b.g;
  };
  Tensor x = random_tensor(DType::kFloat32, {2, 3, 8}, 1), y = random_tensor(DType::kFloat32, {4, 8}, 2),
         p = random_tensor(DType::kFloat32, {1, 4, 6, 6}, 3);
  auto run = [&](const GraphPtr& g) {
    EXPECT_TRUE(infer_shapes(*g).ok());
    auto exec = CpuExecutor::create(g);
    EXPECT_TRUE(exec.ok());
    auto out = (*exec)->run({{"x", x}, {"y", y}, {"p", p}});
    EXPECT_TRUE(out.ok()) << out.status().message();
    return out.ok() ? *out : std::vector<Tensor>{};
  };
  auto before = run(make());
  GraphPtr g = make();
  ASSERT_TRUE(run_qdq_fusion(*g, passes(make_dead_code_pass())).ok());
  auto counts = op_counts(*g);
  EXPECT_EQ(counts["QMatMul"], 2) << graph_to_text(*g);
  EXPECT_EQ(counts["MatMul"] + counts["Gemm"], 0);
  // x (the repeated Q folded), y, both around the pool, the two Concat inputs' (its own folded).
  EXPECT_EQ(counts["QuantizeLinear"], 6);
  EXPECT_EQ(counts["MaxPool"], 1);
  for (const auto& n : g->nodes())
    if (n->op_type == "Concat") { EXPECT_EQ(n->outputs[0]->type.dtype, DType::kInt8); }
  auto after = run(g);
  ASSERT_EQ(after.size(), 4u);
  for (size_t i = 0; i < 4; ++i) EXPECT_TRUE(tensors_close(after[i], before[i], 1e-5, 1e-5)) << i;
}

// The PyTorch fake-quant CNN (tests/models/make_qdq_cnn.py): every Conv and Gemm fuses but the
// 3-channel stem (DequantizeLinear -> Conv, float is faster there), and the fused graph's CPU
// output still matches PyTorch.
TEST(QdqFusionPass, FusesTheExportedQatCnn) {
  const std::string dir = std::string(KILN_SOURCE_DIR) + "/tests/models/data/qdq_cnn/";
  auto model = import_onnx_file(dir + "model.onnx");
  ASSERT_TRUE(model.ok()) << model.status().message();
  auto x = load_npy(dir + "input_0.npy");
  auto expected = load_npy(dir + "expected_0.npy");
  ASSERT_TRUE(x.ok() && expected.ok());
  Graph& g = *model->graph;
  ASSERT_TRUE(run_qdq_fusion(g, passes(make_dead_code_pass())).ok());
  auto counts = op_counts(g);
  EXPECT_EQ(counts["QConv"], 3) << graph_to_text(g);
  EXPECT_EQ(counts["QMatMul"], 2);
  EXPECT_EQ(counts["Conv"], 1);  // the stem, and its Relu
  EXPECT_EQ(counts["Relu"], 1);
  EXPECT_EQ(counts["Gemm"] + counts["Add"], 0);
  EXPECT_EQ(counts["QuantizeLinear"], 3);    // input, the stem's output, before fc1
  EXPECT_EQ(counts["DequantizeLinear"], 3);  // the stem's input and weights, before the global pool
  EXPECT_EQ(counts["MaxPool"], 1);           // on int8: its Q/DQ pair had one scale
  for (const auto& n : g.nodes())
    if (n->op_type == "Conv") {
      EXPECT_EQ(n->inputs[1]->type.shape[1].value, 3);
      ASSERT_NE(n->inputs[0]->producer, nullptr);
      EXPECT_EQ(n->inputs[0]->producer->op_type, "DequantizeLinear");
    }
  for (const auto& n : g.nodes())
    if (n->op_type == "MaxPool") { EXPECT_EQ(n->outputs[0]->type.dtype, DType::kInt8); }
  auto exec = CpuExecutor::create(model->graph);
  ASSERT_TRUE(exec.ok()) << exec.status().message();
  auto out = (*exec)->run({{g.inputs[0]->name, *x}});
  ASSERT_TRUE(out.ok()) << out.status().message();
  EXPECT_LE(rel_l2((*out)[0], *expected), 1e-4);
}

// With --fp16 the precision pass runs before the CUDA passes: the Q/DQ layers must still fuse, with
// float16 scales and outputs.
TEST(QdqFusionPass, FusesAfterFp16Precision) {
  const std::string dir = std::string(KILN_SOURCE_DIR) + "/tests/models/data/qdq_cnn/";
  auto model = import_onnx_file(dir + "model.onnx");
  ASSERT_TRUE(model.ok()) << model.status().message();
  Graph& g = *model->graph;
  ASSERT_TRUE(infer_shapes(g).ok());
  PassManager pm;
  add_cleanup_passes(pm, false);
  ASSERT_TRUE(pm.run(g).ok());
  PassManagerOptions once;
  once.max_iterations = 1;
  PassManager precision(once);
  precision.add(make_precision_pass(DType::kFloat16));
  ASSERT_TRUE(precision.run(g).ok());
  ASSERT_TRUE(pm.run(g).ok());
  PassManager cuda;
  cuda.add(make_qdq_fusion_pass());
  cuda.add(make_dead_code_pass());
  ASSERT_TRUE(cuda.run(g).ok());
  auto counts = op_counts(g);
  EXPECT_EQ(counts["QConv"], 3) << graph_to_text(g);  // all but the 3-channel stem
  EXPECT_EQ(counts["QMatMul"], 2);
}

}  // namespace
}  // namespace kiln::test
