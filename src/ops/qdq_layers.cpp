// kiln.QConv / kiln.QMatMul schemas and shape inference (ops/qdq_layers.hpp documents them).
#include "ops/qdq_layers.hpp"

#include "ops/conv_shape.hpp"
#include "ops/infer_util.hpp"
#include "ops/window_geometry.hpp"

namespace kiln {

bool qconv_int8_runnable(const Node& conv) {
  if (!conv.has_input(0) || !conv.has_input(1) || !conv.has_output(0)) return false;
  auto x = conv.inputs[0]->type.shape.to_dims();
  auto w = conv.inputs[1]->type.shape.to_dims();
  if (!x || !w || x->size() != 4 || w->size() != 4) return false;
  if (conv.attrs.i("group", 1) != 1) return false;
  const Dims kernel(w->begin() + 2, w->end());
  auto win = resolve_window(conv, Dims(x->begin() + 2, x->end()), &kernel, false);
  if (!win.ok()) return false;
  for (size_t i = 0; i < 2; ++i)
    if (win->dilations[i] != 1 || win->pads_begin[i] != win->pads_end[i]) return false;
  return true;
}

bool qmatmul_int8_runnable(int64_t k, int64_t n) { return k > 0 && n > 0 && k % 4 == 0 && n % 4 == 0; }

namespace {

bool is_scalar_shape(const Shape& s) {
  if (!s.has_rank()) return true;  // checked again when known
  auto d = s.to_dims();
  return !d || dims_numel(*d) == 1;
}

// The checks and output dtype shared by both ops; `m` is the output channel count (-1: unknown).
Expected<DType> check_common(const InferContext& ctx, int64_t m) {
  const std::string act = ctx.attrs().s("activation", "");
  if (!act.empty() && act != "Relu") return ctx.error("activation '{}' must be empty or Relu", act);
  if (ctx.input(0).dtype != DType::kInt8) return ctx.error("X must be int8, got {}", dtype_name(ctx.input(0).dtype));
  if (ctx.input(2).dtype != DType::kInt8) return ctx.error("W must be int8, got {}", dtype_name(ctx.input(2).dtype));
  const DType ft = ctx.input(1).dtype;
  if (!is_floating(ft)) return ctx.error("x_scale must be floating-point, got {}", dtype_name(ft));
  if (!is_scalar_shape(ctx.input(1).shape)) return ctx.error("x_scale must be one value");
  if (!is_floating(ctx.input(3).dtype)) return ctx.error("w_scale must be floating-point");
  auto ws = ctx.input(3).shape.to_dims();
  if (ws && m >= 0 && dims_numel(*ws) != m && dims_numel(*ws) != 1)
    return ctx.error("w_scale has {} values for {} output channels", dims_numel(*ws), m);
  if (ctx.has_input(4)) {
    if (ctx.input(4).dtype != ft) return ctx.error("B must be {} (x_scale's dtype)", dtype_name(ft));
    auto b = ctx.input(4).shape.to_dims();
    if (b && m >= 0 && (b->size() != 1 || (*b)[0] != m)) return ctx.error("B must have {} values", m);
  }
  if (ctx.has_input(5)) {
    const DType zt = ctx.input(5).dtype;
    if (zt == DType::kInt8) {
      if (!ctx.has_input(6)) return ctx.error("an int8 Z needs z_scale");
      if (!is_scalar_shape(ctx.input(6).shape)) return ctx.error("z_scale must be one value");
    } else if (zt != ft) {
      return ctx.error("Z must be int8 or {}, got {}", dtype_name(ft), dtype_name(zt));
    }
  }
  if (ctx.has_input(7)) {
    if (!is_scalar_shape(ctx.input(7).shape)) return ctx.error("y_scale must be one value");
    return DType::kInt8;
  }
  return ft;
}

Status check_z_shape(const InferContext& ctx, const Shape& y) {
  if (!ctx.has_input(5)) return Status::Ok();
  auto z = ctx.input(5).shape.to_dims(), yd = y.to_dims();
  if (z && yd && *z != *yd) return ctx.error("Z {} must have Y's shape {}", ctx.input(5).shape.to_string(), y.to_string());
  return Status::Ok();
}

// (N, H, W, C) <-> (N, C, H, W) of a rank-4 shape; other shapes as they are.
Shape nhwc_to_nchw(const Shape& s) { return s.has_rank() && s.rank() == 4 ? Shape({s[0], s[3], s[1], s[2]}) : s; }
Shape nchw_to_nhwc(const Shape& s) { return s.has_rank() && s.rank() == 4 ? Shape({s[0], s[2], s[3], s[1]}) : s; }

Status infer_qconv(InferContext& ctx) {
  const Shape& w = ctx.input(2).shape;
  const int64_t m = w.has_rank() && w.rank() > 0 && w[0].known() ? w[0].value : -1;
  KILN_ASSIGN_OR_RETURN(DType out, check_common(ctx, m));
  const std::string layout = ctx.attrs().s("layout", "NCHW");
  if (layout != "NCHW" && layout != "NHWC") return ctx.error("layout '{}' must be NCHW or NHWC", layout);
  const bool nhwc = layout == "NHWC";
  const std::string x_layout = ctx.attrs().s("x_layout", layout);
  if (x_layout != "NCHW" && x_layout != "NHWC")
    return ctx.error("x_layout '{}' must be NCHW or NHWC", x_layout);
  Shape x = ctx.input(0).shape;
  if (x_layout == "NHWC") {
    if (!x.has_rank() || x.rank() != 4) return ctx.error("NHWC layout needs a 4-D X, got {}", x.to_string());
    x = nhwc_to_nchw(x);
  }
  KILN_ASSIGN_OR_RETURN(Shape y, conv_output_shape(ctx, x, w, nullptr, ctx.attrs().i("group", 1)));
  if (nhwc) y = nchw_to_nhwc(y);
  KILN_RETURN_IF_ERROR(check_z_shape(ctx, y));
  ctx.set_output(0, out, std::move(y));
  return Status::Ok();
}

// X (..., K) times Wᵀ with W (N, K): Y (..., N).
Status infer_qmatmul(InferContext& ctx) {
  const Shape& x = ctx.input(0).shape;
  const Shape& w = ctx.input(2).shape;
  if (w.has_rank() && w.rank() != 2) return ctx.error("W must be 2-D (N, K), got {}", w.to_string());
  if (x.has_rank() && x.rank() < 1) return ctx.error("X must have rank >= 1");
  const int64_t n = w.has_rank() && w[0].known() ? w[0].value : -1;
  KILN_ASSIGN_OR_RETURN(DType out, check_common(ctx, n));
  if (!x.has_rank() || !w.has_rank()) {
    ctx.set_output(0, out, Shape());
    return Status::Ok();
  }
  const Dim& xk = x[x.rank() - 1];
  if (xk.known() && w[1].known() && xk.value != w[1].value)
    return ctx.error("X {} and W {} disagree on K", x.to_string(), w.to_string());
  std::vector<Dim> yd;
  for (size_t i = 0; i + 1 < x.rank(); ++i) yd.push_back(x[i]);
  yd.push_back(w[0]);
  Shape y(std::move(yd));
  KILN_RETURN_IF_ERROR(check_z_shape(ctx, y));
  ctx.set_output(0, out, std::move(y));
  return Status::Ok();
}

}  // namespace
}  // namespace kiln

KILN_REGISTER_OP({.name = "QConv", .domain = "kiln", .min_inputs = 4, .max_inputs = 8, .infer = kiln::infer_qconv});
KILN_REGISTER_OP({.name = "QMatMul", .domain = "kiln", .min_inputs = 4, .max_inputs = 8,
                  .infer = kiln::infer_qmatmul});
