// The epilogue of a kiln.FusedConv run as a plain convolution (tactics cuDNN's fused call does not
// cover): y = act(y + bias[c] + z) in float, in place, one pass over Y.
#include "backends/cuda/layers/device_types.cuh"
#include "backends/cuda/layers/nn_kernels.hpp"

namespace kiln::cuda::kernels {
namespace {

template <typename T, typename I>
__global__ void conv_epilogue_kernel(T* y, const T* __restrict__ bias, const T* __restrict__ z, bool relu, I total,
                                     I channels, I inner) {
  for (I i = static_cast<I>(blockIdx.x) * blockDim.x + threadIdx.x; i < total;
       i += static_cast<I>(gridDim.x) * blockDim.x) {
    float v = to_f(y[i]);
    if (bias) v += to_f(bias[(i / inner) % channels]);
    if (z) v += to_f(z[i]);
    if (relu) v = v > 0.f ? v : 0.f;
    y[i] = from_f<T>(v);
  }
}

}  // namespace

cudaError_t conv_epilogue(DType t, void* y, const void* bias, const void* z, bool relu, int64_t outer,
                          int64_t channels, int64_t inner, cudaStream_t stream) {
  const int64_t total = outer * channels * inner;
  if (total == 0 || channels == 0 || inner == 0) return cudaSuccess;
  bool ok = dispatch_gpu_float(t, [&](auto tag) {
    using T = decltype(tag);
    if (total <= INT32_MAX)
      conv_epilogue_kernel<T, uint32_t><<<grid_for(total), 256, 0, stream>>>(
          static_cast<T*>(y), static_cast<const T*>(bias), static_cast<const T*>(z), relu,
          static_cast<uint32_t>(total), static_cast<uint32_t>(channels), static_cast<uint32_t>(inner));
    else
      conv_epilogue_kernel<T, int64_t><<<grid_for(total), 256, 0, stream>>>(
          static_cast<T*>(y), static_cast<const T*>(bias), static_cast<const T*>(z), relu, total, channels, inner);
  });
  if (!ok) return cudaErrorInvalidValue;
  return cudaGetLastError();
}

}  // namespace kiln::cuda::kernels
