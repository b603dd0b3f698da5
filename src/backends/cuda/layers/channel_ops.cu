// Per-channel kernels: affine (BatchNormalization, convolution bias) and InstanceNormalization.
#include "backends/cuda/layers/device_types.cuh"
#include "backends/cuda/layers/nn_kernels.hpp"

namespace kiln::cuda::kernels {
namespace {

// I: 32-bit indexing when the tensor allows it (64-bit division is several times slower).
template <typename T, typename I>
__global__ void channel_affine_kernel(const T* x, T* y, const float* __restrict__ a,
                                      const float* __restrict__ b, I total, I channels, I inner) {
  for (I i = static_cast<I>(blockIdx.x) * blockDim.x + threadIdx.x; i < total;
       i += static_cast<I>(gridDim.x) * blockDim.x) {
    const I c = (i / inner) % channels;
    const float v = to_f(x[i]);
    y[i] = from_f<T>((a ? v * a[c] : v) + (b ? b[c] : 0.f));
  }
}

template <typename T, typename I>
__global__ void add_bias_kernel(T* y, const T* __restrict__ bias, I total, I channels, I inner) {
  for (I i = static_cast<I>(blockIdx.x) * blockDim.x + threadIdx.x; i < total;
       i += static_cast<I>(gridDim.x) * blockDim.x) {
    const I c = (i / inner) % channels;
    y[i] = from_f<T>(to_f(y[i]) + to_f(bias[c]));
  }
}

__global__ void bn_coeff_kernel(const void* scale, DType st, const void* bias, DType bt, const void* mean, DType mt,
                                const void* var, DType vt, float eps, float* a, float* b, int64_t channels) {
  for (int64_t c = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; c < channels;
       c += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const float ac = load_as_float(scale, st, c) * rsqrtf(load_as_float(var, vt, c) + eps);
    a[c] = ac;
    b[c] = load_as_float(bias, bt, c) - load_as_float(mean, mt, c) * ac;
  }
}

// Sum over the block (256 threads); every thread gets the result.
__device__ float block_sum(float v, float* shared) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  __syncthreads();  // `shared` may still be read from a previous call
  if (lane == 0) shared[warp] = v;
  __syncthreads();
  float s = 0;
  for (int w = 0; w < static_cast<int>(blockDim.x >> 5); ++w) s += shared[w];
  return s;
}

// One block per (n, c) row: mean, then the variance around it (two passes: no cancellation),
// then the normalized output.
template <typename T>
__global__ void instance_norm_kernel(const T* __restrict__ x, T* __restrict__ y, const void* scale, const void* bias,
                                     DType pt, float eps, int64_t rows, int64_t channels, int64_t inner) {
  __shared__ float shared[32];
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const T* xr = x + r * inner;
    T* yr = y + r * inner;
    float s = 0;
    for (int64_t i = threadIdx.x; i < inner; i += blockDim.x) s += to_f(xr[i]);
    const float mean = block_sum(s, shared) / static_cast<float>(inner);
    float q = 0;
    for (int64_t i = threadIdx.x; i < inner; i += blockDim.x) {
      const float d = to_f(xr[i]) - mean;
      q += d * d;
    }
    const float var = block_sum(q, shared) / static_cast<float>(inner);
    const int64_t c = r % channels;
    const float a = load_as_float(scale, pt, c) * rsqrtf(var + eps);
    const float b = load_as_float(bias, pt, c) - mean * a;
    for (int64_t i = threadIdx.x; i < inner; i += blockDim.x) yr[i] = from_f<T>(to_f(xr[i]) * a + b);
  }
}

}  // namespace

cudaError_t channel_affine(DType t, const void* x, void* y, const float* a, const float* b, int64_t outer,
                           int64_t channels, int64_t inner, cudaStream_t stream) {
  const int64_t total = outer * channels * inner;
  if (total == 0) return cudaSuccess;
  bool ok = dispatch_gpu_float(t, [&](auto tag) {
    using T = decltype(tag);
    if (total <= INT32_MAX)
      channel_affine_kernel<T, uint32_t><<<grid_for(total), 256, 0, stream>>>(
          static_cast<const T*>(x), static_cast<T*>(y), a, b, static_cast<uint32_t>(total),
          static_cast<uint32_t>(channels), static_cast<uint32_t>(inner));
    else
      channel_affine_kernel<T, int64_t><<<grid_for(total), 256, 0, stream>>>(
          static_cast<const T*>(x), static_cast<T*>(y), a, b, total, channels, inner);
  });
  return ok ? cudaGetLastError() : cudaErrorInvalidValue;
}

cudaError_t add_channel_bias(DType t, void* y, const void* bias, int64_t outer, int64_t channels, int64_t inner,
                             cudaStream_t stream) {
  const int64_t total = outer * channels * inner;
  if (total == 0) return cudaSuccess;
  bool ok = dispatch_gpu_float(t, [&](auto tag) {
    using T = decltype(tag);
    if (total <= INT32_MAX)
      add_bias_kernel<T, uint32_t><<<grid_for(total), 256, 0, stream>>>(
          static_cast<T*>(y), static_cast<const T*>(bias), static_cast<uint32_t>(total),
          static_cast<uint32_t>(channels), static_cast<uint32_t>(inner));
    else
      add_bias_kernel<T, int64_t><<<grid_for(total), 256, 0, stream>>>(static_cast<T*>(y), static_cast<const T*>(bias),
                                                                       total, channels, inner);
  });
  return ok ? cudaGetLastError() : cudaErrorInvalidValue;
}

cudaError_t batch_norm_coefficients(const void* scale, DType scale_t, const void* bias, DType bias_t,
                                    const void* mean, DType mean_t, const void* var, DType var_t, float eps,
                                    float* a, float* b, int64_t channels, cudaStream_t stream) {
  if (channels == 0) return cudaSuccess;
  bn_coeff_kernel<<<grid_for(channels), 256, 0, stream>>>(scale, scale_t, bias, bias_t, mean, mean_t, var, var_t, eps,
                                                          a, b, channels);
  return cudaGetLastError();
}

cudaError_t instance_norm(DType t, const void* x, void* y, const void* scale, const void* bias, DType param_t,
                          float eps, int64_t batch, int64_t channels, int64_t inner, cudaStream_t stream) {
  const int64_t rows = batch * channels;
  if (rows == 0 || inner == 0) return cudaSuccess;
  const unsigned blocks = static_cast<unsigned>(rows < 65535 * 8 ? rows : 65535 * 8);
  bool ok = dispatch_gpu_float(t, [&](auto tag) {
    using T = decltype(tag);
    instance_norm_kernel<T><<<blocks, 256, 0, stream>>>(static_cast<const T*>(x), static_cast<T*>(y), scale, bias,
                                                        param_t, eps, rows, channels, inner);
  });
  return ok ? cudaGetLastError() : cudaErrorInvalidValue;
}

}  // namespace kiln::cuda::kernels
