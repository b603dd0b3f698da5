// Device-side element helpers for kiln's own kernels: float conversion of the storage types and
// grid-stride launch geometry.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>

#include "ir/dtype.hpp"

namespace kiln::cuda::kernels {

template <typename T> __device__ __forceinline__ float to_f(T v) { return static_cast<float>(v); }
template <> __device__ __forceinline__ float to_f<__half>(__half v) { return __half2float(v); }
template <> __device__ __forceinline__ float to_f<__nv_bfloat16>(__nv_bfloat16 v) { return __bfloat162float(v); }

template <typename T> __device__ __forceinline__ T from_f(float v) { return static_cast<T>(v); }
template <> __device__ __forceinline__ __half from_f<__half>(float v) { return __float2half_rn(v); }
template <> __device__ __forceinline__ __nv_bfloat16 from_f<__nv_bfloat16>(float v) { return __float2bfloat16_rn(v); }
// Integer results of max pooling are exact integers already; clamp so out-of-range floats (an
// empty window's -FLT_MAX) do not convert with undefined behaviour.
template <> __device__ __forceinline__ int8_t from_f<int8_t>(float v) {
  return static_cast<int8_t>(fminf(fmaxf(v, -128.f), 127.f));
}
template <> __device__ __forceinline__ uint8_t from_f<uint8_t>(float v) {
  return static_cast<uint8_t>(fminf(fmaxf(v, 0.f), 255.f));
}

// V elements of T as one aligned unit: 16-byte vector loads and stores of channel runs (NHWC kernels).
template <typename T, int V>
struct alignas(sizeof(T) * V) Pack {
  T v[V];
};

// Blocks for a grid-stride loop over n items (capped: the loop covers the rest).
inline unsigned grid_for(int64_t n, int threads = 256) {
  int64_t b = (n + threads - 1) / threads;
  if (b < 1) b = 1;
  if (b > 65535 * 8) b = 65535 * 8;
  return static_cast<unsigned>(b);
}

// Calls fn(T{}) with the device type of a float dtype (float, __half, __nv_bfloat16); returns
// false for any other dtype.
template <typename Fn>
bool dispatch_gpu_float(DType t, Fn&& fn) {
  switch (t) {
    case DType::kFloat32: fn(float{}); return true;
    case DType::kFloat16: fn(__half{}); return true;
    case DType::kBFloat16: fn(__nv_bfloat16{}); return true;
    default: return false;
  }
}

// Reads element i of a float32/float16/bfloat16 array as float (parameter arrays whose dtype is
// only known at run time, e.g. BatchNormalization's statistics).
__device__ __forceinline__ float load_as_float(const void* p, DType t, int64_t i) {
  switch (t) {
    case DType::kFloat16: return __half2float(static_cast<const __half*>(p)[i]);
    case DType::kBFloat16: return __bfloat162float(static_cast<const __nv_bfloat16*>(p)[i]);
    default: return static_cast<const float*>(p)[i];
  }
}

}  // namespace kiln::cuda::kernels
