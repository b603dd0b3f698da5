// kiln.Attention: schema, attribute geometry and shape inference (the op is described in
// ops/attention.hpp). Made by the attention-fusion pass (CUDA backend).
#include "ops/attention.hpp"

#include <algorithm>

#include "ops/infer_util.hpp"
#include "ops/masked_softmax.hpp"

namespace kiln {

namespace {

std::optional<AttentionView> view_attr(const Attributes& a, const char* name, bool with_offset) {
  auto v = a.ints(name);
  if (v.size() != (with_offset ? 5u : 4u)) return std::nullopt;
  AttentionView out;
  size_t i = 0;
  if (with_offset) out.offset = v[i++];
  for (int d = 0; d < 4; ++d) out.stride[static_cast<size_t>(d)] = v[i++];
  if (out.offset < 0 || std::any_of(out.stride.begin(), out.stride.end(), [](int64_t s) { return s < 0; }))
    return std::nullopt;
  return out;
}

// Whether `strides` over `dims` visit each element of a dense tensor of the same size exactly once.
bool is_dense_permutation(const std::array<int64_t, 4>& dims, const std::array<int64_t, 4>& strides) {
  std::vector<std::pair<int64_t, int64_t>> sd;  // (stride, dim) of the dims that matter
  for (size_t i = 0; i < 4; ++i)
    if (dims[i] > 1) sd.emplace_back(strides[i], dims[i]);
  std::sort(sd.begin(), sd.end());
  int64_t expect = 1;
  for (auto [s, d] : sd) {
    if (s != expect) return false;
    expect *= d;
  }
  return true;
}

}  // namespace

Expected<AttentionGeometry> attention_geometry(const Node& n) {
  const Attributes& a = n.attrs;
  AttentionGeometry g;
  auto dims = a.ints("dims");
  if (dims.size() != 6 || std::any_of(dims.begin(), dims.end(), [](int64_t d) { return d < 1; }))
    return invalid_model("{}: dims must be 6 positive ints [B,H,Sq,Sk,d,dv]", n.describe());
  g.batch = dims[0], g.heads = dims[1], g.sq = dims[2], g.sk = dims[3], g.d = dims[4], g.dv = dims[5];
  auto q = view_attr(a, "q_view", true), k = view_attr(a, "k_view", true), v = view_attr(a, "v_view", true);
  auto o = view_attr(a, "out_strides", false);
  if (!q || !k || !v) return invalid_model("{}: q_view/k_view/v_view must be 5 non-negative ints", n.describe());
  if (!o) return invalid_model("{}: out_strides must be 4 non-negative ints", n.describe());
  g.q = *q, g.k = *k, g.v = *v, g.out = *o;
  g.out_shape = a.ints("out_shape");
  if (dims_numel(g.out_shape) != g.batch * g.heads * g.sq * g.dv ||
      !is_dense_permutation({g.batch, g.heads, g.sq, g.dv}, g.out.stride))
    return invalid_model("{}: out_shape {} and out_strides do not lay out [B,H,Sq,dv] densely", n.describe(),
                         dims_to_string(g.out_shape));
  g.scale = a.f("scale", 1.f);
  g.nan_to_zero = a.i("nan_to_zero", 0) != 0;
  if (a.has("mask_fill")) g.mask_fill = a.f("mask_fill");
  return g;
}

bool attention_view_fits(const AttentionView& view, const std::array<int64_t, 4>& dims, int64_t numel) {
  int64_t last = view.offset;
  for (size_t i = 0; i < 4; ++i) last += (dims[i] - 1) * view.stride[i];
  return last < numel;
}

std::optional<std::array<int64_t, 4>> attention_mask_strides(const AttentionGeometry& g, const Dims& mask) {
  auto s = masked_softmax_mask_strides({g.batch, g.heads, g.sq, g.sk}, mask);
  if (!s) return std::nullopt;
  return std::array<int64_t, 4>{(*s)[0], (*s)[1], (*s)[2], (*s)[3]};
}

void set_attention_attrs(Attributes& attrs, const AttentionGeometry& g) {
  auto view = [](const AttentionView& v) {
    return std::vector<int64_t>{v.offset, v.stride[0], v.stride[1], v.stride[2], v.stride[3]};
  };
  attrs.set("dims", std::vector<int64_t>{g.batch, g.heads, g.sq, g.sk, g.d, g.dv});
  attrs.set("q_view", view(g.q));
  attrs.set("k_view", view(g.k));
  attrs.set("v_view", view(g.v));
  attrs.set("out_strides", std::vector<int64_t>(g.out.stride.begin(), g.out.stride.end()));
  attrs.set("out_shape", g.out_shape);
  attrs.set("scale", g.scale);
  attrs.set("nan_to_zero", static_cast<int64_t>(g.nan_to_zero));
  if (g.mask_fill) attrs.set("mask_fill", *g.mask_fill);
}

namespace {

Status infer_attention(InferContext& ctx) {
  KILN_ASSIGN_OR_RETURN(AttentionGeometry g, attention_geometry(ctx.node()));
  const DType t = ctx.input(0).dtype;
  if (!is_floating(t)) return ctx.error("dtype {} is not a float type", dtype_name(t));
  if (ctx.has_input(3) && g.mask_fill && ctx.input(3).dtype != DType::kBool)
    return ctx.error("with mask_fill the mask must be bool, not {}", dtype_name(ctx.input(3).dtype));
  for (size_t i = 1; i < (g.mask_fill ? 3u : 4u); ++i)
    if (ctx.has_input(i) && ctx.input(i).dtype != t)
      return ctx.error("input {} is {} but Q is {}", i, dtype_name(ctx.input(i).dtype), dtype_name(t));
  const std::array<int64_t, 4> qd{g.batch, g.heads, g.sq, g.d}, kd{g.batch, g.heads, g.sk, g.d},
      vd{g.batch, g.heads, g.sk, g.dv};
  const AttentionView* views[3] = {&g.q, &g.k, &g.v};
  const std::array<int64_t, 4>* vdims[3] = {&qd, &kd, &vd};
  for (size_t i = 0; i < 3; ++i) {
    auto dims = ctx.input(i).shape.to_dims();
    if (dims && !attention_view_fits(*views[i], *vdims[i], dims_numel(*dims)))
      return ctx.error("the view of input {} reaches past its {} elements", i, dims_numel(*dims));
  }
  if (ctx.has_input(3)) {
    auto md = ctx.input(3).shape.to_dims();
    if (md && !attention_mask_strides(g, *md))
      return ctx.error("mask {} does not broadcast to [B,H,Sq,Sk] {}", ctx.input(3).shape.to_string(),
                       dims_to_string({g.batch, g.heads, g.sq, g.sk}));
  }
  ctx.set_output(0, t, Shape::from_dims(g.out_shape));
  return Status::Ok();
}

}  // namespace
}  // namespace kiln

KILN_REGISTER_OP({.name = "Attention", .domain = "kiln", .min_inputs = 3, .max_inputs = 4,
                  .infer = kiln::infer_attention});
