// Small transformer graphs shared by the pass tests (tests/unit/vit_graph_passes_test.cpp) and the
// CUDA tests (tests/gpu/xformer_test.cpp): ViT's patch embedding, PyTorch's batch-first
// nn.MultiheadAttention export and BERT's self-attention, with random weights and feeds.
#pragma once

#include "passes_test_util.hpp"

namespace kiln::xformer_graphs {

using passtest::attrs;
using passtest::G;

inline Attributes conv_attrs(int64_t k, int64_t s, std::vector<int64_t> pads = {0, 0, 0, 0}, int64_t group = 1) {
  return attrs({{"kernel_shape", std::vector<int64_t>{k, k}},
                {"strides", std::vector<int64_t>{s, s}},
                {"pads", std::move(pads)},
                {"group", group}});
}

// ViT's patch embedding: Conv(k = stride) -> Reshape [N, O, P] -> Transpose [0, 2, 1]; x
// [2, 3, 8, 12] (`scale` times larger in H and W), O = 5 (`o`), kernel 4 (4 * `scale`).
inline G patch_embedding(bool with_bias, bool flatten_transpose, DType t = DType::kFloat32, int64_t scale = 1,
                         int64_t o = 5) {
  G m;
  const int64_t k = 4 * scale;
  Value* x = m.input("x", {2, 3, 8 * scale, 12 * scale}, t);
  Value* w = m.constant("w", test::random_tensor(t, {o, 3, k, k}, 11));
  std::vector<Value*> ins{x, w};
  if (with_bias) ins.push_back(m.constant("b", test::random_tensor(t, {o}, 12)));
  Value* y = m.op("Conv", ins, "conv", conv_attrs(k, k));
  if (flatten_transpose) {
    Value* r = m.op("Reshape", {y, m.ints("shape", {2, o, 6})}, "flat");
    y = m.op("Transpose", {r}, "tokens", attrs({{"perm", std::vector<int64_t>{0, 2, 1}}}));
  }
  m.g->outputs = {y};
  return m;
}

// nn.MultiheadAttention(batch_first=True) as exported: x [B,S,E] -> Transpose [S,B,E] -> in_proj
// (packed QKV) -> head split views -> attention -> Transpose/Reshape [S*B,E] -> out_proj (Gemm) ->
// Reshape [S,B,E] -> Transpose [B,S,E] -> + x.
inline G batch_first_mha(DType t) {
  const int64_t b = 2, s = 5, h = 2, d = 4, e = h * d;
  G m;
  Value* x = m.input("x", {b, s, e}, t);
  auto w = [&](const std::string& name, Dims dims) { return m.constant(name, test::random_tensor(t, dims, m.seed++, -0.5, 0.5)); };
  auto perm = [](std::vector<int64_t> p) { return attrs({{"perm", std::move(p)}}); };
  Value* xt = m.op("Transpose", {x}, "to_sbe", perm({1, 0, 2}));
  Value* qkv = m.op("MatMul", {xt, w("w_in", {e, 3 * e})}, "in_proj");
  qkv = m.op("Add", {qkv, w("b_in", {3 * e})}, "in_proj_bias");
  // [S,B,3E] -> [S,B,3,E] -> [3,S,B,E] -> q/k/v [S,B,E] -> [S,B*H,d] -> [B*H,S,d]
  Value* split = m.op("Reshape", {qkv, m.ints("split_shape", {s, b, 3, e})}, "split");
  Value* moved = m.op("Transpose", {split}, "qkv_first", perm({2, 0, 1, 3}));
  Value* heads[3];
  for (int i = 0; i < 3; ++i) {
    const std::string n = "qkv" + std::to_string(i);
    Value* one = m.op("Gather", {moved, m.constant(n + "_index", Tensor::scalar<int64_t>(i))}, n);
    Value* r = m.op("Reshape", {one, m.ints(n + "_heads", {s, b * h, d})}, n + "_heads_view");
    heads[i] = m.op("Transpose", {r}, n + "_bh_first", perm({1, 0, 2}));
  }
  Value* kt = m.op("Transpose", {heads[1]}, "k_t", perm({0, 2, 1}));
  Value* scores = m.op("MatMul", {heads[0], kt}, "scores");
  scores = m.op("Mul", {scores, m.constant("scale", Tensor::scalar<float>(0.5f).cast(t))}, "scale_scores");
  Value* p = m.op("Softmax", {scores}, "softmax", attrs({{"axis", int64_t{-1}}}));
  Value* o = m.op("MatMul", {p, heads[2]}, "context");                 // [B*H, S, d]
  o = m.op("Transpose", {o}, "context_sbh", perm({1, 0, 2}));         // [S, B*H, d]
  o = m.op("Reshape", {o, m.ints("rows_shape", {s * b, e})}, "rows");  // [S*B, E]
  o = m.op("Gemm", {o, w("w_out", {e, e}), w("b_out", {e})}, "out_proj", attrs({{"transB", int64_t{1}}}));
  o = m.op("Reshape", {o, m.ints("sbe_shape", {s, b, e})}, "sbe");
  o = m.op("Transpose", {o}, "to_bse", perm({1, 0, 2}));
  m.g->outputs = {m.op("Add", {o, x}, "residual")};
  return m;
}

// BERT's self-attention: separate query/key/value projections of one input, head split
// Reshape [B,S,H,d] + Transpose, scaled scores, Softmax, context, head merge.
// `k_is_output`: the key projection is also a graph output (it cannot be merged).
inline G bert_attention(DType t, bool k_is_output) {
  const int64_t b = 2, s = 5, h = 2, d = 4, e = h * d;
  G m;
  Value* x = m.input("x", {b, s, e}, t);
  auto w = [&](const std::string& name, Dims dims) { return m.constant(name, test::random_tensor(t, dims, m.seed++, -0.5, 0.5)); };
  auto perm = [](std::vector<int64_t> p) { return attrs({{"perm", std::move(p)}}); };
  Value* proj[3];
  const char* names[3] = {"q", "k", "v"};
  for (int i = 0; i < 3; ++i) {
    const std::string n = names[i];
    Value* y = m.op("MatMul", {x, w(n + "_w", {e, e})}, n + "_mm");
    proj[i] = m.op("Add", {y, w(n + "_b", {e})}, n);
    Value* r = m.op("Reshape", {proj[i], m.ints(n + "_shape", {b, s, h, d})}, n + "_heads");
    proj[i] = m.op("Transpose", {r}, n + "_bhsd", perm(i == 1 ? std::vector<int64_t>{0, 2, 3, 1} : std::vector<int64_t>{0, 2, 1, 3}));
  }
  Value* scores = m.op("MatMul", {proj[0], proj[1]}, "scores");
  scores = m.op("Div", {scores, m.constant("scale", Tensor::scalar<float>(2.f).cast(t))}, "scale_scores");
  Value* p = m.op("Softmax", {scores}, "softmax", attrs({{"axis", int64_t{-1}}}));
  Value* o = m.op("MatMul", {p, proj[2]}, "context");
  o = m.op("Transpose", {o}, "context_bshd", perm({0, 2, 1, 3}));
  m.g->outputs = {m.op("Reshape", {o, m.ints("merge_shape", {b, s, e})}, "merged")};
  if (k_is_output)
    for (const auto& n : m.g->nodes())
      if (n->name == "k") m.g->outputs.push_back(n->outputs[0]);
  return m;
}

}  // namespace kiln::xformer_graphs
