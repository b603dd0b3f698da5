// kiln.FusedConv: a convolution with its bias, an optional residual input and an optional
// activation in one node, in NCHW or NHWC layout (made by the CUDA backend's fusion and layout
// passes, never by an ONNX model).
//
//   Y = act(conv(X, W) + B + Z)
//
// Inputs X, W, B (optional), Z (optional, Y's shape). Attributes: Conv's (auto_pad, dilations,
// group, kernel_shape, pads, strides); `activation` "" (none) or "Relu"; `layout` "NCHW" (X, Z, Y
// are (N, C, spatial...), W (M, C/group, k...)) or "NHWC" (X, Z, Y are (N, spatial..., C), W
// (M, k..., C/group)); `kiln_fused` names the fused original nodes.
//
// With a head (NHWC only: inputs 4, HW (K, 1, 1, M), and 5, HB (K), optional), the output is a
// 1x1 convolution of Y, which is rounded to the dtype first as a separate node's output would be:
//
//   H = conv1x1(Y, HW) + HB     (N, spatial..., K)
//
// (conv-head-fusion makes it of a segmentation network's last conv and its 1x1 classifier, so a
// kernel can apply the classifier to each output tile instead of writing and re-reading Y.)
#include "ops/fused_conv.hpp"

#include "ops/conv_shape.hpp"
#include "ops/infer_util.hpp"

namespace kiln {

std::vector<int64_t> nhwc_to_nchw_perm(size_t rank) {
  std::vector<int64_t> p{0, static_cast<int64_t>(rank) - 1};
  for (size_t i = 1; i + 1 < rank; ++i) p.push_back(static_cast<int64_t>(i));
  return p;
}

std::vector<int64_t> nchw_to_nhwc_perm(size_t rank) {
  std::vector<int64_t> p{0};
  for (size_t i = 2; i < rank; ++i) p.push_back(static_cast<int64_t>(i));
  p.push_back(1);
  return p;
}

namespace {

Shape permuted(const Shape& s, const std::vector<int64_t>& perm) {
  std::vector<Dim> d;
  for (int64_t p : perm) d.push_back(s[static_cast<size_t>(p)]);
  return Shape(std::move(d));
}

Status infer_fused_conv(InferContext& ctx) {
  const std::string layout = ctx.attrs().s("layout", "NCHW");
  if (layout != "NCHW" && layout != "NHWC") return ctx.error("layout '{}' must be NCHW or NHWC", layout);
  const std::string act = ctx.attrs().s("activation", "");
  if (!act.empty() && act != "Relu") return ctx.error("activation '{}' must be empty or Relu", act);
  const DType t = ctx.input(0).dtype;
  for (size_t i = 1; i < 6; ++i)
    if (ctx.has_input(i) && ctx.input(i).dtype != t)
      return ctx.error("input {} is {} but X is {}", i, dtype_name(ctx.input(i).dtype), dtype_name(t));
  const bool nhwc = layout == "NHWC";
  Shape x = ctx.input(0).shape, w = ctx.input(1).shape;
  if (nhwc) {
    if (!x.has_rank() || !w.has_rank() || x.rank() < 3 || w.rank() != x.rank())
      return ctx.error("NHWC layout needs X and W of one known rank >= 3, got {} and {}", x.to_string(),
                       w.to_string());
    x = permuted(x, nhwc_to_nchw_perm(x.rank()));
    w = permuted(w, nhwc_to_nchw_perm(w.rank()));
  }
  KILN_ASSIGN_OR_RETURN(Shape y, conv_output_shape(ctx, x, w, ctx.has_input(2) ? &ctx.input(2).shape : nullptr,
                                                   ctx.attrs().i("group", 1)));
  if (nhwc && y.has_rank()) y = permuted(y, nchw_to_nhwc_perm(y.rank()));
  if (ctx.has_input(3)) {
    const Shape& z = ctx.input(3).shape;
    if (z.has_rank() && y.has_rank()) {
      bool ok = z.rank() == y.rank();
      for (size_t i = 0; ok && i < z.rank(); ++i) ok = !z[i].known() || !y[i].known() || z[i].value == y[i].value;
      if (!ok) return ctx.error("Z {} must have Y's shape {}", z.to_string(), y.to_string());
    }
  }
  if (ctx.has_input(4)) {
    if (!nhwc) return ctx.error("a head (input 4) needs layout NHWC");
    const Shape& hw = ctx.input(4).shape;
    if (!hw.has_rank() || !y.has_rank() || hw.rank() != y.rank())
      return ctx.error("head weights {} must have Y's rank ({})", hw.to_string(), y.to_string());
    for (size_t i = 1; i + 1 < hw.rank(); ++i)
      if (!hw[i].known() || hw[i].value != 1) return ctx.error("head weights {} must be 1x1", hw.to_string());
    const Dim& m = y[y.rank() - 1];
    if (hw[hw.rank() - 1].known() && m.known() && hw[hw.rank() - 1].value != m.value)
      return ctx.error("head weights {} must read Y's {} channels", hw.to_string(), m.value);
    if (ctx.has_input(5)) {
      const Shape& hb = ctx.input(5).shape;
      if (!hb.has_rank() || hb.rank() != 1 || (hb[0].known() && hw[0].known() && hb[0].value != hw[0].value))
        return ctx.error("head bias {} must be ({})", hb.to_string(), hw[0].known() ? hw[0].value : -1);
    }
    y.dims().back() = hw[0];
  } else if (ctx.has_input(5)) {
    return ctx.error("a head bias (input 5) needs head weights (input 4)");
  }
  ctx.set_output(0, t, std::move(y));
  return Status::Ok();
}

}  // namespace
}  // namespace kiln

KILN_REGISTER_OP({.name = "FusedConv", .domain = "kiln", .min_inputs = 2, .max_inputs = 6,
                  .infer = kiln::infer_fused_conv});
