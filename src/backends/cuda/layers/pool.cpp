// MaxPool, AveragePool, LpPool and the global pools. Two tactics where cuDNN can do the node
// exactly ("cudnn": symmetric pads, no dilation, no ceil_mode overhang, no Indices); otherwise,
// and for the global pools, kiln's direct kernels.
#include "backends/cuda/layers/nn_kernels.hpp"
#include "backends/cuda/layers/nn_util.hpp"
#include "ops/window_geometry.hpp"

namespace kiln::cuda {
namespace {

kernels::PoolKind pool_kind(const Node& n) {
  if (n.op_type == "MaxPool") return kernels::PoolKind::kMax;
  if (n.op_type == "AveragePool") return kernels::PoolKind::kAverage;
  return kernels::PoolKind::kLp;
}

Expected<Window> pool_window(const Node& n) {
  auto x = static_dims(n.inputs[0]);
  if (!x || x->size() < 3 || x->size() > 5)
    return unsupported("{}: only 1-D, 2-D and 3-D pooling runs on CUDA", n.describe());
  return resolve_window(n, Dims(x->begin() + 2, x->end()), nullptr, n.attrs.i("ceil_mode", 0) != 0);
}

Expected<kernels::PoolParams> direct_params(const Node& n) {
  KILN_ASSIGN_OR_RETURN(Window w, pool_window(n));
  kernels::PoolParams p;
  p.kind = pool_kind(n);
  const size_t nd = w.rank(), lead = 3 - nd;
  for (size_t i = 0; i < nd; ++i) {
    for (int64_t v : {w.kernel[i], w.strides[i], w.dilations[i], w.pads_begin[i], w.pads_end[i]})
      if (v > INT32_MAX) return unsupported("{}: window attributes too large", n.describe());
    p.in[lead + i] = w.in[i];
    p.out[lead + i] = w.out[i];
    p.kernel[lead + i] = static_cast<int>(w.kernel[i]);
    p.stride[lead + i] = static_cast<int>(w.strides[i]);
    p.dilation[lead + i] = static_cast<int>(w.dilations[i]);
    p.pad_begin[lead + i] = static_cast<int>(w.pads_begin[i]);
    p.pad_end[lead + i] = static_cast<int>(w.pads_end[i]);
  }
  p.count_include_pad = n.attrs.i("count_include_pad", 0) != 0;
  p.column_major = n.attrs.i("storage_order", 0) == 1;
  const int64_t lp = n.attrs.i("p", 2);
  if (lp < 1 || lp > 64) return unsupported("{}: p {}", n.describe(), lp);
  p.p = static_cast<int>(lp);
  return p;
}

// Whether cuDNN's pooling computes exactly what the node asks (see the file comment).
bool cudnn_can_pool(const Node& n) {
  if (n.op_type == "LpPool" || n.has_output(1)) return false;
  auto w = pool_window(n);
  if (!w.ok()) return false;
  for (size_t i = 0; i < w->rank(); ++i) {
    if (w->dilations[i] != 1 || w->pads_begin[i] != w->pads_end[i] || w->pads_begin[i] >= w->kernel[i]) return false;
    // No ceil_mode window past cuDNN's (floor) output size.
    if ((w->in[i] + 2 * w->pads_begin[i] - w->kernel[i]) / w->strides[i] + 1 != w->out[i]) return false;
    if (w->kernel[i] > INT32_MAX || w->strides[i] > INT32_MAX) return false;
  }
  return true;
}

class DirectPoolLayer : public CudaLayer {
 public:
  explicit DirectPoolLayer(kernels::PoolParams p) : p_(p) {}
  Status enqueue(const LaunchArgs& a) const override {
    const DeviceTensor& x = a.inputs[0];
    int64_t* indices = a.outputs.size() > 1 ? a.outputs[1].as<int64_t>() : nullptr;
    KILN_CUDA_CHECK(kernels::pool_direct(x.dtype, x.data, a.outputs[0].data, indices, x.dims[0] * x.dims[1], p_,
                                         a.stream));
    return Status::Ok();
  }

 private:
  kernels::PoolParams p_;
};

class CudnnPoolLayer : public CudaLayer {
 public:
  static Expected<std::unique_ptr<CudaLayer>> create(const Node& n) {
    KILN_ASSIGN_OR_RETURN(Window w, pool_window(n));
    auto layer = std::unique_ptr<CudnnPoolLayer>(new CudnnPoolLayer());
    Dims x = *static_dims(n.inputs[0]), y = *static_dims(n.outputs[0]);
    std::vector<int> k, pad, s;
    for (size_t i = 0; i < w.rank(); ++i) {
      k.push_back(static_cast<int>(w.kernel[i]));
      pad.push_back(static_cast<int>(w.pads_begin[i]));
      s.push_back(static_cast<int>(w.strides[i]));
    }
    if (w.rank() == 1) {  // cuDNN pools 2-D and 3-D: a unit H dim
      x.insert(x.begin() + 2, 1);
      y.insert(y.begin() + 2, 1);
      k.insert(k.begin(), 1);
      pad.insert(pad.begin(), 0);
      s.insert(s.begin(), 1);
    }
    auto type = cudnn_type(n.inputs[0]->type.dtype);
    if (!type) return unsupported("{}: dtype", n.describe());
    KILN_RETURN_IF_ERROR(set_packed_tensor(layer->x_, *type, x));
    KILN_RETURN_IF_ERROR(set_packed_tensor(layer->y_, *type, y));
    const cudnnPoolingMode_t mode = cudnn_pool_mode(n.op_type == "MaxPool", n);
    KILN_CUDA_CHECK(cudnnCreatePoolingDescriptor(layer->pool_.out()));
    KILN_CUDA_CHECK(cudnnSetPoolingNdDescriptor(layer->pool_.get(), mode, CUDNN_PROPAGATE_NAN,
                                                static_cast<int>(k.size()), k.data(), pad.data(), s.data()));
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

bool pool_supports(const Node& n) {
  if (!n.has_input(0) || !n.has_output(0) || !all_static(n)) return false;
  const DType t = n.inputs[0]->type.dtype;
  const bool int_max = n.op_type == "MaxPool" && (t == DType::kInt8 || t == DType::kUInt8);
  if (!is_gpu_float(t) && !int_max) return false;
  if (n.outputs.size() > 1 && n.has_output(1) && n.outputs[1]->type.dtype != DType::kInt64) return false;
  return direct_params(n).ok();
}

CudaLayerFactory pool_factory() {
  return CudaLayerFactory{
      .supports = pool_supports,
      .tactics = [](const Node& n, const BuildOptions&) -> std::vector<std::string> {
        if (cudnn_can_pool(n) && is_gpu_float(n.inputs[0]->type.dtype)) return {"direct", "cudnn"};
        return {"direct"};
      },
      .create = [](const Node& n, const LayerChoice& c) -> Expected<std::unique_ptr<CudaLayer>> {
        if (c.tactic == "cudnn") {
          if (!cudnn_can_pool(n)) return invalid_model("{}: tactic 'cudnn' does not fit this node", n.describe());
          return CudnnPoolLayer::create(n);
        }
        if (!c.tactic.empty() && c.tactic != "direct")
          return invalid_model("{}: unknown pooling tactic '{}'", n.describe(), c.tactic);
        KILN_ASSIGN_OR_RETURN(kernels::PoolParams p, direct_params(n));
        return std::unique_ptr<CudaLayer>(std::make_unique<DirectPoolLayer>(p));
      }};
}

class GlobalPoolLayer : public CudaLayer {
 public:
  explicit GlobalPoolLayer(bool max) : max_(max) {}
  Status enqueue(const LaunchArgs& a) const override {
    const DeviceTensor& x = a.inputs[0];
    const int64_t planes = x.dims[0] * x.dims[1];
    const int64_t size = planes > 0 ? x.numel() / planes : 0;
    KILN_CUDA_CHECK(kernels::global_pool(x.dtype, max_, x.data, a.outputs[0].data, planes, size, a.stream));
    return Status::Ok();
  }

 private:
  bool max_;
};

CudaLayerFactory global_pool_factory(bool max) {
  return CudaLayerFactory{
      .supports = [](const Node& n) {
        if (!n.has_input(0) || !n.has_output(0) || !all_static(n)) return false;
        auto x = static_dims(n.inputs[0]);
        return is_gpu_float(n.inputs[0]->type.dtype) && x->size() >= 3;
      },
      .tactics = nullptr,
      .create = [max](const Node&, const LayerChoice&) -> Expected<std::unique_ptr<CudaLayer>> {
        return std::unique_ptr<CudaLayer>(std::make_unique<GlobalPoolLayer>(max));
      }};
}

}  // namespace
}  // namespace kiln::cuda

KILN_REGISTER_CUDA_LAYER("MaxPool", kiln::cuda::pool_factory());
KILN_REGISTER_CUDA_LAYER("AveragePool", kiln::cuda::pool_factory());
KILN_REGISTER_CUDA_LAYER("LpPool", kiln::cuda::pool_factory());
KILN_REGISTER_CUDA_LAYER("GlobalMaxPool", kiln::cuda::global_pool_factory(true));
KILN_REGISTER_CUDA_LAYER("GlobalAveragePool", kiln::cuda::global_pool_factory(false));
