// kiln.FusedConv heads on the CUDA backend (conv_head.hpp).
#include "backends/cuda/layers/conv_head.hpp"

#include "backends/cuda/layers/narrow_conv_kernels.hpp"
#include "backends/cuda/layers/nn_util.hpp"

namespace kiln::cuda {
namespace {

// Y's dims: the output's with the convolution's M channels instead of the head's K.
std::optional<Dims> body_dims(const Node& n) {
  auto h = static_dims(n.outputs[0]);
  auto w = static_dims(n.inputs[1]);
  if (!h || !w || h->size() != 4 || w->size() != 4) return std::nullopt;
  Dims y = *h;
  y[3] = (*w)[0];
  return y;
}

class ConvHeadTailLayer : public CudaLayer {
 public:
  ConvHeadTailLayer(std::unique_ptr<CudaLayer> body, Dims y, DType t, int k)
      : body_(std::move(body)), y_(std::move(y)), dtype_(t), k_(k) {
    y_offset_ = (body_->workspace_bytes() + 255) / 256 * 256;
    workspace_ = y_offset_ + static_cast<size_t>(dims_numel(y_)) * dtype_size(t);
  }

  size_t workspace_bytes() const override { return workspace_; }

  Status enqueue(const LaunchArgs& a) const override {
    if (a.outputs[0].numel() == 0) return Status::Ok();
    if (a.workspace_bytes < workspace_) return internal_error("convolution head workspace too small");
    void* y = static_cast<char*>(a.workspace) + y_offset_;
    const std::vector<DeviceTensor> inputs(a.inputs.begin(), a.inputs.begin() + std::min<size_t>(a.inputs.size(), 4));
    const std::vector<DeviceTensor> outputs{DeviceTensor{.data = y, .dtype = dtype_, .dims = y_}};
    KILN_RETURN_IF_ERROR(body_->enqueue(LaunchArgs{.inputs = inputs, .outputs = outputs, .workspace = a.workspace,
                                                   .workspace_bytes = y_offset_, .stream = a.stream,
                                                   .handles = a.handles}));
    const void* hb = a.inputs.size() > 5 ? a.inputs[5].data : nullptr;
    const int64_t pixels = y_[0] * y_[1] * y_[2];
    KILN_CUDA_CHECK(kernels::narrow_conv(dtype_, y, a.inputs[4].data, hb, nullptr, a.outputs[0].data, pixels,
                                         static_cast<int>(y_[3]), k_, false, a.stream));
    return Status::Ok();
  }

 private:
  std::unique_ptr<CudaLayer> body_;
  Dims y_;
  DType dtype_;
  int k_;
  size_t y_offset_ = 0, workspace_ = 0;
};

}  // namespace

bool has_conv_head(const Node& n) { return n.inputs.size() > 4 && n.has_input(4); }

bool conv_head_supported(const Node& n) {
  if (!has_conv_head(n) || n.attrs.s("layout", "NCHW") != "NHWC" || n.inputs.size() > 6) return false;
  auto y = body_dims(n);
  auto hw = static_dims(n.inputs[4]);
  if (!y || !hw) return false;
  const DType t = n.outputs[0]->type.dtype;
  if (!is_gpu_float(t) || n.inputs[4]->type.dtype != t) return false;
  if (n.has_input(5) && (n.inputs[5]->type.dtype != t || static_dims(n.inputs[5]) != Dims{(*hw)[0]})) return false;
  const int64_t m = (*y)[3], k = (*hw)[0];
  return *hw == Dims{k, 1, 1, m} && k >= 1 && k <= kernels::kNarrowMaxOutputs && m <= kernels::kNarrowMaxInputs &&
         (m * static_cast<int64_t>(dtype_size(t))) % 16 == 0;
}

Expected<ConvBody> conv_body(const Node& n) {
  auto y = body_dims(n);
  if (!y) return invalid_model("{}: a convolution head needs static 4-D shapes", n.describe());
  ConvBody body;
  body.graph = std::make_unique<Graph>();
  Graph& g = *body.graph;
  std::vector<Value*> inputs;
  for (size_t i = 0; i < 4 && i < n.inputs.size(); ++i) {
    const Value* v = n.inputs[i];
    if (!v) {
      inputs.push_back(nullptr);
      continue;
    }
    Value* copy = v->is_constant() ? g.add_constant(v->name, *v->constant) : g.add_value(v->name, v->type);
    copy->type = v->type;
    inputs.push_back(copy);
  }
  while (!inputs.empty() && !inputs.back()) inputs.pop_back();
  Value* out = g.add_value(n.name + "_body", TensorType{n.outputs[0]->type.dtype, Shape::from_dims(*y)});
  Node* node = g.add_node(n.op_type, std::move(inputs), {out}, n.name, n.domain, n.opset);
  node->attrs = n.attrs;
  body.node = node;
  return body;
}

Expected<std::unique_ptr<CudaLayer>> conv_head_tail(const Node& n, std::unique_ptr<CudaLayer> body) {
  if (!conv_head_supported(n))
    return unsupported("{}: this convolution head has no CUDA kernel (NHWC, (K, 1, 1, M) weights, K <= {})",
                       n.describe(), kernels::kNarrowMaxOutputs);
  auto y = body_dims(n);
  return std::unique_ptr<CudaLayer>(std::make_unique<ConvHeadTailLayer>(
      std::move(body), *y, n.outputs[0]->type.dtype, static_cast<int>((*static_dims(n.inputs[4]))[0])));
}

}  // namespace kiln::cuda
