// kiln.NHWC (ops/nhwc_op.cpp): pools through cuDNN's pooling on NHWC descriptors (MaxPool,
// AveragePool and the global pools, for the windows nhwc_pool_window accepts) or, for the windowed
// pools, our own kernel (nhwc_pool.cu; tactics "cudnn" and "direct", timed); ConvTranspose
// through conv.cpp's layer.
#include "backends/cuda/layers/conv_descs.hpp"
#include "backends/cuda/layers/conv_transpose_gemm.hpp"
#include "backends/cuda/layers/conv_transpose_tma.hpp"
#include "backends/cuda/layers/nn_kernels.hpp"
#include "ops/fused_conv.hpp"

namespace kiln::cuda {
namespace {

// X and Y in NCHW order (the node's NHWC dims permuted).
std::optional<std::pair<Dims, Dims>> nchw_dims(const Node& n) {
  auto x = static_dims(n.has_input(0) ? n.inputs[0] : nullptr);
  auto y = static_dims(n.has_output(0) ? n.outputs[0] : nullptr);
  if (!x || !y || x->size() != 4 || y->size() != 4) return std::nullopt;
  Dims xn, yn;
  for (int64_t p : nhwc_to_nchw_perm(4)) {
    xn.push_back((*x)[static_cast<size_t>(p)]);
    yn.push_back((*y)[static_cast<size_t>(p)]);
  }
  return std::make_pair(xn, yn);
}

bool is_windowed_pool(const Node& n) {
  const std::string op = n.attrs.s("op", "");
  return op == "MaxPool" || op == "AveragePool";
}

// Our own kernel (tactic "direct"): one thread per output pixel and 16 bytes of channels.
class NhwcDirectPoolLayer : public CudaLayer {
 public:
  static Expected<std::unique_ptr<CudaLayer>> create(const Node& n) {
    auto dims = nchw_dims(n);
    if (!dims) return unsupported("{}: shapes are not static 4-D", n.describe());
    KILN_ASSIGN_OR_RETURN(Window w, nhwc_pool_window(n, dims->first));
    const Dims &x = dims->first, &y = dims->second;  // NCHW order
    for (int64_t d : {x[2], x[3], w.kernel[0], w.kernel[1], w.strides[0], w.strides[1]})
      if (d > INT32_MAX) return unsupported("{}: sizes too large for the direct NHWC pool", n.describe());
    auto layer = std::unique_ptr<NhwcDirectPoolLayer>(new NhwcDirectPoolLayer());
    layer->max_ = n.attrs.s("op", "") == "MaxPool";
    layer->dtype_ = n.inputs[0]->type.dtype;
    kernels::NhwcPoolParams& p = layer->p_;
    p.n = x[0];
    p.c = x[1];
    p.h = static_cast<int>(x[2]);
    p.w = static_cast<int>(x[3]);
    p.oh = y[2];
    p.ow = y[3];
    p.kh = static_cast<int>(w.kernel[0]);
    p.kw = static_cast<int>(w.kernel[1]);
    p.sh = static_cast<int>(w.strides[0]);
    p.sw = static_cast<int>(w.strides[1]);
    p.ph = static_cast<int>(w.pads_begin[0]);
    p.pw = static_cast<int>(w.pads_begin[1]);
    p.count_include_pad = n.attrs.i("count_include_pad", 0) != 0;
    return std::unique_ptr<CudaLayer>(std::move(layer));
  }

  Status enqueue(const LaunchArgs& a) const override {
    if (a.outputs[0].numel() == 0) return Status::Ok();
    KILN_CUDA_CHECK(kernels::nhwc_pool(dtype_, max_, a.inputs[0].data, a.outputs[0].data, p_, a.stream));
    return Status::Ok();
  }

 private:
  kernels::NhwcPoolParams p_;
  DType dtype_ = DType::kFloat32;
  bool max_ = true;
};

class NhwcPoolLayer : public CudaLayer {
 public:
  static Expected<std::unique_ptr<CudaLayer>> create(const Node& n, const LayerChoice&) {
    auto dims = nchw_dims(n);
    if (!dims) return unsupported("{}: shapes are not static 4-D", n.describe());
    KILN_ASSIGN_OR_RETURN(Window w, nhwc_pool_window(n, dims->first));
    auto type = cudnn_type(n.inputs[0]->type.dtype);
    if (!type) return unsupported("{}: dtype {}", n.describe(), dtype_name(n.inputs[0]->type.dtype));
    auto layer = std::unique_ptr<NhwcPoolLayer>(new NhwcPoolLayer());
    KILN_RETURN_IF_ERROR(set_conv_tensor(layer->x_, *type, dims->first, true));
    KILN_RETURN_IF_ERROR(set_conv_tensor(layer->y_, *type, dims->second, true));
    int k[2], pad[2], s[2];
    for (size_t i = 0; i < 2; ++i) {
      if (w.kernel[i] > INT32_MAX) return unsupported("{}: window too large", n.describe());
      k[i] = static_cast<int>(w.kernel[i]);
      pad[i] = static_cast<int>(w.pads_begin[i]);
      s[i] = static_cast<int>(w.strides[i]);
    }
    const std::string op = n.attrs.s("op", "");
    const bool max = op == "MaxPool" || op == "GlobalMaxPool";
    const cudnnPoolingMode_t mode = cudnn_pool_mode(max, n);
    KILN_CUDA_CHECK(cudnnCreatePoolingDescriptor(layer->pool_.out()));
    KILN_CUDA_CHECK(cudnnSetPoolingNdDescriptor(layer->pool_.get(), mode, CUDNN_PROPAGATE_NAN, 2, k, pad, s));
    return std::unique_ptr<CudaLayer>(std::move(layer));
  }

  Status enqueue(const LaunchArgs& a) const override {
    if (a.outputs[0].numel() == 0) return Status::Ok();
    const float alpha = 1.f, beta = 0.f;
    KILN_CUDA_CHECK(cudnnPoolingForward(a.handles.cudnn, pool_.get(), &alpha, x_.get(), a.inputs[0].data, &beta,
                                        y_.get(), a.outputs[0].data));
    return Status::Ok();
  }

 private:
  PoolDesc pool_;
  TensorDesc x_, y_;
};

bool is_nhwc_conv_transpose(const Node& n) { return n.attrs.s("op", "") == "ConvTranspose"; }

bool nhwc_pool_supports(const Node& n) {
  if (n.inputs.size() != 1 || n.outputs.size() != 1 || !all_static(n)) return false;
  const DType t = n.inputs[0]->type.dtype;
  const bool int8_max = t == DType::kInt8 && n.attrs.s("op", "") == "MaxPool";  // our kernel only
  if ((!is_gpu_float(t) && !int8_max) || n.outputs[0]->type.dtype != t || !nhwc_wrappable(n.attrs.s("op", "")))
    return false;
  auto dims = nchw_dims(n);
  return dims && nhwc_pool_window(n, dims->first).ok();
}

// kiln.NHWC: ConvTranspose runs on conv.cpp's layer (NHWC descriptors) or, when its kernel equals
// its stride, as cuBLASLt GEMMs (conv_transpose_gemm.cpp) or kiln's Hopper GEMM
// (conv_transpose_tma.cpp), timed against each other; the pools here.
CudaLayerFactory nhwc_factory() {
  static const CudaLayerFactory conv = conv_layer_factory();
  return CudaLayerFactory{
      .supports = [](const Node& n) {
        if (is_nhwc_conv_transpose(n)) return conv.supports(n) || conv_transpose_gemm_fits(n);
        return nhwc_pool_supports(n);
      },
      .tactics = [](const Node& n, const BuildOptions& o) {
        if (is_nhwc_conv_transpose(n)) {
          std::vector<std::string> t = conv.supports(n) ? conv.tactics(n, o) : std::vector<std::string>{};
          if (conv.supports(n) && t.empty()) t.push_back("");  // cuDNN's default kernel stays a candidate
          for (std::string& g : conv_transpose_gemm_tactics(n, o)) t.push_back(std::move(g));
          for (std::string& k : conv_transpose_tma_tactics(n)) t.push_back(std::move(k));
          return t;
        }
        if (!is_windowed_pool(n)) return std::vector<std::string>{};
        if (!is_gpu_float(n.inputs[0]->type.dtype)) return std::vector<std::string>{"direct"};
        return std::vector<std::string>{"direct", "cudnn"};
      },
      .create = [](const Node& n, const LayerChoice& c) -> Expected<std::unique_ptr<CudaLayer>> {
        if (is_nhwc_conv_transpose(n)) {
          if (is_conv_transpose_tma_tactic(c.tactic)) return conv_transpose_tma_create(n, c.tactic);
          return is_conv_transpose_gemm_tactic(c.tactic) ? conv_transpose_gemm_create(n, c) : conv.create(n, c);
        }
        if (c.tactic == "direct") {
          if (!is_windowed_pool(n)) return invalid_model("{}: tactic 'direct' is for MaxPool/AveragePool", n.describe());
          return NhwcDirectPoolLayer::create(n);
        }
        if (!c.tactic.empty() && c.tactic != "cudnn")
          return invalid_model("{}: unknown NHWC pooling tactic '{}'", n.describe(), c.tactic);
        if (!is_gpu_float(n.inputs[0]->type.dtype))
          return invalid_model("{}: tactic 'cudnn' pools floats only", n.describe());
        return NhwcPoolLayer::create(n, c);
      }};
}

}  // namespace
}  // namespace kiln::cuda

KILN_REGISTER_CUDA_LAYER("kiln.NHWC", kiln::cuda::nhwc_factory());
