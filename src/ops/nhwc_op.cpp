// kiln.NHWC: a channel-dependent ONNX op (attribute `op`: MaxPool, AveragePool, GlobalMaxPool,
// GlobalAveragePool, ConvTranspose) run on NHWC data, made by the CUDA backend's layout passes so
// that pools and transposed convolutions inside NHWC regions need no Transposes. Its other
// attributes are the wrapped op's; X and Y are (N, H, W, C); a ConvTranspose's W is
// (C, kh, kw, M/group) and B as usual. Inference is the wrapped op's on the NCHW view.
#include "ops/fused_conv.hpp"
#include "ops/infer_util.hpp"
#include "ops/window_geometry.hpp"

namespace kiln {

bool nhwc_wrappable(const std::string& op) {
  return op == "MaxPool" || op == "AveragePool" || op == "GlobalMaxPool" || op == "GlobalAveragePool" ||
         op == "ConvTranspose";
}

Expected<Window> nhwc_pool_window(const Node& n, const Dims& nchw_in) {
  const std::string op = n.domain.empty() ? n.op_type : n.attrs.s("op", "");
  if (nchw_in.size() != 4) return invalid_model("{}: X must be 4-D", n.describe());
  const Dims spatial(nchw_in.begin() + 2, nchw_in.end());
  if (op == "GlobalMaxPool" || op == "GlobalAveragePool") {
    Window w;
    w.kernel = w.in = spatial;
    w.strides = w.dilations = w.out = Dims{1, 1};
    w.pads_begin = w.pads_end = Dims{0, 0};
    return w;
  }
  KILN_ASSIGN_OR_RETURN(Window w, resolve_window(n, spatial, nullptr, n.attrs.i("ceil_mode", 0) != 0));
  for (size_t i = 0; i < w.rank(); ++i) {
    if (w.dilations[i] != 1 || w.pads_begin[i] != w.pads_end[i] || w.pads_begin[i] >= w.kernel[i] ||
        (w.in[i] + 2 * w.pads_begin[i] - w.kernel[i]) / w.strides[i] + 1 != w.out[i] || w.kernel[i] > INT32_MAX ||
        w.strides[i] > INT32_MAX)
      return unsupported("{}: this window has no cuDNN NHWC pooling (dilation, unequal pads or ceil_mode)",
                         n.describe());
  }
  return w;
}

namespace {

Shape permuted(const Shape& s, const std::vector<int64_t>& perm) {
  std::vector<Dim> d;
  for (int64_t p : perm) d.push_back(s[static_cast<size_t>(p)]);
  return Shape(std::move(d));
}

Status infer_nhwc(InferContext& ctx) {
  const std::string op = ctx.attrs().s("op", "");
  if (!nhwc_wrappable(op)) return ctx.error("op '{}' cannot run in NHWC layout", op);
  if (ctx.num_outputs() != 1) return ctx.error("the NHWC form of {} has one output", op);
  const OpSchema* inner = OpRegistry::instance().schema("", op);
  if (!inner || !inner->infer) return ctx.error("no schema for {}", op);
  std::vector<TensorType> inputs;
  for (size_t i = 0; i < ctx.num_inputs(); ++i) {
    TensorType t = ctx.has_input(i) ? ctx.input(i) : TensorType{};
    if (i < 2 && ctx.has_input(i)) {  // X, and a ConvTranspose's W
      if (!t.shape.has_rank() || t.shape.rank() != 4)
        return ctx.error("input {} must be 4-D NHWC, got {}", i, t.shape.to_string());
      t.shape = permuted(t.shape, nhwc_to_nchw_perm(4));
    }
    inputs.push_back(std::move(t));
  }
  if (op != "ConvTranspose" && inputs.size() != 1) return ctx.error("the NHWC form of {} has one input", op);
  InferContext nchw(ctx.node(), std::move(inputs), std::vector<const Tensor*>(ctx.num_inputs(), nullptr));
  KILN_RETURN_IF_ERROR(inner->infer(nchw));
  const TensorType& y = nchw.outputs()[0];
  ctx.set_output(0, y.dtype, y.shape.has_rank() ? permuted(y.shape, nchw_to_nhwc_perm(4)) : y.shape);
  return Status::Ok();
}

}  // namespace
}  // namespace kiln

KILN_REGISTER_OP({.name = "NHWC", .domain = "kiln", .min_inputs = 1, .max_inputs = 3, .infer = kiln::infer_nhwc});
