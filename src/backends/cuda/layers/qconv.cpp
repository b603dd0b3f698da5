// kiln.QConv (ops/qdq_layers.hpp) on CUDA: X (NCHW int8) is copied to NHWC with its channels padded
// to a multiple of 4, convolved with the padded NHWC int8 weights into int32 sums, and one
// epilogue kernel applies x_scale * w_scale[m], bias, residual, Relu and the requantization while
// writing NCHW. Tactics, timed by the builder: each algorithm cuDNN offers for the int8 NHWC
// convolution (INT8 in, INT32 out, INT32 compute: "cudnn_int8_algo<A>_math<M>"), and "direct", a
// dp4a kernel of kiln's own that always runs (qdq_kernels.cu).
#include <algorithm>
#include <cstdio>

#include "backends/cuda/layers/conv_descs.hpp"
#include "backends/cuda/layers/qlayer_util.hpp"
#include "ops/qdq_layers.hpp"
#include "ops/window_geometry.hpp"

namespace kiln::cuda {
namespace {

// The node's geometry, when the int8 kernels can run it (2-D, group 1, dilation 1, symmetric pads).
std::optional<kernels::QConvShape> qconv_shape(const Node& n) {
  auto x = static_dims(n.inputs[0]);
  auto w = static_dims(n.has_input(2) ? n.inputs[2] : nullptr);
  auto y = static_dims(n.outputs[0]);
  if (!x || !w || !y || x->size() != 4 || w->size() != 4 || y->size() != 4) return std::nullopt;
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
  if (s.n * s.h * s.w * s.cp > INT32_MAX || s.n * s.oh * s.ow * s.mp > INT32_MAX) return std::nullopt;  // cuDNN sizes
  return s;
}

// cuDNN's descriptors of the padded NHWC int8 convolution.
struct Int8ConvDescs {
  TensorDesc x, y;
  FilterDesc w;
  ConvDesc conv;

  Status init(const kernels::QConvShape& s) {
    auto i = [](int64_t v) { return static_cast<int>(v); };
    KILN_RETURN_IF_ERROR(set_conv_tensor(x, CUDNN_DATA_INT8, {s.n, s.cp, s.h, s.w}, true));
    KILN_RETURN_IF_ERROR(set_conv_tensor(y, CUDNN_DATA_INT32, {s.n, s.mp, s.oh, s.ow}, true));
    KILN_CUDA_CHECK(cudnnCreateFilterDescriptor(w.out()));
    KILN_CUDA_CHECK(cudnnSetFilter4dDescriptor(w.get(), CUDNN_DATA_INT8, CUDNN_TENSOR_NHWC, i(s.mp), i(s.cp), i(s.kh),
                                               i(s.kw)));
    KILN_CUDA_CHECK(cudnnCreateConvolutionDescriptor(conv.out()));
    KILN_CUDA_CHECK(cudnnSetConvolution2dDescriptor(conv.get(), i(s.pad_h), i(s.pad_w), i(s.stride_h), i(s.stride_w), 1,
                                                    1, CUDNN_CROSS_CORRELATION, CUDNN_DATA_INT32));
    return Status::Ok();
  }

  // (algo, math) pairs cuDNN offers; implicit precomputed GEMM (the documented int8 algorithm)
  // is always tried.
  std::vector<std::pair<int, int>> candidates(cudnnHandle_t h) const {
    std::vector<std::pair<int, int>> out;
    cudnnConvolutionFwdAlgoPerf_t perf[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
    int count = 0;
    if (cudnnGetConvolutionForwardAlgorithm_v7(h, x.get(), w.get(), conv.get(), y.get(),
                                               CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &count, perf) == CUDNN_STATUS_SUCCESS)
      for (int k = 0; k < count; ++k)
        if (perf[k].status == CUDNN_STATUS_SUCCESS) out.emplace_back(perf[k].algo, perf[k].mathType);
    for (int math : {static_cast<int>(CUDNN_DEFAULT_MATH), static_cast<int>(CUDNN_TENSOR_OP_MATH)}) {
      std::pair<int, int> p{CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM, math};
      if (std::find(out.begin(), out.end(), p) == out.end()) out.push_back(p);
    }
    return out;
  }
};

class QConvLayer : public CudaLayer {
 public:
  static Expected<std::unique_ptr<CudaLayer>> create(const Node& n, const LayerChoice& choice) {
    auto shape = qconv_shape(n);
    if (!shape) return unsupported("{}: this quantized convolution does not run on CUDA", n.describe());
    auto layer = std::unique_ptr<QConvLayer>(new QConvLayer());
    QConvLayer& l = *layer;
    l.s_ = *shape;
    l.c_ = n.inputs[0]->type.shape[1].value;
    l.m_ = n.inputs[2]->constant->dim(0);
    KILN_RETURN_IF_ERROR(l.epi_.init(n, l.m_));
    KILN_RETURN_IF_ERROR(l.upload_weights(*n.inputs[2]->constant));
    int algo = -1, math = -1;
    if (choice.tactic.empty() || choice.tactic == "direct") {
      l.direct_ = true;
    } else if (std::sscanf(choice.tactic.c_str(), "cudnn_int8_algo%d_math%d", &algo, &math) != 2) {
      return invalid_model("{}: unknown quantized convolution tactic '{}'", n.describe(), choice.tactic);
    }
    if (!l.direct_) {
      KILN_RETURN_IF_ERROR(l.d_.init(l.s_));
      KILN_CUDA_CHECK(cudnnSetConvolutionMathType(l.d_.conv.get(), static_cast<cudnnMathType_t>(math)));
      KILN_RETURN_IF_ERROR(with_query_handle([&](cudnnHandle_t h) -> Status {
        KILN_CUDA_CHECK(cudnnGetConvolutionForwardWorkspaceSize(h, l.d_.x.get(), l.d_.w.get(), l.d_.conv.get(),
                                                                l.d_.y.get(), static_cast<cudnnConvolutionFwdAlgo_t>(algo),
                                                                &l.cudnn_ws_));
        return Status::Ok();
      }));
      l.algo_ = algo;
    }
    const kernels::QConvShape& s = l.s_;
    l.x_offset_ = align256(l.cudnn_ws_);
    l.acc_offset_ = l.x_offset_ + align256(static_cast<size_t>(s.n * s.h * s.w * s.cp));
    l.total_ws_ = l.acc_offset_ + static_cast<size_t>(s.n * s.oh * s.ow * s.mp) * sizeof(int32_t);
    return std::unique_ptr<CudaLayer>(std::move(layer));
  }

  size_t workspace_bytes() const override { return total_ws_; }

  Status enqueue(const LaunchArgs& a) const override {
    if (a.outputs[0].numel() == 0) return Status::Ok();
    if (a.workspace_bytes < total_ws_) return internal_error("quantized convolution workspace too small");
    char* ws = static_cast<char*>(a.workspace);
    auto* x = reinterpret_cast<int8_t*>(ws + x_offset_);
    auto* acc = reinterpret_cast<int32_t*>(ws + acc_offset_);
    KILN_CUDA_CHECK(kernels::nchw_to_nhwc_int8(a.inputs[0].as<int8_t>(), x, s_.n, c_, s_.h * s_.w, s_.cp, a.stream));
    if (direct_) {
      KILN_CUDA_CHECK(kernels::qconv_direct(x, w_.as<int8_t>(), acc, s_, a.stream));
    } else {
      const float one = 1.f, zero = 0.f;
      KILN_CUDA_CHECK(cudnnConvolutionForward(a.handles.cudnn, &one, d_.x.get(), x, d_.w.get(), w_.get(), d_.conv.get(),
                                              static_cast<cudnnConvolutionFwdAlgo_t>(algo_), ws, cudnn_ws_, &zero,
                                              d_.y.get(), acc));
    }
    kernels::QEpilogueParams p = epi_.params(a);
    p.acc = acc;
    p.acc_stride = s_.mp;
    p.images = s_.n;
    p.spatial = s_.oh * s_.ow;
    p.channels = m_;
    p.nchw = true;
    KILN_CUDA_CHECK(kernels::q_epilogue(p, a.stream));
    return Status::Ok();
  }

 private:
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
    return Status::Ok();
  }

  kernels::QConvShape s_;
  int64_t c_ = 0, m_ = 0;
  QEpilogue epi_;
  DeviceBuffer w_;
  Int8ConvDescs d_;
  bool direct_ = false;
  int algo_ = 0;
  size_t cudnn_ws_ = 0, x_offset_ = 0, acc_offset_ = 0, total_ws_ = 0;
};

bool qconv_supports(const Node& n) {
  if (!n.has_input(2) || !n.inputs[2]->is_constant()) return false;
  return q_layer_supports(n, n.inputs[2]->constant->dim(0)) && qconv_shape(n).has_value();
}

std::vector<std::string> qconv_tactics(const Node& n, const BuildOptions& options) {
  std::vector<std::string> out{"direct"};
  auto s = qconv_shape(n);
  Int8ConvDescs d;
  if (!s || !d.init(*s).ok()) return out;
  (void)with_query_handle([&](cudnnHandle_t h) -> Status {
    for (auto [algo, math] : d.candidates(h)) {
      if (cudnnSetConvolutionMathType(d.conv.get(), static_cast<cudnnMathType_t>(math)) != CUDNN_STATUS_SUCCESS) continue;
      size_t bytes = 0;
      if (cudnnGetConvolutionForwardWorkspaceSize(h, d.x.get(), d.w.get(), d.conv.get(), d.y.get(),
                                                  static_cast<cudnnConvolutionFwdAlgo_t>(algo),
                                                  &bytes) != CUDNN_STATUS_SUCCESS ||
          bytes > options.workspace_bytes)
        continue;  // cuDNN cannot run this algorithm on int8
      out.push_back(conv_tactic_name("cudnn_int8", algo, static_cast<cudnnMathType_t>(math)));
    }
    return Status::Ok();
  });
  return out;
}

}  // namespace
}  // namespace kiln::cuda

KILN_REGISTER_CUDA_LAYER("kiln.QConv", kiln::cuda::CudaLayerFactory{.supports = kiln::cuda::qconv_supports,
                                                                    .tactics = kiln::cuda::qconv_tactics,
                                                                    .create = kiln::cuda::QConvLayer::create});
