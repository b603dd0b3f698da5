// Conv and ConvTranspose through cuDNN's convolution API (forward and backward-data). Every
// algorithm cuDNN offers for the node's shapes and precision is a tactic ("cudnn_algo<A>_math<M>"),
// timed by the builder; the bias is added by a per-channel kernel. The graph API's engine configs
// (conv_graph.hpp: "graph_..." with the bias in the graph, "graphp_..." without) are tactics too.
// cuDNN pads both ends alike: a Conv with unequal pads (TF "SAME" exports) first copies X,
// zero-padded by the difference, into the workspace.
#include <algorithm>
#include <cstdio>

#include "backends/cuda/layers/conv_graph.hpp"

namespace kiln::cuda {
namespace {

ConvGraphSpec graph_spec(const Node& n, const ConvDescs& d, const std::string& precision) {
  return ConvGraphSpec{.geo = d.geo, .dtype = d.dtype, .bias = n.has_input(2), .transposed = d.transposed,
                       .precision = precision};
}

class ConvLayer : public CudaLayer {
 public:
  static Expected<std::unique_ptr<CudaLayer>> create(const Node& n, const LayerChoice& choice) {
    auto layer = std::unique_ptr<ConvLayer>(new ConvLayer());
    KILN_RETURN_IF_ERROR(layer->d_.init(n));
    const std::string& precision = choice.precision;
    int algo = -1, math = -1;
    if (is_graph_tactic(choice.tactic)) {
      KILN_ASSIGN_OR_RETURN(layer->graph_,
                            graph_for_tactic(graph_spec(n, layer->d_, precision), choice.tactic, n.describe()));
      if (layer->graph_) layer->workspace_ = layer->graph_->workspace();
    } else if (!choice.tactic.empty() &&
               std::sscanf(choice.tactic.c_str(), "cudnn_algo%d_math%d", &algo, &math) != 2) {
      return invalid_model("{}: unknown convolution tactic '{}'", n.describe(), choice.tactic);
    }
    if (!layer->graph_) KILN_RETURN_IF_ERROR(with_query_handle([&](cudnnHandle_t h) -> Status {
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
    const Dims& y = layer->d_.geo.y;  // NCHW order
    const int64_t spatial = y[0] * y[1] > 0 ? dims_numel(y) / (y[0] * y[1]) : 0;
    layer->outer_ = geo.nhwc ? y[0] * spatial : y[0];  // NHWC: channels innermost
    layer->channels_ = y[1];
    layer->inner_ = geo.nhwc ? 1 : spatial;
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
    const void* bias = a.inputs.size() > 2 ? a.inputs[2].data : nullptr;
    if (x.numel() == 0) {
      KILN_CUDA_CHECK(cudaMemsetAsync(y.data, 0, y.nbytes(), a.stream));
    } else if (graph_) {
      KILN_RETURN_IF_ERROR(graph_->execute(a.handles.cudnn, x.data, w.data, bias, nullptr, y.data, a.workspace));
      if (graph_->spec().bias) return Status::Ok();  // added in the graph
    } else if (!d_.transposed) {
      KILN_CUDA_CHECK(cudnnConvolutionForward(a.handles.cudnn, &alpha, d_.x.get(), x.data, d_.w.get(), w.data,
                                              d_.conv.get(), static_cast<cudnnConvolutionFwdAlgo_t>(algo_),
                                              a.workspace, workspace_, &beta, d_.y.get(), y.data));
    } else {
      KILN_CUDA_CHECK(cudnnConvolutionBackwardData(a.handles.cudnn, &alpha, d_.w.get(), w.data, d_.x.get(), x.data,
                                                   d_.conv.get(), static_cast<cudnnConvolutionBwdDataAlgo_t>(algo_),
                                                   a.workspace, workspace_, &beta, d_.y.get(), y.data));
    }
    if (bias)
      KILN_CUDA_CHECK(kernels::add_channel_bias(d_.dtype, y.data, bias, outer_, channels_, inner_, a.stream));
    return Status::Ok();
  }

 private:
  ConvDescs d_;
  std::shared_ptr<const ConvGraph> graph_;  // set: the graph-API path runs the convolution
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
      std::string name = conv_tactic_name("cudnn", c.algo, c.math);
      if (std::find(out.begin(), out.end(), name) == out.end()) out.push_back(name);
    }
    return Status::Ok();
  });
  if (!st.ok()) out.clear();  // create() then reports the error with the default choice
  std::vector<std::string> graph = graph_tactics(graph_spec(n, d, precision), options.workspace_bytes);
  out.insert(out.begin(), graph.begin(), graph.end());
  return out;
}

}  // namespace

CudaLayerFactory conv_layer_factory() {
  return CudaLayerFactory{.supports = conv_supports, .tactics = conv_tactics, .create = ConvLayer::create};
}

}  // namespace kiln::cuda

KILN_REGISTER_CUDA_LAYER("Conv", kiln::cuda::conv_layer_factory());
KILN_REGISTER_CUDA_LAYER("ConvTranspose", kiln::cuda::conv_layer_factory());
