// kiln.FusedConv (ops/fused_conv.cpp): act(conv(X, W) + B + Z) in NCHW or NHWC. Two kinds of
// tactics, all timed by the builder:
//   "fused_algo<A>_math<M>": one cudnnConvolutionBiasActivationForward call (cuDNN runs an
//     identity activation only with IMPLICIT_PRECOMP_GEMM, so without Relu only that algo);
//   "cudnn_algo<A>_math<M>": cudnnConvolutionForward, then one epilogue kernel (bias, Z, Relu);
//   "graph_e<E>[_k<T>.<V>]...": one cuDNN graph-API engine config running the whole node
//     (conv_graph.hpp; the heuristics' first configs), or "graphp_..." running the convolution
//     alone, then the epilogue kernel. A config this GPU/cuDNN cannot re-create at load falls
//     back to the heuristics' first, with a note on stderr;
//   "direct_smallc": NHWC with C <= 4 and C*kh*kw <= 160 (a 1- or 3-channel stem), small_channel_conv.hpp;
//   "direct_narrow": NHWC 1x1 with M <= 8 outputs (a segmentation head), narrow_conv.hpp;
//   "halo3x3": float16 NHWC 3x3 stride 1 with 64 inputs and outputs on Hopper, halo_conv.hpp;
//   "mma_smallk": float16/bfloat16 NHWC with kh*kw*C <= 16 (a grayscale 3x3 stem) on tensor cores,
//     smallk_conv.hpp.
// A node with a head (conv_head.hpp) offers its body's tactics: halo3x3 applies the head in its
// epilogue, the others run the body and then the head.
// X is pre-padded into the workspace when its pads are unequal (as for Conv).
#include <algorithm>
#include <cstdio>

#include "backends/cuda/layers/conv_graph.hpp"
#include "backends/cuda/layers/conv_head.hpp"
#include "backends/cuda/layers/halo_conv.hpp"
#include "backends/cuda/layers/narrow_conv.hpp"
#include "backends/cuda/layers/small_channel_conv.hpp"
#include "backends/cuda/layers/smallk_conv.hpp"

namespace kiln::cuda {
namespace {

using ActivationDesc = CudnnDesc<cudnnActivationDescriptor_t, cudnnDestroyActivationDescriptor>;

bool has_relu(const Node& n) { return n.attrs.s("activation", "") == "Relu"; }

ConvGraphSpec graph_spec(const Node& n, const ConvGeometry& geo, DType dtype, const std::string& precision) {
  return ConvGraphSpec{.geo = geo, .dtype = dtype, .bias = n.has_input(2), .z = n.has_input(3), .relu = has_relu(n),
                       .precision = precision};
}

// Whether cuDNN's fused call can run this algorithm with the node's activation and dtype (its
// documented configurations are float32 and float16; bfloat16 runs the unfused tactics).
bool fusable_algo(const Node& n, int algo) {
  const DType t = n.outputs[0]->type.dtype;
  if (t != DType::kFloat32 && t != DType::kFloat16) return false;
  return has_relu(n) || algo == CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM;
}

class FusedConvLayer : public CudaLayer {
 public:
  static Expected<std::unique_ptr<CudaLayer>> create(const Node& n, const LayerChoice& choice) {
    if (has_conv_head(n)) {
      if (choice.tactic == kHaloConvTactic && halo_conv_fits(n)) return halo_conv_create(n);
      KILN_ASSIGN_OR_RETURN(ConvBody body, conv_body(n));
      KILN_ASSIGN_OR_RETURN(auto layer, create(*body.node, choice));
      return conv_head_tail(n, std::move(layer));
    }
    if (choice.tactic == kSmallChannelTactic) return small_channel_conv_create(n);
    if (choice.tactic == kNarrowConvTactic) return narrow_conv_create(n);
    if (choice.tactic == kHaloConvTactic) return halo_conv_create(n);
    if (choice.tactic == kSmallkConvTactic) return smallk_conv_create(n);
    auto layer = std::unique_ptr<FusedConvLayer>(new FusedConvLayer());
    FusedConvLayer& l = *layer;
    KILN_RETURN_IF_ERROR(l.d_.init(n));
    const std::string& precision = choice.precision;
    int algo = -1, math = -1;
    bool graph = false;
    if (is_graph_tactic(choice.tactic)) {
      KILN_ASSIGN_OR_RETURN(graph, l.init_graph(n, choice.tactic, precision));
    } else if (!choice.tactic.empty()) {
      if (std::sscanf(choice.tactic.c_str(), "fused_algo%d_math%d", &algo, &math) == 2) l.fused_ = true;
      else if (std::sscanf(choice.tactic.c_str(), "cudnn_algo%d_math%d", &algo, &math) != 2)
        return invalid_model("{}: unknown convolution tactic '{}'", n.describe(), choice.tactic);
    }
    if (graph) l.workspace_ = l.graph_->workspace();
    if (!graph) KILN_RETURN_IF_ERROR(with_query_handle([&](cudnnHandle_t h) -> Status {
      if (algo < 0) {
        // No timed choice: cuDNN's first heuristic pick, fused when cuDNN can fuse it.
        KILN_RETURN_IF_ERROR(l.d_.set_math(default_math(precision)));
        KILN_ASSIGN_OR_RETURN(auto cands, l.d_.candidates(h));
        for (const auto& c : cands)
          if (math_allowed(c.math, precision)) {
            algo = c.algo;
            math = static_cast<int>(c.math);
            l.fused_ = fusable_algo(n, algo);
            break;
          }
        if (algo < 0) return unsupported("{}: cuDNN offers no algorithm for this convolution", n.describe());
      }
      auto m = static_cast<cudnnMathType_t>(math);
      if (!math_allowed(m, precision))
        return invalid_model("{}: tactic '{}' does not fit precision {}", n.describe(), choice.tactic, precision);
      if (l.fused_ && !fusable_algo(n, algo))
        return invalid_model("{}: tactic '{}' cannot run fused (identity activation: algo 1 only; no bfloat16)",
                             n.describe(), choice.tactic);
      KILN_RETURN_IF_ERROR(l.d_.set_math(precision == "fp32" ? CUDNN_FMA_MATH : m));
      KILN_ASSIGN_OR_RETURN(l.workspace_, l.d_.workspace_for(h, algo));
      return Status::Ok();
    }));
    l.algo_ = algo;
    const ConvGeometry& geo = l.d_.geo;
    if (!geo.prepad.empty()) {
      KILN_RETURN_IF_ERROR(upload_axis_maps(geo.x_node, geo.prepad, l.prepad_maps_, l.prepad_));
      l.prepad_offset_ = (l.workspace_ + 255) / 256 * 256;
      l.total_workspace_ = l.prepad_offset_ + static_cast<size_t>(dims_numel(geo.x)) * dtype_size(l.d_.dtype);
    } else {
      l.total_workspace_ = l.workspace_;
    }
    const Dims& y = geo.y;  // NCHW order
    const int64_t spatial = y[0] * y[1] > 0 ? dims_numel(y) / (y[0] * y[1]) : 0;
    l.channels_ = y[1];
    l.outer_ = geo.nhwc ? y[0] * spatial : y[0];
    l.inner_ = geo.nhwc ? 1 : spatial;
    l.relu_ = has_relu(n);
    if (l.fused_) KILN_RETURN_IF_ERROR(l.init_fused(n));
    return std::unique_ptr<CudaLayer>(std::move(layer));
  }

  size_t workspace_bytes() const override { return total_workspace_; }

  Status enqueue(const LaunchArgs& a) const override {
    const DeviceTensor &w = a.inputs[1], &y = a.outputs[0];
    if (y.numel() == 0) return Status::Ok();
    if (a.workspace_bytes < total_workspace_) return internal_error("convolution workspace too small");
    const void* bias = a.inputs.size() > 2 ? a.inputs[2].data : nullptr;
    const void* z = a.inputs.size() > 3 ? a.inputs[3].data : nullptr;
    DeviceTensor x = a.inputs[0];
    if (x.numel() == 0) {
      // No input channels: the convolution is zero; the epilogue still applies.
      KILN_CUDA_CHECK(cudaMemsetAsync(y.data, 0, y.nbytes(), a.stream));
      KILN_CUDA_CHECK(kernels::conv_epilogue(d_.dtype, y.data, bias, z, relu_, outer_, channels_, inner_, a.stream));
      return Status::Ok();
    }
    if (!d_.geo.prepad.empty()) {
      void* padded = static_cast<char*>(a.workspace) + prepad_offset_;
      KILN_CUDA_CHECK(kernels::axis_map_gather(dtype_size(x.dtype), x.data, padded, prepad_maps_.as<int64_t>(), nullptr,
                                               prepad_, a.stream));
      x.data = padded;
    }
    if (graph_) {
      KILN_RETURN_IF_ERROR(graph_->execute(a.handles.cudnn, x.data, w.data, bias, z, y.data, a.workspace));
      // A graph of the convolution alone ("graphp_"): the epilogue kernel adds the rest.
      if (!graph_->spec().has_epilogue() && (bias || z || relu_))
        KILN_CUDA_CHECK(kernels::conv_epilogue(d_.dtype, y.data, bias, z, relu_, outer_, channels_, inner_, a.stream));
      return Status::Ok();
    }
    const float one = 1.f, zero = 0.f;
    const auto algo = static_cast<cudnnConvolutionFwdAlgo_t>(algo_);
    if (fused_) {
      // alpha2 = 0 without Z: cuDNN still wants a valid z pointer; Y serves.
      const float alpha2 = z ? 1.f : 0.f;
      KILN_CUDA_CHECK(cudnnConvolutionBiasActivationForward(
          a.handles.cudnn, &one, d_.x.get(), x.data, d_.w.get(), w.data, d_.conv.get(), algo, a.workspace, workspace_,
          &alpha2, d_.y.get(), z ? z : y.data, bias_desc_.get(), bias ? bias : zero_bias_.get(), act_.get(),
          d_.y.get(), y.data));
      return Status::Ok();
    }
    KILN_CUDA_CHECK(cudnnConvolutionForward(a.handles.cudnn, &one, d_.x.get(), x.data, d_.w.get(), w.data,
                                            d_.conv.get(), algo, a.workspace, workspace_, &zero, d_.y.get(), y.data));
    if (bias || z || relu_)
      KILN_CUDA_CHECK(kernels::conv_epilogue(d_.dtype, y.data, bias, z, relu_, outer_, channels_, inner_, a.stream));
    return Status::Ok();
  }

 private:
  // The graph-API path for `tactic`; false (with a note) when no graph config runs here, and the
  // layer then takes the legacy API's default.
  Expected<bool> init_graph(const Node& n, const std::string& tactic, const std::string& precision) {
    KILN_ASSIGN_OR_RETURN(graph_, graph_for_tactic(graph_spec(n, d_.geo, d_.dtype, precision), tactic, n.describe()));
    return graph_ != nullptr;
  }

  // Descriptors of the fused call: bias (1, M, 1, 1) of Y's dtype, a zero bias when the node has
  // none, and the activation.
  Status init_fused(const Node& n) {
    auto type = cudnn_type(d_.dtype);
    if (!type) return unsupported("{}: dtype {}", n.describe(), dtype_name(d_.dtype));
    Dims bias_dims(d_.geo.y.size(), 1);
    bias_dims[1] = channels_;
    KILN_RETURN_IF_ERROR(set_packed_tensor(bias_desc_, *type, bias_dims));
    if (!n.has_input(2)) {
      const size_t bytes = static_cast<size_t>(channels_) * dtype_size(d_.dtype);
      KILN_ASSIGN_OR_RETURN(zero_bias_, DeviceBuffer::allocate(std::max<size_t>(bytes, 1)));
      KILN_CUDA_CHECK(cudaMemset(zero_bias_.get(), 0, bytes));
    }
    KILN_CUDA_CHECK(cudnnCreateActivationDescriptor(act_.out()));
    KILN_CUDA_CHECK(cudnnSetActivationDescriptor(act_.get(), relu_ ? CUDNN_ACTIVATION_RELU : CUDNN_ACTIVATION_IDENTITY,
                                                 CUDNN_NOT_PROPAGATE_NAN, 0.0));
    return Status::Ok();
  }

  ConvDescs d_;
  std::shared_ptr<const ConvGraph> graph_;  // set: the graph-API path runs the node
  bool fused_ = false, relu_ = false;
  int algo_ = 0;
  size_t workspace_ = 0;      // cuDNN's
  size_t prepad_offset_ = 0;  // where the pre-padded X starts in the workspace
  size_t total_workspace_ = 0;
  kernels::AxisMapParams prepad_;
  DeviceBuffer prepad_maps_, zero_bias_;
  TensorDesc bias_desc_;
  ActivationDesc act_;
  int64_t outer_ = 0, channels_ = 0, inner_ = 0;  // Y as (outer, channels, inner)
};

bool fused_conv_supports(const Node& n) {
  if (has_conv_head(n)) {
    if (!conv_head_supported(n)) return false;
    auto body = conv_body(n);
    return body.ok() && fused_conv_supports(*body->node);
  }
  if (!n.has_input(0) || !n.has_input(1) || n.outputs.size() != 1 || !n.has_output(0) || n.inputs.size() > 4)
    return false;
  const DType t = n.inputs[0]->type.dtype;
  if (!is_gpu_float(t) || n.inputs[1]->type.dtype != t || n.outputs[0]->type.dtype != t) return false;
  if (n.has_input(2) && n.inputs[2]->type.dtype != t) return false;
  if (n.has_input(3) && (n.inputs[3]->type.dtype != t || n.inputs[3]->type.shape.to_dims() !=
                                                             n.outputs[0]->type.shape.to_dims()))
    return false;
  const std::string act = n.attrs.s("activation", ""), layout = n.attrs.s("layout", "NCHW");
  if ((!act.empty() && act != "Relu") || (layout != "NCHW" && layout != "NHWC")) return false;
  if (!all_static(n)) return false;
  return conv_geometry(n).ok();
}

std::vector<std::string> fused_conv_tactics(const Node& n, const BuildOptions& options) {
  if (has_conv_head(n)) {
    auto body = conv_body(n);
    return body.ok() ? fused_conv_tactics(*body->node, options) : std::vector<std::string>{};
  }
  std::vector<std::string> fused, plain;
  const std::string precision = precision_for(n.outputs[0]->type.dtype, options);
  ConvDescs d;
  if (!d.init(n).ok() || !d.set_math(default_math(precision)).ok()) return {};
  Status st = with_query_handle([&](cudnnHandle_t h) -> Status {
    KILN_ASSIGN_OR_RETURN(auto cands, d.candidates(h));
    for (const auto& c : cands) {
      if (!math_allowed(c.math, precision) || c.memory > options.workspace_bytes) continue;
      for (bool f : {true, false}) {
        if (f && !fusable_algo(n, c.algo)) continue;
        auto& list = f ? fused : plain;
        std::string name = conv_tactic_name(f ? "fused" : "cudnn", c.algo, c.math);
        if (std::find(list.begin(), list.end(), name) == list.end()) list.push_back(name);
      }
    }
    return Status::Ok();
  });
  if (!st.ok()) return {};  // create() then reports the error with the default choice
  // Graph-API configs first: on Hopper they are usually the fastest, and the timer then cuts
  // slower tactics short.
  std::vector<std::string> out = graph_tactics(graph_spec(n, d.geo, d.dtype, precision), options.workspace_bytes);
  out.insert(out.end(), fused.begin(), fused.end());
  out.insert(out.end(), plain.begin(), plain.end());
  if (small_channel_conv_fits(n)) out.push_back(kSmallChannelTactic);
  if (narrow_conv_fits(n)) out.push_back(kNarrowConvTactic);
  if (halo_conv_fits(n)) out.push_back(kHaloConvTactic);
  if (smallk_conv_fits(n)) out.push_back(kSmallkConvTactic);
  return out;
}

CudaLayerFactory fused_conv_factory() {
  return CudaLayerFactory{.supports = fused_conv_supports, .tactics = fused_conv_tactics,
                          .create = FusedConvLayer::create};
}

}  // namespace
}  // namespace kiln::cuda

KILN_REGISTER_CUDA_LAYER("kiln.FusedConv", kiln::cuda::fused_conv_factory());
