// Host-side helpers shared by the convolution, pooling, normalization and data-movement layers:
// static shapes of a node's values, cuDNN type mapping, owning cuDNN descriptors.
#pragma once

#include <optional>
#include <string>

#include "backends/cuda/cuda_layer.hpp"

namespace kiln::cuda {

// The concrete dims of a value (the builder makes every shape static); nullopt when absent or not.
std::optional<Dims> static_dims(const Value* v);
// True when every present input and output of the node has a static shape.
bool all_static(const Node& n);
// float32, float16, bfloat16: the dtypes the float-math layers run.
bool is_gpu_float(DType t);
// float32 -> CUDNN_DATA_FLOAT, float16 -> HALF, bfloat16 -> BFLOAT16 (others: nullopt).
std::optional<cudnnDataType_t> cudnn_type(DType t);
// The precision the backend assigns to a node with this output dtype and these options.
std::string precision_for(DType out, const BuildOptions& options);
// The form every direct NHWC kiln.FusedConv kernel needs (small_channel_conv, narrow_conv): NHWC
// layout, group 1, one output, static 4-D X, W, Y of one float dtype (B and Z too, Z of Y's dims),
// activation none or Relu. X, W, Y dims, or nullopt.
struct NhwcConvDims {
  Dims x, w, y;
};
std::optional<NhwcConvDims> direct_nhwc_conv_dims(const Node& n);
// Runs fn with a cuDNN handle for queries that launch nothing (workspace sizes, algorithm lists).
// The handle is shared by the process and used under a lock (a handle is not thread-safe); it is
// leaked at exit on purpose, since a static destructor would run after the CUDA runtime is gone.
Status with_query_handle(const std::function<Status(cudnnHandle_t)>& fn);

// Owning cuDNN descriptors (destroyed with the layer).
template <typename D, cudnnStatus_t (*Destroy)(D)>
class CudnnDesc {
 public:
  CudnnDesc() = default;
  CudnnDesc(const CudnnDesc&) = delete;
  CudnnDesc& operator=(const CudnnDesc&) = delete;
  ~CudnnDesc() {
    if (d_) Destroy(d_);
  }
  D get() const { return d_; }
  D* out() { return &d_; }

 private:
  D d_ = nullptr;
};
using TensorDesc = CudnnDesc<cudnnTensorDescriptor_t, cudnnDestroyTensorDescriptor>;
using FilterDesc = CudnnDesc<cudnnFilterDescriptor_t, cudnnDestroyFilterDescriptor>;
using ConvDesc = CudnnDesc<cudnnConvolutionDescriptor_t, cudnnDestroyConvolutionDescriptor>;
using PoolDesc = CudnnDesc<cudnnPoolingDescriptor_t, cudnnDestroyPoolingDescriptor>;

// Fully packed NCHW-style descriptor of `dims` (rank >= 4; callers pad 1-D cases with a unit dim).
Status set_packed_tensor(TensorDesc& desc, cudnnDataType_t type, const Dims& dims);
// cuDNN's pooling mode for a max pool, or for an average pool honouring its count_include_pad.
cudnnPoolingMode_t cudnn_pool_mode(bool max, const Node& n);

}  // namespace kiln::cuda
