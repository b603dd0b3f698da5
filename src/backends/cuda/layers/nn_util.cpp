#include "backends/cuda/layers/nn_util.hpp"

#include <mutex>

namespace kiln::cuda {

std::optional<Dims> static_dims(const Value* v) {
  if (!v) return std::nullopt;
  if (v->constant) return v->constant->dims();
  return v->type.shape.to_dims();
}

bool all_static(const Node& n) {
  for (const Value* v : n.inputs)
    if (v && !static_dims(v)) return false;
  for (const Value* v : n.outputs)
    if (v && !static_dims(v)) return false;
  return true;
}

bool is_gpu_float(DType t) { return t == DType::kFloat32 || t == DType::kFloat16 || t == DType::kBFloat16; }

std::optional<cudnnDataType_t> cudnn_type(DType t) {
  switch (t) {
    case DType::kFloat32: return CUDNN_DATA_FLOAT;
    case DType::kFloat16: return CUDNN_DATA_HALF;
    case DType::kBFloat16: return CUDNN_DATA_BFLOAT16;
    default: return std::nullopt;
  }
}

std::string precision_for(DType out, const BuildOptions& options) {
  if (out == DType::kFloat16) return "fp16";
  if (out == DType::kBFloat16) return "bf16";
  if (out == DType::kFloat32) return options.tf32 ? "tf32" : "fp32";
  return std::string(dtype_name(out));
}

Status with_query_handle(const std::function<Status(cudnnHandle_t)>& fn) {
  static std::mutex mu;
  static cudnnHandle_t handle = nullptr;
  std::lock_guard<std::mutex> lock(mu);
  if (!handle) KILN_CUDA_CHECK(cudnnCreate(&handle));
  return fn(handle);
}

Status set_packed_tensor(TensorDesc& desc, cudnnDataType_t type, const Dims& dims) {
  if (dims.size() < 4 || dims.size() > 8) return internal_error("cuDNN tensor of rank {}", dims.size());
  int d[8], s[8];
  int64_t stride = 1;
  for (size_t i = dims.size(); i-- > 0;) {
    if (dims[i] > INT32_MAX || stride > INT32_MAX)
      return unsupported("tensor dims [{}] exceed cuDNN's 32-bit sizes", fmt::join(dims, ","));
    d[i] = static_cast<int>(dims[i]);
    s[i] = static_cast<int>(stride);
    stride *= dims[i];
  }
  if (!desc.get()) KILN_CUDA_CHECK(cudnnCreateTensorDescriptor(desc.out()));
  KILN_CUDA_CHECK(cudnnSetTensorNdDescriptor(desc.get(), type, static_cast<int>(dims.size()), d, s));
  return Status::Ok();
}

cudnnPoolingMode_t cudnn_pool_mode(bool max, const Node& n) {
  if (max) return CUDNN_POOLING_MAX_DETERMINISTIC;
  return n.attrs.i("count_include_pad", 0) != 0 ? CUDNN_POOLING_AVERAGE_COUNT_INCLUDE_PADDING
                                                : CUDNN_POOLING_AVERAGE_COUNT_EXCLUDE_PADDING;
}

std::optional<NhwcConvDims> direct_nhwc_conv_dims(const Node& n) {
  if (n.attrs.s("layout", "NCHW") != "NHWC" || n.attrs.i("group", 1) != 1) return std::nullopt;
  if (!n.has_input(0) || !n.has_input(1) || !n.has_output(0) || n.outputs.size() != 1) return std::nullopt;
  auto x = static_dims(n.inputs[0]), w = static_dims(n.inputs[1]), y = static_dims(n.outputs[0]);
  if (!x || !w || !y || x->size() != 4 || w->size() != 4 || y->size() != 4) return std::nullopt;
  const DType t = n.outputs[0]->type.dtype;
  if (!is_gpu_float(t) || n.inputs[0]->type.dtype != t || n.inputs[1]->type.dtype != t) return std::nullopt;
  if (n.has_input(2) && n.inputs[2]->type.dtype != t) return std::nullopt;
  if (n.has_input(3) && (n.inputs[3]->type.dtype != t || static_dims(n.inputs[3]) != y)) return std::nullopt;
  const std::string act = n.attrs.s("activation", "");
  if (!act.empty() && act != "Relu") return std::nullopt;
  return NhwcConvDims{std::move(*x), std::move(*w), std::move(*y)};
}

}  // namespace kiln::cuda
