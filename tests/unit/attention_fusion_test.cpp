// kiln.Attention (CPU kernel vs a naive loop over strided views; attribute errors) and the
// attention-fusion pass on small BERT- and ViT-style graphs (same CPU outputs before and after,
// head split/merge Transposes and Slices absorbed) and what it must leave alone.
#include <cmath>

#include "ops/attention.hpp"
#include "passes_test_util.hpp"

namespace kiln::test {
namespace {

using passtest::attrs;
using passtest::G;

// Q/K/V [B, S, H, d] (BERT's reshaped projections), mask [B, 1, 1, S] additive, or bool with a fill.
std::vector<double> naive_attention(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor* mask,
                                    double scale, std::optional<double> fill) {
  const int64_t b = q.dim(0), s = q.dim(1), h = q.dim(2), d = q.dim(3);
  Tensor qd = q.cast(DType::kFloat64), kd = k.cast(DType::kFloat64), vd = v.cast(DType::kFloat64);
  Tensor md = mask ? mask->cast(DType::kFloat64) : Tensor();
  auto at = [&](const Tensor& t, int64_t bi, int64_t si, int64_t hi, int64_t c) {
    return t.data<double>()[((bi * s + si) * h + hi) * d + c];
  };
  std::vector<double> y(static_cast<size_t>(q.numel()));  // [B, S, H, d]
  for (int64_t bi = 0; bi < b; ++bi)
    for (int64_t hi = 0; hi < h; ++hi)
      for (int64_t i = 0; i < s; ++i) {
        std::vector<double> z(static_cast<size_t>(s));
        double mx = -INFINITY, sum = 0;
        for (int64_t j = 0; j < s; ++j) {
          double dot = 0;
          for (int64_t c = 0; c < d; ++c) dot += at(qd, bi, i, hi, c) * at(kd, bi, j, hi, c);
          double zz = dot * scale;
          if (mask && fill) zz = md.data<double>()[bi * s + j] != 0 ? *fill : zz;
          else if (mask) zz += md.data<double>()[bi * s + j];
          z[static_cast<size_t>(j)] = zz;
          mx = std::max(mx, zz);
        }
        for (double zz : z) sum += std::exp(zz - mx);
        for (int64_t c = 0; c < d; ++c) {
          double acc = 0;
          for (int64_t j = 0; j < s; ++j) acc += std::exp(z[static_cast<size_t>(j)] - mx) / sum * at(vd, bi, j, hi, c);
          y[static_cast<size_t>(((bi * s + i) * h + hi) * d + c)] = acc;
        }
      }
  return y;
}

OpCall attention_call(DType t, int64_t b, int64_t s, int64_t h, int64_t d, float scale) {
  OpCall call{.op_type = "Attention",
              .inputs = {random_tensor(t, {b, s, h, d}, 1), random_tensor(t, {b, s, h, d}, 2),
                         random_tensor(t, {b, s, h, d}, 3)},
              .domain = "kiln"};
  AttentionGeometry g;
  g.batch = b, g.heads = h, g.sq = s, g.sk = s, g.d = d, g.dv = d;
  g.q = g.k = g.v = AttentionView{0, {s * h * d, d, h * d, 1}};
  g.out = AttentionView{0, {s * h * d, d, h * d, 1}};
  g.out_shape = {b, s, h, d};
  g.scale = scale;
  set_attention_attrs(call.attrs, g);
  return call;
}

TEST(AttentionOp, StridedViewsMatchNaive) {
  for (DType t : {DType::kFloat32, DType::kFloat16, DType::kBFloat16})
    for (int mode = 0; mode < 3; ++mode) {  // no mask, additive mask, bool mask with fill
      SCOPED_TRACE(std::string(dtype_name(t)) + " mode " + std::to_string(mode));
      OpCall call = attention_call(t, 2, 5, 3, 4, 0.5f);
      std::optional<double> fill;
      if (mode == 1) call.inputs.push_back(random_tensor(t, {2, 1, 1, 5}, 4, -3, 3));
      if (mode == 2) {
        Tensor m(DType::kBool, {2, 1, 1, 5});
        for (int64_t j = 0; j < 10; ++j) m.data<bool>()[j] = j % 3 == 1;
        call.inputs.push_back(m);
        call.attrs.set("mask_fill", -7.f);
        fill = -7.0;
      }
      auto out = run_op(call);
      ASSERT_TRUE(out.ok()) << out.status().message();
      auto want = naive_attention(call.inputs[0], call.inputs[1], call.inputs[2], mode ? &call.inputs[3] : nullptr,
                                  0.5, fill);
      Tensor y = (*out)[0].cast(DType::kFloat64);
      ASSERT_EQ(y.dims(), (Dims{2, 5, 3, 4}));
      const double tol = t == DType::kFloat32 ? 1e-5 : t == DType::kFloat16 ? 3e-3 : 2e-2;
      for (size_t i = 0; i < want.size(); ++i) EXPECT_NEAR(y.data<double>()[i], want[i], tol) << i;
    }
}

TEST(AttentionOp, FullyMaskedRowsNaNOrZero) {
  for (int64_t guard : {0, 1}) {
    OpCall call = attention_call(DType::kFloat32, 1, 3, 1, 2, 1.f);
    Tensor m = Tensor::from_vector<float>({1, 1, 1, 3}, {-INFINITY, -INFINITY, -INFINITY});
    call.inputs.push_back(m);
    call.attrs.set("nan_to_zero", guard);
    auto out = run_op(call);
    ASSERT_TRUE(out.ok()) << out.status().message();
    for (int64_t i = 0; i < (*out)[0].numel(); ++i) {
      float v = (*out)[0].data<float>()[i];
      if (guard) EXPECT_EQ(v, 0.f);
      else EXPECT_TRUE(std::isnan(v));
    }
  }
}

TEST(AttentionOp, BadAttributesNameTheNode) {
  OpCall call = attention_call(DType::kFloat32, 1, 3, 2, 4, 1.f);
  call.attrs.set("dims", std::vector<int64_t>{1, 2, 3, 3, 4});
  auto r = run_op(call);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("Attention_node"), std::string::npos) << r.status().message();
  call = attention_call(DType::kFloat32, 1, 3, 2, 4, 1.f);
  call.attrs.set("q_view", std::vector<int64_t>{5, 24, 4, 8, 1});  // past the end of Q
  EXPECT_FALSE(run_op(call).ok());
  call = attention_call(DType::kFloat32, 1, 3, 2, 4, 1.f);
  call.attrs.set("out_strides", std::vector<int64_t>{24, 4, 4, 1});  // rows overlap
  EXPECT_FALSE(run_op(call).ok());
  call = attention_call(DType::kFloat32, 1, 3, 2, 4, 1.f);
  call.inputs.push_back(random_tensor(DType::kFloat32, {3, 2}, 5));  // mask does not broadcast
  EXPECT_FALSE(run_op(call).ok());
}

// BERT (PyTorch 2 SDPA export): x [2, 5, 16], 2 heads of 8; Q, K^T each scaled by c; additive
// mask [2, 1, 1, 5]; IsNaN/Where guard; head merge Transpose + Reshape. `variant` 1: scale as a
// Div of the scores (PyTorch 1.13), 2: masked_fill Where(bool mask, -1e4, scores), no guard.
G bert_graph(int variant, int64_t d = 8) {
  G m;
  const int64_t e = 2 * d;
  Value* x = m.input("x", {2, 5, e});
  Value* mask = variant == 2 ? m.input("mask", {2, 1, 1, 5}, DType::kBool) : m.input("mask", {2, 1, 1, 5});
  if (variant == 2) {
    Tensor mb(DType::kBool, {2, 1, 1, 5});
    for (int64_t j = 0; j < 10; ++j) mb.data<bool>()[j] = j % 4 == 3;
    m.feeds["mask"] = mb;
  }
  Value* heads = m.ints("heads", {2, 5, 2, d});
  Value* proj[3];
  const char* names[3] = {"q", "k", "v"};
  for (int i = 0; i < 3; ++i) {
    std::string n = names[i];
    Value* mm = m.op("MatMul", {x, m.random_const("w" + n, {e, e})}, n + "_mm");
    Value* add = m.op("Add", {m.random_const("b" + n, {e}), mm}, n + "_add");
    proj[i] = m.op("Reshape", {add, heads}, n + "_heads");
  }
  const float c = std::sqrt(1.f / std::sqrt(static_cast<float>(d)));
  Value* q = m.op("Transpose", {proj[0]}, "q_t", attrs({{"perm", std::vector<int64_t>{0, 2, 1, 3}}}));
  Value* kt = m.op("Transpose", {proj[1]}, "k_t", attrs({{"perm", std::vector<int64_t>{0, 2, 3, 1}}}));
  Value* v = m.op("Transpose", {proj[2]}, "v_t", attrs({{"perm", std::vector<int64_t>{0, 2, 1, 3}}}));
  if (variant == 0) {
    q = m.op("Mul", {q, m.scalar("cq", c)}, "q_scale");
    kt = m.op("Mul", {kt, m.scalar("ck", c)}, "k_scale");
  }
  Value* s = m.op("MatMul", {q, kt}, "scores");
  if (variant != 0) s = m.op("Div", {s, m.scalar("sqrt_d", std::sqrt(static_cast<float>(d)))}, "div");
  if (variant == 2) s = m.op("Where", {mask, m.scalar("fill", -1e4f), s}, "fill_mask");
  else s = m.op("Add", {s, mask}, "add_mask");
  Value* p = m.op("Softmax", {s}, "softmax", attrs({{"axis", int64_t{-1}}}));
  if (variant == 0) {
    Value* nan = m.op("IsNaN", {p}, "isnan");
    p = m.op("Where", {nan, m.scalar("zero", 0.f), p}, "guard");
  }
  Value* o = m.op("MatMul", {p, v}, "context");
  o = m.op("Transpose", {o}, "merge", attrs({{"perm", std::vector<int64_t>{0, 2, 1, 3}}}));
  Value* y = m.op("Reshape", {o, m.ints("flat", {2, 5, e})}, "y");
  m.g->outputs = {y};
  return m;
}

// torchvision ViT (PyTorch 1.13 nn.MultiheadAttention): x [S 5, B 2, 16], packed in_proj, Slices,
// [S, B*H, d] Reshapes, 3-D batched MatMuls, Q divided by sqrt(d), output Transpose + Reshape.
G vit_graph() {
  G m;
  Value* x = m.input("x", {5, 2, 16});
  Value* qkv = m.op("MatMul", {x, m.random_const("w", {16, 48})}, "in_proj");
  Value* part[3];
  for (int i = 0; i < 3; ++i) {
    std::string n = std::to_string(i);
    Value* sl = m.op("Slice", {qkv, m.ints("st" + n, {16 * i}), m.ints("en" + n, {16 * (i + 1)}), m.ints("ax" + n, {-1})},
                     "slice" + n);
    part[i] = m.op("Reshape", {sl, m.ints("sh" + n, {5, 4, 8})}, "heads" + n);
  }
  Value* q = m.op("Transpose", {part[0]}, "q_t", attrs({{"perm", std::vector<int64_t>{1, 0, 2}}}));
  q = m.op("Div", {q, m.scalar("sqrt_d", std::sqrt(8.f))}, "q_scale");
  Value* kt = m.op("Transpose", {part[1]}, "k_t", attrs({{"perm", std::vector<int64_t>{1, 2, 0}}}));
  Value* v = m.op("Transpose", {part[2]}, "v_t", attrs({{"perm", std::vector<int64_t>{1, 0, 2}}}));
  Value* s = m.op("MatMul", {q, kt}, "scores");
  Value* p = m.op("Softmax", {s}, "softmax", attrs({{"axis", int64_t{-1}}}));
  Value* o = m.op("MatMul", {p, v}, "context");
  o = m.op("Transpose", {o}, "merge", attrs({{"perm", std::vector<int64_t>{1, 0, 2}}}));
  Value* y = m.op("Reshape", {o, m.ints("flat", {10, 16})}, "y");
  m.g->outputs = {y};
  return m;
}

TEST(AttentionFusion, BertVariantsFuseKeepingOutputs) {
  // The Q/K scales are read through (and then dead), not listed.
  const std::vector<std::string> fused_names = {
      "scores:MatMul,add_mask:Add,softmax:Softmax,isnan:IsNaN,guard:Where,context:MatMul,merge:Transpose",
      "scores:MatMul,div:Div,add_mask:Add,softmax:Softmax,context:MatMul,merge:Transpose",
      "scores:MatMul,div:Div,fill_mask:Where,softmax:Softmax,context:MatMul,merge:Transpose"};
  for (int variant : {0, 1, 2}) {
    SCOPED_TRACE("variant " + std::to_string(variant));
    GraphPtr g = passtest::check_before_after([&] { return bert_graph(variant); },
                                              passtest::with_dce([] { return make_attention_fusion_pass(true); }));
    ASSERT_EQ(passtest::count(*g, "Attention"), 1);
    EXPECT_EQ(passtest::count(*g, "Transpose"), 0);
    EXPECT_EQ(passtest::count(*g, "Softmax"), 0);
    for (const auto& n : g->nodes()) {
      if (n->op_type != "Attention") continue;
      EXPECT_EQ(n->attrs.s(kFusedAttr), fused_names[static_cast<size_t>(variant)]);
      EXPECT_NEAR(n->attrs.f("scale"), 1 / std::sqrt(8.0), 1e-6);
      EXPECT_EQ(n->attrs.i("nan_to_zero"), variant == 0 ? 1 : 0);
      EXPECT_EQ(n->attrs.has("mask_fill"), variant == 2);
      // Q, K and V are read from the projections' Add outputs through strides.
      EXPECT_EQ(n->inputs[0]->name, "q_add");
      EXPECT_EQ(n->inputs[1]->name, "k_add");
      EXPECT_EQ(n->inputs[2]->name, "v_add");
      EXPECT_EQ(n->attrs.ints("q_view"), (std::vector<int64_t>{0, 80, 8, 16, 1}));
      EXPECT_EQ(n->attrs.ints("out_strides"), (std::vector<int64_t>{80, 8, 16, 1}));
    }
  }
}

TEST(AttentionFusion, VitPackedSlicesFuseKeepingOutputs) {
  GraphPtr g = passtest::check_before_after(vit_graph, passtest::with_dce([] { return make_attention_fusion_pass(true); }));
  ASSERT_EQ(passtest::count(*g, "Attention"), 1);
  EXPECT_EQ(passtest::count(*g, "Transpose"), 0);
  EXPECT_EQ(passtest::count(*g, "Slice"), 0);
  for (const auto& n : g->nodes()) {
    if (n->op_type != "Attention") continue;
    EXPECT_EQ(n->inputs[0]->name, "in_proj");
    EXPECT_EQ(n->inputs[1]->name, "in_proj");
    // [S, B*H, d] split back into B 2, H 2: strides over the packed [5, 2, 48] in_proj output.
    EXPECT_EQ(n->attrs.ints("dims"), (std::vector<int64_t>{2, 2, 5, 5, 8, 8}));
    EXPECT_EQ(n->attrs.ints("k_view"), (std::vector<int64_t>{16, 48, 8, 96, 1}));
    EXPECT_EQ(n->attrs.ints("out_strides"), (std::vector<int64_t>{16, 8, 32, 1}));
    EXPECT_EQ(n->attrs.ints("out_shape"), (std::vector<int64_t>{5, 4, 8}));
  }
}

TEST(AttentionFusion, LeavesWhatItCannotFuse) {
  auto fused = [](G m) {
    EXPECT_TRUE(infer_shapes(*m.g).ok());
    auto changed = make_attention_fusion_pass(true)->run(*m.g);
    EXPECT_TRUE(changed.ok());
    return changed.ok() && *changed;
  };
  // float32 without asking for it (the CUDA pipeline's default).
  G f32 = bert_graph(1);
  ASSERT_TRUE(infer_shapes(*f32.g).ok());
  auto changed = make_attention_fusion_pass()->run(*f32.g);
  ASSERT_TRUE(changed.ok());
  EXPECT_FALSE(*changed);
  // Head dim 130: more than the CUDA kernels take.
  EXPECT_FALSE(fused(bert_graph(1, 130)));
  // The scores are also a graph output.
  G shared = bert_graph(1);
  shared.g->outputs.push_back(shared.g->find_value("scores"));
  EXPECT_FALSE(fused(std::move(shared)));
  // Softmax over another axis.
  G axis = bert_graph(1);
  for (const auto& n : axis.g->nodes())
    if (n->op_type == "Softmax") n->attrs.set("axis", int64_t{2});
  EXPECT_FALSE(fused(std::move(axis)));
}

}  // namespace
}  // namespace kiln::test
