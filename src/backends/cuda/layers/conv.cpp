// Conv and ConvTranspose through cuDNN's convolution API (forward and backward-data). Every
// algorithm cuDNN offers for the node's shapes and precision is a tactic ("cudnn_algo<A>_math<M>"),
// timed by the builder; the bias is added by a per-channel kernel. cuDNN pads both ends alike:
// a Conv with unequal pads (TF "SAME" exports) first copies X, zero-padded by the difference,
// into the workspace.
#include <algorithm>
#include <cstdio>

#include "backends/cuda/layers/axis_map_layer.hpp"
#include "ops/window_geometry.hpp"

namespace kiln::cuda {
namespace {

bool is_transposed(const Node& n) { return n.op_type == "ConvTranspose"; }

// The node in cuDNN's terms: NCHW dims of rank >= 4 (1-D convolutions get a unit H dim) and one
// padding per spatial dim, the begin side's.
struct ConvGeometry {
  Dims x, w, y;
  std::vector<int> pads, strides, dilations;
  int group = 1;
  Dims x_node;      // X as the node has it (x is X after pre-padding)
  AxisMaps prepad;  // X -> x index maps when they differ; empty otherwise
};

// Unsupported (with the reason) when cuDNN cannot express the node exactly.
Expected<ConvGeometry> conv_geometry(const Node& n) {
  auto x = static_dims(n.inputs[0]);
  auto w = static_dims(n.has_input(1) ? n.inputs[1] : nullptr);
  auto y = static_dims(n.has_output(0) ? n.outputs[0] : nullptr);
  if (!x || !w || !y) return unsupported("{}: shapes are not static", n.describe());
  const size_t rank = x->size();
  if (rank < 3 || rank > 5 || w->size() != rank || y->size() != rank)
    return unsupported("{}: only 1-D, 2-D and 3-D convolutions run on CUDA", n.describe());
  const size_t nd = rank - 2;
  const Dims in(x->begin() + 2, x->end()), kernel(w->begin() + 2, w->end()), out(y->begin() + 2, y->end());
  KILN_ASSIGN_OR_RETURN(Window win, is_transposed(n) ? resolve_transposed_window(n, in, kernel)
                                                     : resolve_window(n, in, &kernel, false));
  ConvGeometry g;
  const int64_t group = n.attrs.i("group", 1);
  if (group < 1 || group > INT32_MAX) return unsupported("{}: group {}", n.describe(), group);
  g.group = static_cast<int>(group);
  Dims extra_begin(nd, 0), extra_end(nd, 0);
  for (size_t i = 0; i < nd; ++i) {
    // cuDNN pads both ends by the same amount p, and the output size it derives must be the
    // node's. ConvTranspose: p is the begin padding (an unequal end is implicit output padding
    // when it fits). Conv: p is the smaller side; X is pre-padded by the rest.
    const int64_t s = win.strides[i], d = win.dilations[i];
    const int64_t span = (kernel[i] - 1) * d + 1;
    int64_t p = win.pads_begin[i];
    int64_t fwd_in = out[i];
    const int64_t fwd_out = is_transposed(n) ? in[i] : out[i];
    if (!is_transposed(n)) {
      p = std::min(win.pads_begin[i], win.pads_end[i]);
      extra_begin[i] = win.pads_begin[i] - p;
      extra_end[i] = win.pads_end[i] - p;
      fwd_in = in[i] + extra_begin[i] + extra_end[i];
    }
    if (p < 0 || fwd_in + 2 * p < span || (fwd_in + 2 * p - span) / s + 1 != fwd_out)
      return unsupported("{}: pads [{}] are not expressible as cuDNN's symmetric padding", n.describe(),
                         fmt::join(n.attrs.ints("pads"), ","));
    if (p > INT32_MAX || s > INT32_MAX || d > INT32_MAX) return unsupported("{}: window too large", n.describe());
    g.pads.push_back(static_cast<int>(p));
    g.strides.push_back(static_cast<int>(s));
    g.dilations.push_back(static_cast<int>(d));
  }
  g.x = *x;
  g.w = *w;
  g.y = *y;
  g.x_node = *x;
  bool prepad = false;
  for (size_t i = 0; i < nd; ++i) {
    g.x[2 + i] += extra_begin[i] + extra_end[i];
    prepad = prepad || extra_begin[i] || extra_end[i];
  }
  if (prepad) {
    g.prepad.resize(rank);
    for (size_t k = 0; k < rank; ++k)
      for (int64_t o = 0; o < g.x[k]; ++o) {
        const int64_t q = k < 2 ? o : o - extra_begin[k - 2];
        g.prepad[k].push_back(q >= 0 && q < g.x_node[k] ? q : -1);
      }
  }
  if (nd == 1) {
    if (prepad) {
      g.prepad.insert(g.prepad.begin() + 2, std::vector<int64_t>{0});
      g.x_node.insert(g.x_node.begin() + 2, 1);
    }
    g.x.insert(g.x.begin() + 2, 1);
    g.w.insert(g.w.begin() + 2, 1);
    g.y.insert(g.y.begin() + 2, 1);
    g.pads.insert(g.pads.begin(), 0);
    g.strides.insert(g.strides.begin(), 1);
    g.dilations.insert(g.dilations.begin(), 1);
  }
  return g;
}

cudnnMathType_t default_math(const std::string& precision) {
  if (precision == "fp32") return CUDNN_FMA_MATH;  // no TF32
  if (precision == "tf32") return CUDNN_DEFAULT_MATH;  // TF32 tensor cores allowed
  return CUDNN_TENSOR_OP_MATH;
}

bool math_allowed(cudnnMathType_t m, const std::string& precision) {
  if (precision == "fp32") return m == CUDNN_FMA_MATH || m == CUDNN_DEFAULT_MATH;
  // Down-conversion of float32 to float16 would lose more than TF32 does.
  if (precision == "tf32") return m != CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION;
  return true;
}

// The descriptors of one node, for queries and for running.
struct ConvDescs {
  TensorDesc x, y;
  FilterDesc w;
  ConvDesc conv;
  DType dtype = DType::kUndefined;
  bool transposed = false;
  ConvGeometry geo;

  Status init(const Node& n) {
    KILN_ASSIGN_OR_RETURN(geo, conv_geometry(n));
    dtype = n.inputs[0]->type.dtype;
    transposed = is_transposed(n);
    auto type = cudnn_type(dtype);
    if (!type) return unsupported("{}: {} convolutions do not run on CUDA", n.describe(), dtype_name(dtype));
    KILN_RETURN_IF_ERROR(set_packed_tensor(x, *type, geo.x));
    KILN_RETURN_IF_ERROR(set_packed_tensor(y, *type, geo.y));
    std::vector<int> wd;
    for (int64_t v : geo.w) {
      if (v > INT32_MAX) return unsupported("{}: weights too large for cuDNN", n.describe());
      wd.push_back(static_cast<int>(v));
    }
    KILN_CUDA_CHECK(cudnnCreateFilterDescriptor(w.out()));
    KILN_CUDA_CHECK(cudnnSetFilterNdDescriptor(w.get(), *type, CUDNN_TENSOR_NCHW, static_cast<int>(wd.size()), wd.data()));
    KILN_CUDA_CHECK(cudnnCreateConvolutionDescriptor(conv.out()));
    // float16/bfloat16 data accumulate in float32 (cuDNN's "pseudo" configurations).
    KILN_CUDA_CHECK(cudnnSetConvolutionNdDescriptor(conv.get(), static_cast<int>(geo.pads.size()), geo.pads.data(),
                                                    geo.strides.data(), geo.dilations.data(),
                                                    CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
    KILN_CUDA_CHECK(cudnnSetConvolutionGroupCount(conv.get(), geo.group));
    return Status::Ok();
  }

  Status set_math(cudnnMathType_t m) {
    KILN_CUDA_CHECK(cudnnSetConvolutionMathType(conv.get(), m));
    return Status::Ok();
  }

  // Algorithms cuDNN's heuristics offer, best guess first: (algo, math, workspace bytes).
  struct Candidate {
    int algo;
    cudnnMathType_t math;
    size_t memory;
  };
  Expected<std::vector<Candidate>> candidates(cudnnHandle_t h) const {
    std::vector<Candidate> out;
    int count = 0;
    if (!transposed) {
      cudnnConvolutionFwdAlgoPerf_t perf[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
      KILN_CUDA_CHECK(cudnnGetConvolutionForwardAlgorithm_v7(h, x.get(), w.get(), conv.get(), y.get(),
                                                             CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &count, perf));
      for (int i = 0; i < count; ++i)
        if (perf[i].status == CUDNN_STATUS_SUCCESS)
          out.push_back({static_cast<int>(perf[i].algo), perf[i].mathType, perf[i].memory});
    } else {
      cudnnConvolutionBwdDataAlgoPerf_t perf[CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT];
      KILN_CUDA_CHECK(cudnnGetConvolutionBackwardDataAlgorithm_v7(h, w.get(), x.get(), conv.get(), y.get(),
                                                                  CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT, &count, perf));
      for (int i = 0; i < count; ++i)
        if (perf[i].status == CUDNN_STATUS_SUCCESS)
          out.push_back({static_cast<int>(perf[i].algo), perf[i].mathType, perf[i].memory});
    }
    return out;
  }

  Expected<size_t> workspace_for(cudnnHandle_t h, int algo) const {
    size_t bytes = 0;
    if (!transposed)
      KILN_CUDA_CHECK(cudnnGetConvolutionForwardWorkspaceSize(h, x.get(), w.get(), conv.get(), y.get(),
                                                              static_cast<cudnnConvolutionFwdAlgo_t>(algo), &bytes));
    else
      KILN_CUDA_CHECK(cudnnGetConvolutionBackwardDataWorkspaceSize(
          h, w.get(), x.get(), conv.get(), y.get(), static_cast<cudnnConvolutionBwdDataAlgo_t>(algo), &bytes));
    return bytes;
  }
};

std::string tactic_name(int algo, cudnnMathType_t math) {
  return "cudnn_algo" + std::to_string(algo) + "_math" + std::to_string(static_cast<int>(math));
}

class ConvLayer : public CudaLayer {
 public:
  static Expected<std::unique_ptr<CudaLayer>> create(const Node& n, const LayerChoice& choice) {
    auto layer = std::unique_ptr<ConvLayer>(new ConvLayer());
    KILN_RETURN_IF_ERROR(layer->d_.init(n));
    const std::string& precision = choice.precision;
    int algo = -1, math = -1;
    if (!choice.tactic.empty() &&
        std::sscanf(choice.tactic.c_str(), "cudnn_algo%d_math%d", &algo, &math) != 2)
      return invalid_model("{}: unknown convolution tactic '{}'", n.describe(), choice.tactic);
    KILN_RETURN_IF_ERROR(with_query_handle([&](cudnnHandle_t h) -> Status {
      if (algo < 0) {
        // No timed choice: cuDNN's first heuristic pick under the precision's math type.
        KILN_RETURN_IF_ERROR(layer->d_.set_math(default_math(precision)));
        KILN_ASSIGN_OR_RETURN(auto cands, layer->d_.candidates(h));
        for (const auto& c : cands)
          if (math_allowed(c.math, precision)) {
            algo = c.algo;
            math = static_cast<int>(c.math);
            break;
          }
        if (algo < 0) return unsupported("{}: cuDNN offers no algorithm for this convolution", n.describe());
      }
      auto m = static_cast<cudnnMathType_t>(math);
      if (!math_allowed(m, precision))
        return invalid_model("{}: tactic '{}' does not fit precision {}", n.describe(), choice.tactic, precision);
      // float32 without TF32 must not run tensor-core kernels whatever the heuristics reported.
      KILN_RETURN_IF_ERROR(layer->d_.set_math(precision == "fp32" ? CUDNN_FMA_MATH : m));
      KILN_ASSIGN_OR_RETURN(layer->workspace_, layer->d_.workspace_for(h, algo));
      return Status::Ok();
    }));
    layer->algo_ = algo;
    const ConvGeometry& geo = layer->d_.geo;
    if (!geo.prepad.empty()) {
      KILN_RETURN_IF_ERROR(upload_axis_maps(geo.x_node, geo.prepad, layer->prepad_maps_, layer->prepad_));
      layer->prepad_offset_ = (layer->workspace_ + 255) / 256 * 256;
      layer->total_workspace_ = layer->prepad_offset_ + static_cast<size_t>(dims_numel(geo.x)) * dtype_size(layer->d_.dtype);
    } else {
      layer->total_workspace_ = layer->workspace_;
    }
    const Dims& y = layer->d_.geo.y;
    layer->outer_ = y[0];
    layer->channels_ = y[1];
    layer->inner_ = y[0] * y[1] > 0 ? dims_numel(y) / (y[0] * y[1]) : 0;
    return std::unique_ptr<CudaLayer>(std::move(layer));
  }

  size_t workspace_bytes() const override { return total_workspace_; }

  Status enqueue(const LaunchArgs& a) const override {
    if (a.outputs[0].numel() == 0) return Status::Ok();
    if (a.workspace_bytes < total_workspace_) return internal_error("convolution workspace too small");
    const float alpha = 1.f, beta = 0.f;
    const DeviceTensor &w = a.inputs[1], &y = a.outputs[0];
    DeviceTensor x = a.inputs[0];
    if (!d_.geo.prepad.empty() && x.numel() > 0) {
      void* padded = static_cast<char*>(a.workspace) + prepad_offset_;
      KILN_CUDA_CHECK(kernels::axis_map_gather(dtype_size(x.dtype), x.data, padded, prepad_maps_.as<int64_t>(), nullptr,
                                               prepad_, a.stream));
      x.data = padded;
    }
    if (x.numel() == 0) {
      KILN_CUDA_CHECK(cudaMemsetAsync(y.data, 0, y.nbytes(), a.stream));
    } else if (!d_.transposed) {
      KILN_CUDA_CHECK(cudnnConvolutionForward(a.handles.cudnn, &alpha, d_.x.get(), x.data, d_.w.get(), w.data,
                                              d_.conv.get(), static_cast<cudnnConvolutionFwdAlgo_t>(algo_),
                                              a.workspace, workspace_, &beta, d_.y.get(), y.data));
    } else {
      KILN_CUDA_CHECK(cudnnConvolutionBackwardData(a.handles.cudnn, &alpha, d_.w.get(), w.data, d_.x.get(), x.data,
                                                   d_.conv.get(), static_cast<cudnnConvolutionBwdDataAlgo_t>(algo_),
                                                   a.workspace, workspace_, &beta, d_.y.get(), y.data));
    }
    if (a.inputs.size() > 2 && a.inputs[2].data)
      KILN_CUDA_CHECK(kernels::add_channel_bias(d_.dtype, y.data, a.inputs[2].data, outer_, channels_, inner_, a.stream));
    return Status::Ok();
  }

 private:
  ConvDescs d_;
  int algo_ = 0;
  size_t workspace_ = 0;        // cuDNN's
  size_t prepad_offset_ = 0;    // where the pre-padded X starts in the workspace
  size_t total_workspace_ = 0;
  kernels::AxisMapParams prepad_;
  DeviceBuffer prepad_maps_;
  int64_t outer_ = 0, channels_ = 0, inner_ = 0;
};

bool conv_supports(const Node& n) {
  if (!n.has_input(0) || !n.has_input(1) || !n.has_output(0) || n.outputs.size() != 1) return false;
  const DType t = n.inputs[0]->type.dtype;
  if (!is_gpu_float(t) || n.inputs[1]->type.dtype != t || n.outputs[0]->type.dtype != t) return false;
  if (n.has_input(2) && n.inputs[2]->type.dtype != t) return false;
  if (!all_static(n)) return false;
  return conv_geometry(n).ok();
}

std::vector<std::string> conv_tactics(const Node& n, const BuildOptions& options) {
  std::vector<std::string> out;
  const std::string precision = precision_for(n.outputs[0]->type.dtype, options);
  ConvDescs d;
  if (!d.init(n).ok() || !d.set_math(default_math(precision)).ok()) return out;
  Status st = with_query_handle([&](cudnnHandle_t h) -> Status {
    KILN_ASSIGN_OR_RETURN(auto cands, d.candidates(h));
    for (const auto& c : cands) {
      if (!math_allowed(c.math, precision) || c.memory > options.workspace_bytes) continue;
      std::string name = tactic_name(c.algo, c.math);
      if (std::find(out.begin(), out.end(), name) == out.end()) out.push_back(name);
    }
    return Status::Ok();
  });
  if (!st.ok()) out.clear();  // create() then reports the error with the default choice
  return out;
}

CudaLayerFactory conv_factory() {
  return CudaLayerFactory{.supports = conv_supports, .tactics = conv_tactics, .create = ConvLayer::create};
}

}  // namespace
}  // namespace kiln::cuda

KILN_REGISTER_CUDA_LAYER("Conv", kiln::cuda::conv_factory());
KILN_REGISTER_CUDA_LAYER("ConvTranspose", kiln::cuda::conv_factory());
