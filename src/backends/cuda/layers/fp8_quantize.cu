// Quantization of activations to float8 E4M3 (the FP8 GEMM's B operand) and an unfused
// bias/activation epilogue.
#include <cuda_fp8.h>

#include "backends/cuda/layers/device_types.cuh"
#include "backends/cuda/layers/fp8_kernels.hpp"

namespace kiln::cuda::kernels {
namespace {

__device__ __forceinline__ __nv_fp8_storage_t to_e4m3(float v, float scale) {
  return __nv_cvt_float_to_fp8(v / scale, __NV_SATFINITE, __NV_E4M3);
}

template <typename T>
__global__ void quantize_scalar(const T* __restrict__ x, __nv_fp8_storage_t* __restrict__ y, float scale,
                                int64_t n) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    y[i] = to_e4m3(to_f(x[i]), scale);
}

// Eight elements per thread: 16 (or 32) bytes read, 8 bytes written.
template <typename T>
struct alignas(8 * sizeof(T)) Pack8 {
  T v[8];
};

template <typename T>
__global__ void quantize_vec8(const Pack8<T>* __restrict__ x, uint2* __restrict__ y, float scale, int64_t n8) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n8;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const Pack8<T> p = x[i];
    uint32_t w[2] = {0, 0};
#pragma unroll
    for (int k = 0; k < 8; ++k)
      w[k / 4] |= static_cast<uint32_t>(to_e4m3(to_f(p.v[k]), scale)) << (8 * (k % 4));
    y[i] = make_uint2(w[0], w[1]);
  }
}

__device__ __forceinline__ float activate(float v, int act) {
  if (act == 1) v = fmaxf(v, 0.f);
  else if (act == 2) v = 0.5f * v * (1.f + erff(v * 0.7071067811865476f));
  else if (act == 3) v = 0.5f * v * (1.f + tanhf(0.7978845608028654f * (v + 0.044715f * v * v * v)));
  return v;
}

template <typename T>
__global__ void bias_act(T* __restrict__ y, const T* __restrict__ bias, int64_t rows, int64_t cols, int act) {
  const int64_t n = rows * cols;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    float v = to_f(y[i]);
    if (bias) v += to_f(bias[i % cols]);
    y[i] = from_f<T>(activate(v, act));
  }
}

// As bias_act, then the 16-bit rounding the unfused graph had, then e4m3.
template <typename T>
__global__ void bias_act_e4m3(const T* __restrict__ y, const T* __restrict__ bias, __nv_fp8_storage_t* __restrict__ q,
                              int64_t rows, int64_t cols, int act, float inv_scale) {
  const int64_t n = rows * cols;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    float v = to_f(y[i]);
    if (bias) v += to_f(bias[i % cols]);
    v = to_f(from_f<T>(activate(v, act)));
    q[i] = __nv_cvt_float_to_fp8(v * inv_scale, __NV_SATFINITE, __NV_E4M3);
  }
}

}  // namespace

cudaError_t quantize_e4m3(DType t, const void* x, void* y, float scale, int64_t n, cudaStream_t stream) {
  if (n <= 0) return cudaSuccess;
  const bool ok = dispatch_gpu_float(t, [&](auto tag) {
    using T = decltype(tag);
    const bool vec = n % 8 == 0 && reinterpret_cast<uintptr_t>(x) % sizeof(Pack8<T>) == 0 &&
                     reinterpret_cast<uintptr_t>(y) % 8 == 0;
    if (vec)
      quantize_vec8<T><<<grid_for(n / 8), 256, 0, stream>>>(static_cast<const Pack8<T>*>(x), static_cast<uint2*>(y),
                                                            scale, n / 8);
    else
      quantize_scalar<T><<<grid_for(n), 256, 0, stream>>>(static_cast<const T*>(x),
                                                          static_cast<__nv_fp8_storage_t*>(y), scale, n);
  });
  if (!ok) return cudaErrorInvalidValue;
  return cudaGetLastError();
}

cudaError_t bias_activation(DType t, void* y, const void* bias, int64_t rows, int64_t cols, Fp8Act act,
                            cudaStream_t stream) {
  if (rows * cols <= 0) return cudaSuccess;
  const bool ok = dispatch_gpu_float(t, [&](auto tag) {
    using T = decltype(tag);
    bias_act<T><<<grid_for(rows * cols), 256, 0, stream>>>(static_cast<T*>(y), static_cast<const T*>(bias), rows,
                                                           cols, static_cast<int>(act));
  });
  if (!ok) return cudaErrorInvalidValue;
  return cudaGetLastError();
}

cudaError_t bias_activation_e4m3(DType t, const void* y, const void* bias, void* q, int64_t rows, int64_t cols,
                                 Fp8Act act, float inv_scale, cudaStream_t stream) {
  if (rows * cols <= 0) return cudaSuccess;
  const bool ok = dispatch_gpu_float(t, [&](auto tag) {
    using T = decltype(tag);
    bias_act_e4m3<T><<<grid_for(rows * cols), 256, 0, stream>>>(static_cast<const T*>(y), static_cast<const T*>(bias),
                                                                static_cast<__nv_fp8_storage_t*>(q), rows, cols,
                                                                static_cast<int>(act), inv_scale);
  });
  if (!ok) return cudaErrorInvalidValue;
  return cudaGetLastError();
}

}  // namespace kiln::cuda::kernels
