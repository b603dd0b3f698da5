// kiln.QConv (ops/qdq_layers.hpp) on CUDA: X (NCHW int8) is copied to NHWC with its channels padded
// to a multiple of 4 (layout NHWC, made by the nhwc-layout pass when C is a multiple of 4: X is
// used as it is), convolved with the padded NHWC int8 weights into int32 sums, and one epilogue
// kernel applies x_scale * w_scale[m], bias, residual, Relu and the requantization while writing
// Y in the node's layout. Tactics, timed by the builder:
//   "lt_int8:<algo>": im2col rows (none for 1x1 stride-1 convolutions: X itself) times the weights
//     through cuBLASLt's int8 GEMM (qgemm_lt.hpp: IMMA tensor cores);
//   "direct": a dp4a kernel of kiln's own (qdq_kernels.cu);
//   "igemm_s8:<tile>": kiln's implicit-GEMM tensor-core kernel (qconv_igemm.hpp; NHWC X with C a
//     multiple of 16, or NCHW X, copied with its channels padded to a multiple of 16), with the
//     epilogue fused when it writes NHWC int8 or float16 (M a multiple of 16, the residual int8 or
//     float16), else writing int32 sums for the epilogue kernel;
//   "s2d_igemm:<tile>": NHWC X with fewer than 16 channels whose window holds 64-512 values and
//     a stride s >= 2 with s*s*C <= 64 (an RGB 7x7 stride-2 stem): X copied 2x2 (s x s)
//     space-to-depth (qconv_repack.cu: 224x224x3 -> 115x115x16, zero-padded), the igemm tile runs
//     the ceil(k/s)-square stride-1 convolution of the copy (4x4 over 16 channels) with the
//     weights rearranged to match;
//   "im2col_igemm:<tile>" / "im2col_igemm_l2:<tile>": NHWC X with fewer than 16 channels whose
//     window holds 64-512 values (an RGB 7x7 stem: 147): each window gathered into a row of
//     kh*kw*C bytes padded to a multiple of 64 (qconv_repack.cu), then the igemm tile runs a 1x1
//     convolution over the rows - for the whole batch at once, or ("_l2") a few images at a time
//     so that the rows stay in L2 between the gather and the GEMM;
//   "cudnn_f32:graph_e...": cuDNN's graph API (conv_graph.hpp), an int8 ConvolutionFwd computing
//     in INT32 on the padded NHWC X and weights, writing the sums as float32 (implicit GEMM: no
//     im2col rows). Offered only with KILN_QCONV_CUDNN_GRAPH=1 until verified on a GPU: on an
//     H200 (cuDNN 9) the same graph with an INT32 Y wrote wrong values - by their size, float32
//     sums stored into the int32 tensor - so the int32 variant is gone; the float32 one is untested.
// cuDNN's legacy int8 NHWC convolution (INT8 in, INT32 out) was tried and gave wrong sums on
// Hopper with cuDNN 9.19 (and ran slower than FP16), so it is not offered.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <optional>

#include "backends/cuda/layers/conv_graph.hpp"
#include "backends/cuda/layers/qconv_igemm.hpp"
#include "backends/cuda/layers/qgemm_lt.hpp"
#include "backends/cuda/layers/qlayer_util.hpp"
#include "ops/qdq_layers.hpp"
#include "ops/window_geometry.hpp"

namespace kiln::cuda {
namespace {

bool is_nhwc(const Node& n) { return n.attrs.s("layout", "NCHW") == "NHWC"; }

// An NHWC node whose X is NCHW (x_layout: an RGB stem reading its image; the s2d tactics only).
bool x_is_nchw(const Node& n) { return is_nhwc(n) && n.attrs.s("x_layout", "NHWC") == "NCHW"; }

// X's channels, and whether X is NHWC with channels that are not a multiple of 4 or NCHW under an
// NHWC node: X is not padded, only the repacking tactics read it.
int64_t x_channels(const Node& n) {
  return is_nhwc(n) && !x_is_nchw(n) ? n.inputs[0]->type.shape[3].value : n.inputs[0]->type.shape[1].value;
}
bool repack_only(const Node& n) { return is_nhwc(n) && (x_is_nchw(n) || x_channels(n) % 4 != 0); }

// Dims (N, H, W, C) -> (N, C, H, W).
Dims to_nchw(const Dims& d) { return {d[0], d[3], d[1], d[2]}; }

// The node's geometry, when the int8 kernels can run it (2-D, group 1, dilation 1, symmetric pads).
// NHWC X is used as it is: with C not a multiple of 4 only the repacking tactics can run it (as
// NCHW X under an NHWC node, x_layout).
std::optional<kernels::QConvShape> qconv_shape(const Node& n) {
  auto x = static_dims(n.inputs[0]);
  auto w = static_dims(n.has_input(2) ? n.inputs[2] : nullptr);
  auto y = static_dims(n.outputs[0]);
  if (!x || !w || !y || x->size() != 4 || w->size() != 4 || y->size() != 4) return std::nullopt;
  const std::string layout = n.attrs.s("layout", "NCHW");
  if (layout == "NHWC") {
    if (!x_is_nchw(n)) x = to_nchw(*x);
    y = to_nchw(*y);
  } else if (layout != "NCHW") {
    return std::nullopt;
  }
  if (n.attrs.i("group", 1) != 1 || (*w)[1] != (*x)[1]) return std::nullopt;
  const Dims kernel{(*w)[2], (*w)[3]};
  auto win = resolve_window(n, Dims{(*x)[2], (*x)[3]}, &kernel, false);
  if (!win.ok()) return std::nullopt;
  for (size_t i = 0; i < 2; ++i)
    if (win->dilations[i] != 1 || win->pads_begin[i] != win->pads_end[i]) return std::nullopt;
  kernels::QConvShape s;
  s.n = (*x)[0];
  s.h = (*x)[2];
  s.w = (*x)[3];
  s.cp = round_up((*x)[1], 4);
  s.mp = round_up((*w)[0], 4);
  s.kh = (*w)[2];
  s.kw = (*w)[3];
  s.oh = (*y)[2];
  s.ow = (*y)[3];
  s.stride_h = win->strides[0];
  s.stride_w = win->strides[1];
  s.pad_h = win->pads_begin[0];
  s.pad_w = win->pads_begin[1];
  if (win->out[0] != s.oh || win->out[1] != s.ow) return std::nullopt;
  for (int64_t v : {s.n, s.h, s.w, s.cp, s.mp, s.kh, s.kw, s.oh, s.ow, s.stride_h, s.stride_w, s.pad_h, s.pad_w})
    if (v > INT32_MAX) return std::nullopt;
  if (s.n * s.oh * s.ow > INT32_MAX) return std::nullopt;  // cuBLASLt's GEMM rows
  return s;
}

bool needs_im2col(const kernels::QConvShape& s) {
  return !(s.kh == 1 && s.kw == 1 && s.stride_h == 1 && s.stride_w == 1 && s.pad_h == 0 && s.pad_w == 0);
}

// The graph-API tactics' prefixes: the sums' dtype.
constexpr const char* kGraphF32 = "cudnn_f32:";

// The geometry the implicit GEMM runs: NCHW X is copied to NHWC anyway, so its channels are
// padded to a multiple of 16 there (a 3-channel stem computes on 16, 13 of them zero: still far
// faster than the dp4a kernel, and needs no im2col rows).
kernels::QConvShape igemm_shape(kernels::QConvShape s, bool nhwc) {
  if (!nhwc) s.cp = round_up(s.cp, 16);
  return s;
}

// The im2col tactics' prefixes (the tile's name follows) and their geometry: rows of kp bytes, the
// window's kh * kw * c values padded to a multiple of 64 (the TMA tiles' stage).
constexpr const char* kIm2colTactic = "im2col_igemm:";
constexpr const char* kIm2colL2Tactic = "im2col_igemm_l2:";
constexpr size_t kL2RowsBytes = 16u << 20;  // the "_l2" tactics' rows per launch, at most
static_assert(kQConvIm2colMaxDepth <= kernels::kIm2colMaxDepth);
static_assert(kQConvSpaceToDepthMaxChannels == kernels::kMaxDepthChannels);

int64_t im2col_depth(const kernels::QConvShape& s, int64_t c) { return round_up(s.kh * s.kw * c, 64); }

// Whether the im2col tactics apply: NHWC X with fewer than kQConvMinChannels channels and a
// window that fits a row (qconv_window_fits_rows; post-training quantization makes such QConvs only
// where the s2d tactics apply, qconv_int8_worthwhile).
bool im2col_fits(const kernels::QConvShape& s, int64_t c, bool nhwc) {
  return nhwc && c < kQConvMinChannels && qconv_window_fits_rows(c, s.kh * s.kw) &&
         im2col_depth(s, c) <= kernels::kIm2colMaxDepth;
}

// The 1x1 convolution over the rows that the tile runs, for `images` images.
kernels::QConvShape rows_shape(const kernels::QConvShape& s, int64_t c, int64_t images) {
  kernels::QConvShape r = s;
  r.n = images;
  r.h = s.oh;
  r.w = s.ow;
  r.cp = im2col_depth(s, c);
  r.kh = r.kw = 1;
  r.stride_h = r.stride_w = 1;
  r.pad_h = r.pad_w = 0;
  return r;
}

// The gather's geometry for the whole batch (each launch sets its own image count).
kernels::Im2colRows im2col_geometry(const kernels::QConvShape& s, int64_t c) {
  kernels::Im2colRows g;
  g.n = static_cast<int>(s.n);
  g.h = static_cast<int>(s.h);
  g.w = static_cast<int>(s.w);
  g.c = static_cast<int>(c);
  g.kh = static_cast<int>(s.kh);
  g.kw = static_cast<int>(s.kw);
  g.oh = static_cast<int>(s.oh);
  g.ow = static_cast<int>(s.ow);
  g.stride_h = static_cast<int>(s.stride_h);
  g.stride_w = static_cast<int>(s.stride_w);
  g.pad_h = static_cast<int>(s.pad_h);
  g.pad_w = static_cast<int>(s.pad_w);
  g.kp = static_cast<int>(im2col_depth(s, c));
  return g;
}

// Images per launch of an "_l2" tactic: rows of at most kL2RowsBytes.
int64_t l2_images(const kernels::QConvShape& s, int64_t c) {
  const int64_t per_image = s.oh * s.ow * im2col_depth(s, c);
  return std::max<int64_t>(1, static_cast<int64_t>(kL2RowsBytes) / std::max<int64_t>(per_image, 1));
}

// The space-to-depth tactics' prefix and geometry: the copy, and the stride-1 convolution over it.
constexpr const char* kS2dTactic = "s2d_igemm:";
struct S2dGeometry {
  kernels::SpaceToDepth copy;
  kernels::QConvShape conv;
};

std::optional<S2dGeometry> s2d_geometry(const kernels::QConvShape& s, int64_t c, bool nhwc) {
  const int64_t st = s.stride_h;
  if (!nhwc || c >= kQConvMinChannels || !qconv_int8_worthwhile(c, s.kh * s.kw, 1, st, s.stride_w))
    return std::nullopt;
  const int64_t cs = round_up(st * st * c, 16);
  if (cs > kernels::kMaxDepthChannels) return std::nullopt;
  S2dGeometry g;
  g.conv = s;
  g.conv.kh = (s.kh + st - 1) / st;
  g.conv.kw = (s.kw + st - 1) / st;
  // Every position the convolution reads: the padded input's, and the last output's window.
  g.conv.h = std::max((s.h + 2 * s.pad_h + st - 1) / st, s.oh + g.conv.kh - 1);
  g.conv.w = std::max((s.w + 2 * s.pad_w + st - 1) / st, s.ow + g.conv.kw - 1);
  g.conv.cp = cs;
  g.conv.stride_h = g.conv.stride_w = 1;
  g.conv.pad_h = g.conv.pad_w = 0;
  g.copy.n = static_cast<int>(s.n);
  g.copy.h = static_cast<int>(s.h);
  g.copy.w = static_cast<int>(s.w);
  g.copy.c = static_cast<int>(c);
  g.copy.s = static_cast<int>(st);
  g.copy.pad_h = static_cast<int>(s.pad_h);
  g.copy.pad_w = static_cast<int>(s.pad_w);
  g.copy.hs = static_cast<int>(g.conv.h);
  g.copy.ws = static_cast<int>(g.conv.w);
  g.copy.cs = static_cast<int>(cs);
  return g;
}

// The igemm tactic a "s2d_igemm:" or "im2col_igemm*:" tactic runs ("igemm_s8:<tile>"), or "".
std::string repack_inner(const std::string& t) {
  for (const char* p : {kS2dTactic, kIm2colL2Tactic, kIm2colTactic})
    if (t.rfind(p, 0) == 0) return std::string(kIgemmTactic) + t.substr(std::string(p).size());
  return "";
}

bool igemm_supports(const kernels::QConvShape& s, int config) {
  return kernels::igemm_s8_supports(s.n, s.h, s.w, s.cp, s.mp, s.kh, s.kw, s.oh, s.ow, config, s.stride_h, s.stride_w,
                                    s.pad_h, s.pad_w);
}

bool graph_tactics_enabled() {
  const char* e = std::getenv("KILN_QCONV_CUDNN_GRAPH");
  return e && std::string(e) == "1";
}

// The int8 convolution of the padded NHWC tensors, as a cuDNN graph spec (no epilogue: the
// layer's own kernel applies the scales, bias, residual, Relu and requantization).
ConvGraphSpec qgraph_spec(const kernels::QConvShape& s, DType acc) {
  ConvGraphSpec g;
  g.geo.x = {s.n, s.cp, s.h, s.w};
  g.geo.w = {s.mp, s.cp, s.kh, s.kw};
  g.geo.y = {s.n, s.mp, s.oh, s.ow};
  g.geo.pads = {static_cast<int>(s.pad_h), static_cast<int>(s.pad_w)};
  g.geo.strides = {static_cast<int>(s.stride_h), static_cast<int>(s.stride_w)};
  g.geo.dilations = {1, 1};
  g.geo.nhwc = true;
  g.dtype = DType::kInt8;
  g.y_dtype = acc;
  g.precision = "int8";
  return g;
}

Int8GemmShape gemm_shape(const kernels::QConvShape& s) { return {s.n * s.oh * s.ow, s.mp, s.kh * s.kw * s.cp}; }

class QConvLayer : public CudaLayer {
 public:
  static Expected<std::unique_ptr<CudaLayer>> create(const Node& n, const LayerChoice& choice) {
    auto shape = qconv_shape(n);
    if (!shape) return unsupported("{}: this quantized convolution does not run on CUDA", n.describe());
    auto layer = std::unique_ptr<QConvLayer>(new QConvLayer());
    QConvLayer& l = *layer;
    l.s_ = *shape;
    l.nhwc_ = is_nhwc(n);
    l.c_ = x_channels(n);
    l.m_ = n.inputs[2]->constant->dim(0);
    KILN_RETURN_IF_ERROR(l.epi_.init(n, l.m_));
    const std::string& t = choice.tactic;
    const std::string inner = repack_inner(t);
    // X not padded (NHWC with C not a multiple of 4, or NCHW under an NHWC node): only the
    // repacking tactics read it; NCHW X only the s2d ones.
    if (x_is_nchw(n) && t.rfind(kS2dTactic, 0) != 0)
      return unsupported("{}: tactic '{}' does not read an NCHW X (x_layout) into NHWC Y (the s2d tactics do)",
                         n.describe(), t);
    if (repack_only(n) && inner.empty())
      return unsupported("{}: tactic '{}' does not run {} input channels in NHWC (the im2col and s2d tactics do)",
                         n.describe(), t, l.c_);
    if (t.rfind(kIgemmTactic, 0) == 0) l.s_ = igemm_shape(l.s_, l.nhwc_);  // before the weights' padding
    if (t.rfind(kS2dTactic, 0) == 0) {
      auto g = s2d_geometry(l.s_, l.c_, l.nhwc_);
      if (!g) return unsupported("{}: tactic '{}' does not run this convolution", n.describe(), t);
      g->copy.x_nchw = x_is_nchw(n);
      l.s2d_ = *g;
      KILN_ASSIGN_OR_RETURN(l.igemm_, prepare_igemm_tactic(n, inner, "convolution",
                                                           [&](int config) { return igemm_supports(g->conv, config); }));
      l.fused_ = igemm_fusable(n, l.m_);
      KILN_RETURN_IF_ERROR(l.upload_s2d_weights(*n.inputs[2]->constant));
      // Workspace: [the space-to-depth copy][int32 sums, unfused].
      const kernels::QConvShape& cs = g->conv;
      l.col_offset_ = 0;
      l.acc_offset_ = align256(static_cast<size_t>(cs.n * cs.h * cs.w * cs.cp));
      l.total_ws_ =
          l.acc_offset_ + (l.fused_ ? 0 : static_cast<size_t>(l.s_.n * l.s_.oh * l.s_.ow * l.s_.mp) * sizeof(int32_t));
      return std::unique_ptr<CudaLayer>(std::move(layer));
    }
    if (!inner.empty()) {
      if (!im2col_fits(l.s_, l.c_, l.nhwc_))
        return unsupported("{}: tactic '{}' does not run this convolution", n.describe(), t);
      l.rows_ = im2col_geometry(l.s_, l.c_);
      l.images_ = t.rfind(kIm2colL2Tactic, 0) == 0 ? std::min(l.s_.n, l2_images(l.s_, l.c_)) : l.s_.n;
      const kernels::QConvShape rows = rows_shape(l.s_, l.c_, l.images_);
      KILN_ASSIGN_OR_RETURN(l.igemm_, prepare_igemm_tactic(n, inner, "convolution",
                                                           [&](int config) { return igemm_supports(rows, config); }));
      l.fused_ = igemm_fusable(n, l.m_);
      KILN_RETURN_IF_ERROR(l.upload_row_weights(*n.inputs[2]->constant));
      // Workspace: [the rows of one launch][int32 sums of the whole batch, unfused].
      l.col_offset_ = 0;
      l.acc_offset_ = align256(static_cast<size_t>(l.images_ * l.s_.oh * l.s_.ow * l.rows_->kp));
      l.total_ws_ =
          l.acc_offset_ + (l.fused_ ? 0 : static_cast<size_t>(l.s_.n * l.s_.oh * l.s_.ow * l.s_.mp) * sizeof(int32_t));
      return std::unique_ptr<CudaLayer>(std::move(layer));
    }
    KILN_RETURN_IF_ERROR(l.upload_weights(*n.inputs[2]->constant));
    if (t.rfind(kGraphF32, 0) == 0) {
      const std::string config = t.substr(std::string(kGraphF32).size());
      KILN_ASSIGN_OR_RETURN(l.graph_, graph_for_tactic(qgraph_spec(l.s_, DType::kFloat32), config, n.describe()));
      // No graph config runs here (a plan from elsewhere): graph_for_tactic noted it; "direct".
      l.acc_f32_ = l.graph_ != nullptr;
    } else if (t.rfind(kIgemmTactic, 0) == 0) {
      KILN_ASSIGN_OR_RETURN(l.igemm_, prepare_igemm_tactic(n, t, "convolution",
                                                           [&](int config) { return igemm_supports(l.s_, config); }));
      // Fused: NHWC Y int8 or float16, the residual (if any) int8 or float16, M a multiple of 16
      // (16-byte stores); else int32 sums + q_epilogue.
      l.fused_ = l.nhwc_ && igemm_fusable(n, l.m_);
    } else if (!t.empty() && t != "direct") {
      Status st = l.gemm_.init(gemm_shape(l.s_), choice.tactic);
      if (!st.ok()) return Status(st).add_context(n.describe());
      l.use_gemm_ = true;
    }
    const kernels::QConvShape& s = l.s_;
    // Workspace: [GEMM's or cuDNN's][X in NHWC][im2col rows][int32 (float32) sums].
    l.x_offset_ = align256(l.graph_ ? l.graph_->workspace() : l.gemm_.workspace_bytes());
    // (NHWC layout: X is used as it is, its channels already a multiple of 4.)
    l.col_offset_ = l.x_offset_ + (l.nhwc_ ? 0 : align256(static_cast<size_t>(s.n * s.h * s.w * s.cp)));
    const bool col = l.use_gemm_ && needs_im2col(s);
    l.acc_offset_ = l.col_offset_ + (col ? align256(static_cast<size_t>(s.n * s.oh * s.ow * s.kh * s.kw * s.cp)) : 0);
    l.total_ws_ = l.acc_offset_ + (l.fused_ ? 0 : static_cast<size_t>(s.n * s.oh * s.ow * s.mp) * sizeof(int32_t));
    return std::unique_ptr<CudaLayer>(std::move(layer));
  }

  size_t workspace_bytes() const override { return total_ws_; }

  Status enqueue(const LaunchArgs& a) const override {
    if (a.outputs[0].numel() == 0) return Status::Ok();
    if (a.workspace_bytes < total_ws_) return internal_error("quantized convolution workspace too small");
    char* ws = static_cast<char*>(a.workspace);
    auto* acc = reinterpret_cast<int32_t*>(ws + acc_offset_);
    const int8_t* x = a.inputs[0].as<int8_t>();
    if (s2d_) return enqueue_s2d(a, x, acc);
    if (rows_) return enqueue_im2col(a, x, acc);
    if (!nhwc_) {
      auto* copy = reinterpret_cast<int8_t*>(ws + x_offset_);
      KILN_CUDA_CHECK(kernels::nchw_to_nhwc_int8(x, copy, s_.n, c_, s_.h * s_.w, s_.cp, a.stream));
      x = copy;
    }
    if (igemm_ >= 0) {
      KILN_RETURN_IF_ERROR(launch_igemm(igemm_params(s_, x), igemm_, fused_, epi_.params(a), acc, s_.mp, a.stream));
      if (fused_) return Status::Ok();
    } else if (graph_) {
      KILN_RETURN_IF_ERROR(graph_->execute(a.handles.cudnn, x, w_.get(), nullptr, nullptr, acc, ws));
    } else if (use_gemm_) {
      const int8_t* rows = x;
      if (needs_im2col(s_)) {
        auto* col = reinterpret_cast<int8_t*>(ws + col_offset_);
        KILN_CUDA_CHECK(kernels::im2col_nhwc_int8(x, col, s_, a.stream));
        rows = col;
      }
      KILN_RETURN_IF_ERROR(gemm_.run(a.handles.cublaslt, rows, w_.as<int8_t>(), acc, ws, a.stream));
    } else {
      KILN_CUDA_CHECK(kernels::qconv_direct(x, w_.as<int8_t>(), acc, s_, a.stream));
    }
    kernels::QEpilogueParams p = epi_.params(a);
    p.acc = acc;
    if (acc_f32_) p.acc_f32 = reinterpret_cast<const float*>(acc);
    p.acc_stride = s_.mp;
    p.images = s_.n;
    p.spatial = s_.oh * s_.ow;
    p.channels = m_;
    p.nchw = !nhwc_;
    KILN_CUDA_CHECK(kernels::q_epilogue(p, a.stream));
    return Status::Ok();
  }

 private:
  // The implicit GEMM's parameters for convolution `g` of X `x` with this layer's weights.
  kernels::IgemmS8Params igemm_params(const kernels::QConvShape& g, const int8_t* x) const {
    kernels::IgemmS8Params ip;
    ip.x = x;
    ip.w = w_.as<int8_t>();
    ip.n = static_cast<int>(g.n);
    ip.h = static_cast<int>(g.h);
    ip.w_in = static_cast<int>(g.w);
    ip.c = static_cast<int>(g.cp);
    ip.m = static_cast<int>(m_);
    ip.kh = static_cast<int>(g.kh);
    ip.kw = static_cast<int>(g.kw);
    ip.oh = static_cast<int>(g.oh);
    ip.ow = static_cast<int>(g.ow);
    ip.stride_h = static_cast<int>(g.stride_h);
    ip.stride_w = static_cast<int>(g.stride_w);
    ip.pad_h = static_cast<int>(g.pad_h);
    ip.pad_w = static_cast<int>(g.pad_w);
    ip.acc_small = sums_small_;
    return ip;
  }

  // The im2col tactics: per launch of `images_` images, their rows, then the 1x1 igemm over them
  // writing that part of Y (fused) or of the int32 sums (then one q_epilogue for the batch).
  Status enqueue_im2col(const LaunchArgs& a, const int8_t* x, int32_t* acc) const {
    auto* rows = reinterpret_cast<int8_t*>(static_cast<char*>(a.workspace) + col_offset_);
    kernels::Im2colRows g = *rows_;
    const kernels::QEpilogueParams e = epi_.params(a);
    const int64_t pixels = s_.oh * s_.ow;
    for (int64_t first = 0; first < s_.n; first += images_) {
      const int64_t count = std::min(images_, s_.n - first);
      g.n = static_cast<int>(count);
      KILN_CUDA_CHECK(kernels::im2col_rows_int8(x + first * s_.h * s_.w * c_, rows, g, a.stream));
      // This launch's part of Y and Z (fused), or of the sums.
      kernels::QEpilogueParams part = e;
      const int64_t offset = first * pixels * m_;
      if (part.y) part.y = static_cast<char*>(part.y) + offset * static_cast<int64_t>(dtype_size(part.y_dtype));
      if (part.z) part.z = static_cast<const char*>(part.z) + offset * static_cast<int64_t>(dtype_size(part.z_dtype));
      const kernels::IgemmS8Params ip = igemm_params(rows_shape(s_, c_, count), rows);
      KILN_RETURN_IF_ERROR(launch_igemm(ip, igemm_, fused_, part, acc + first * pixels * s_.mp, s_.mp, a.stream));
    }
    return fused_ ? Status::Ok() : nhwc_epilogue(e, acc, a.stream);
  }

  // The repacking tactics' unfused epilogue: the int32 sums of the whole batch to NHWC Y.
  Status nhwc_epilogue(kernels::QEpilogueParams p, const int32_t* acc, cudaStream_t stream) const {
    p.acc = acc;
    p.acc_stride = s_.mp;
    p.images = s_.n;
    p.spatial = s_.oh * s_.ow;
    p.channels = m_;
    p.nchw = false;
    KILN_CUDA_CHECK(kernels::q_epilogue(p, stream));
    return Status::Ok();
  }

  // The space-to-depth tactics: the copy, then the igemm tile's stride-1 convolution of it.
  Status enqueue_s2d(const LaunchArgs& a, const int8_t* x, int32_t* acc) const {
    auto* copy = reinterpret_cast<int8_t*>(static_cast<char*>(a.workspace) + col_offset_);
    KILN_CUDA_CHECK(kernels::space_to_depth_int8(x, copy, s2d_->copy, a.stream));
    const kernels::QEpilogueParams e = epi_.params(a);
    KILN_RETURN_IF_ERROR(launch_igemm(igemm_params(s2d_->conv, copy), igemm_, fused_, e, acc, s_.mp, a.stream));
    return fused_ ? Status::Ok() : nhwc_epilogue(e, acc, a.stream);
  }

  // The space-to-depth tactics' W (M, C, kh, kw) -> (Mp, kh', kw', cs): W'[m][dy][dx][(sy * s +
  // sx) * C + c] = W[m][c][dy * s + sy][dx * s + sx], zero past the window and past s*s*C.
  Status upload_s2d_weights(const Tensor& w) {
    const kernels::QConvShape& g = s2d_->conv;
    const int64_t st = s2d_->copy.s;
    std::vector<int8_t> host(static_cast<size_t>(s_.mp * g.kh * g.kw * g.cp), 0);
    const int8_t* src = w.data<int8_t>();
    for (int64_t m = 0; m < m_; ++m)
      for (int64_t c = 0; c < c_; ++c)
        for (int64_t ky = 0; ky < s_.kh; ++ky)
          for (int64_t kx = 0; kx < s_.kw; ++kx) {
            const int64_t dy = ky / st, sy = ky % st, dx = kx / st, sx = kx % st;
            host[static_cast<size_t>(((m * g.kh + dy) * g.kw + dx) * g.cp + (sy * st + sx) * c_ + c)] =
                src[((m * c_ + c) * s_.kh + ky) * s_.kw + kx];
          }
    KILN_ASSIGN_OR_RETURN(w_, DeviceBuffer::allocate(host.size()));
    KILN_CUDA_CHECK(cudaMemcpy(w_.get(), host.data(), host.size(), cudaMemcpyHostToDevice));
    sums_small_ = kernels::igemm_s8_sums_small(host.data(), s_.mp, g.kh * g.kw * g.cp);
    return Status::Ok();
  }

  // The im2col tactics' W (M, C, kh, kw) -> (Mp, kp): row m holds (ky, kx, c) in the rows' order,
  // then zeros.
  Status upload_row_weights(const Tensor& w) {
    const kernels::QConvShape& s = s_;
    const int64_t kp = rows_->kp;
    std::vector<int8_t> host(static_cast<size_t>(s.mp * kp), 0);
    const int8_t* src = w.data<int8_t>();
    for (int64_t m = 0; m < m_; ++m)
      for (int64_t c = 0; c < c_; ++c)
        for (int64_t ky = 0; ky < s.kh; ++ky)
          for (int64_t kx = 0; kx < s.kw; ++kx)
            host[static_cast<size_t>(m * kp + (ky * s.kw + kx) * c_ + c)] = src[((m * c_ + c) * s.kh + ky) * s.kw + kx];
    KILN_ASSIGN_OR_RETURN(w_, DeviceBuffer::allocate(host.size()));
    KILN_CUDA_CHECK(cudaMemcpy(w_.get(), host.data(), host.size(), cudaMemcpyHostToDevice));
    sums_small_ = kernels::igemm_s8_sums_small(host.data(), s.mp, kp);
    return Status::Ok();
  }

  // W (M, C, kh, kw) -> (Mp, kh, kw, Cp), zero-padded.
  Status upload_weights(const Tensor& w) {
    const kernels::QConvShape& s = s_;
    std::vector<int8_t> host(static_cast<size_t>(s.mp * s.kh * s.kw * s.cp), 0);
    const int8_t* src = w.data<int8_t>();
    for (int64_t m = 0; m < m_; ++m)
      for (int64_t c = 0; c < c_; ++c)
        for (int64_t ky = 0; ky < s.kh; ++ky)
          for (int64_t kx = 0; kx < s.kw; ++kx)
            host[static_cast<size_t>(((m * s.kh + ky) * s.kw + kx) * s.cp + c)] = src[((m * c_ + c) * s.kh + ky) * s.kw + kx];
    KILN_ASSIGN_OR_RETURN(w_, DeviceBuffer::allocate(host.size()));
    KILN_CUDA_CHECK(cudaMemcpy(w_.get(), host.data(), host.size(), cudaMemcpyHostToDevice));
    sums_small_ = kernels::igemm_s8_sums_small(host.data(), s.mp, s.kh * s.kw * s.cp);
    return Status::Ok();
  }

  kernels::QConvShape s_;
  int64_t c_ = 0, m_ = 0;
  QEpilogue epi_;
  DeviceBuffer w_;
  Int8Gemm gemm_;
  bool use_gemm_ = false;
  std::shared_ptr<const ConvGraph> graph_;
  bool acc_f32_ = false;
  bool nhwc_ = false;
  bool sums_small_ = false;  // |sums| <= 2^22 whatever X holds (igemm_s8_sums_small)
  int igemm_ = -1;      // the implicit-GEMM configuration, or -1
  bool fused_ = false;  // igemm with its epilogue fused (int8 NHWC Y)
  size_t x_offset_ = 0, col_offset_ = 0, acc_offset_ = 0, total_ws_ = 0;
  std::optional<kernels::Im2colRows> rows_;  // im2col tactics: the gather's geometry
  int64_t images_ = 0;                       // im2col tactics: images per launch
  std::optional<S2dGeometry> s2d_;  // space-to-depth tactics
};

// The repacking tactics for this node (space-to-depth, im2col rows), within `workspace` bytes.
std::vector<std::string> repack_tactics(const Node& n, const kernels::QConvShape& s, uint64_t workspace) {
  std::vector<std::string> out;
  const int64_t c = x_channels(n);
  const uint64_t sums = igemm_fusable(n, n.inputs[2]->constant->dim(0)) ? 0 : uint64_t(s.n * s.oh * s.ow * s.mp) * 4;
  if (auto g = s2d_geometry(s, c, is_nhwc(n))) {
    const uint64_t copy = uint64_t(g->conv.n * g->conv.h * g->conv.w * g->conv.cp);
    for (int i = 0; i < kernels::kIgemmConfigs; ++i)
      if (igemm_supports(g->conv, i) && copy + sums <= workspace)
        out.push_back(kS2dTactic + std::string(kernels::igemm_s8_config_name(i)));
  }
  if (x_is_nchw(n) || !im2col_fits(s, c, is_nhwc(n))) return out;
  const int64_t kp = im2col_depth(s, c), l2 = l2_images(s, c);
  for (int i = 0; i < kernels::kIgemmConfigs; ++i) {
    const std::string tile = kernels::igemm_s8_config_name(i);
    if (igemm_supports(rows_shape(s, c, s.n), i) && uint64_t(s.n * s.oh * s.ow * kp) + sums <= workspace)
      out.push_back(kIm2colTactic + tile);
    if (l2 < s.n && igemm_supports(rows_shape(s, c, l2), i) && uint64_t(l2 * s.oh * s.ow * kp) + sums <= workspace)
      out.push_back(kIm2colL2Tactic + tile);
  }
  return out;
}

bool qconv_supports(const Node& n) {
  if (!n.has_input(2) || !n.inputs[2]->is_constant()) return false;
  if (!q_layer_supports(n, n.inputs[2]->constant->dim(0))) return false;
  auto s = qconv_shape(n);
  if (!s) return false;
  // NHWC X with C not a multiple of 4: the repacking tactics only (with the default workspace).
  if (repack_only(n))
    return !repack_tactics(n, *s, BuildOptions{}.workspace_bytes).empty();
  return true;
}

std::vector<std::string> qconv_tactics(const Node& n, const BuildOptions& options) {
  auto s = qconv_shape(n);
  if (!s) return {"direct"};
  std::vector<std::string> rows = repack_tactics(n, *s, options.workspace_bytes);
  if (repack_only(n)) return rows;  // X is not padded
  std::vector<std::string> out{"direct"};
  out.insert(out.begin(), rows.begin(), rows.end());
  // The GEMM tactics' extra scratch: the im2col rows (and the GEMM's own, at most 32 MiB).
  const uint64_t col = needs_im2col(*s) ? static_cast<uint64_t>(s->n * s->oh * s->ow * s->kh * s->kw * s->cp) : 0;
  const uint64_t base = static_cast<uint64_t>(s->n * s->h * s->w * s->cp + s->n * s->oh * s->ow * s->mp * 4);
  // cuDNN graph-API configs first (implicit GEMM: no im2col rows; the timer cuts slower ones short).
  if (graph_tactics_enabled()) {
    std::vector<std::string> graph;
    const uint64_t graph_ws = options.workspace_bytes > base ? options.workspace_bytes - base : 0;
    for (const std::string& t : graph_tactics(qgraph_spec(*s, DType::kFloat32), graph_ws))
      graph.push_back(kGraphF32 + t);
    out.insert(out.begin(), graph.begin(), graph.end());
  }
  // kiln's implicit GEMM (no im2col rows) first: ties go to it.
  const kernels::QConvShape si = igemm_shape(*s, is_nhwc(n));
  std::vector<std::string> igemm;
  for (int i = 0; i < kernels::kIgemmConfigs; ++i)
    if (igemm_supports(si, i)) igemm.push_back(std::string(kIgemmTactic) + kernels::igemm_s8_config_name(i));
  const uint64_t igemm_ws = static_cast<uint64_t>(si.n * si.h * si.w * si.cp + si.n * si.oh * si.ow * si.mp * 4);
  if (igemm_ws <= options.workspace_bytes) out.insert(out.begin(), igemm.begin(), igemm.end());
  if (base + col + (32u << 20) > options.workspace_bytes) return out;
  for (std::string& t : Int8Gemm::tactics(gemm_shape(*s))) out.push_back(std::move(t));
  return out;
}

}  // namespace
}  // namespace kiln::cuda

KILN_REGISTER_CUDA_LAYER("kiln.QConv", kiln::cuda::CudaLayerFactory{.supports = kiln::cuda::qconv_supports,
                                                                    .tactics = kiln::cuda::qconv_tactics,
                                                                    .create = kiln::cuda::QConvLayer::create});
