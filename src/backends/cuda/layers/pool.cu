// Pooling kernels: a direct windowed kernel (any padding, dilation, ceil_mode, Indices; what cuDNN
// cannot do) and the global pools.
#include <cfloat>

#include "backends/cuda/layers/device_types.cuh"
#include "backends/cuda/layers/nn_kernels.hpp"

namespace kiln::cuda::kernels {
namespace {

// One thread per output element. Taps outside the input are skipped; the average divides by the
// taps inside the input, or (count_include_pad) by those inside the padded extent, as the CPU
// reference does (a ceil_mode window's overhang past the end padding counts in neither).
template <typename T, PoolKind K>
__global__ void pool_kernel(const T* __restrict__ x, T* __restrict__ y, int64_t* __restrict__ indices, int64_t total,
                            PoolParams p) {
  const int64_t in_size = p.in[0] * p.in[1] * p.in[2];
  const int64_t out_size = p.out[0] * p.out[1] * p.out[2];
  for (int64_t g = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; g < total;
       g += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t plane = g / out_size;
    int64_t o = g - plane * out_size;
    int64_t opos[3];
    opos[2] = o % p.out[2];
    o /= p.out[2];
    opos[1] = o % p.out[1];
    opos[0] = o / p.out[1];
    const T* xp = x + plane * in_size;
    int64_t start[3];
    int64_t padded = 1;
    for (int a = 0; a < 3; ++a) {
      start[a] = opos[a] * p.stride[a] - p.pad_begin[a];
      int64_t n = 0;
      for (int k = 0; k < p.kernel[a]; ++k)
        if (start[a] + static_cast<int64_t>(k) * p.dilation[a] < p.in[a] + p.pad_end[a]) ++n;
      padded *= n;
    }
    float acc = K == PoolKind::kMax ? -FLT_MAX : 0.f;
    int64_t count = 0, best = 0;
    for (int k0 = 0; k0 < p.kernel[0]; ++k0) {
      const int64_t p0 = start[0] + static_cast<int64_t>(k0) * p.dilation[0];
      if (p0 < 0 || p0 >= p.in[0]) continue;
      for (int k1 = 0; k1 < p.kernel[1]; ++k1) {
        const int64_t p1 = start[1] + static_cast<int64_t>(k1) * p.dilation[1];
        if (p1 < 0 || p1 >= p.in[1]) continue;
        for (int k2 = 0; k2 < p.kernel[2]; ++k2) {
          const int64_t p2 = start[2] + static_cast<int64_t>(k2) * p.dilation[2];
          if (p2 < 0 || p2 >= p.in[2]) continue;
          const int64_t off = (p0 * p.in[1] + p1) * p.in[2] + p2;
          const float v = to_f(xp[off]);
          if constexpr (K == PoolKind::kMax) {
            // The first tap seeds the maximum (so a NaN there is kept, like the CPU reference).
            if (count == 0 || v > acc) {
              acc = v;
              best = off;
            }
          } else if constexpr (K == PoolKind::kAverage) {
            acc += v;
          } else {
            acc += powf(fabsf(v), static_cast<float>(p.p));
          }
          ++count;
        }
      }
    }
    float r = acc;
    if constexpr (K == PoolKind::kAverage) {
      const int64_t div = p.count_include_pad ? padded : count;
      r = div > 0 ? acc / static_cast<float>(div) : 0.f;
    } else if constexpr (K == PoolKind::kLp) {
      r = powf(acc, 1.f / static_cast<float>(p.p));
    }
    y[g] = from_f<T>(r);
    if (K == PoolKind::kMax && indices) {
      int64_t idx = best;
      if (p.column_major) {  // first spatial dim fastest
        const int64_t b2 = best % p.in[2], b1 = (best / p.in[2]) % p.in[1], b0 = best / (p.in[1] * p.in[2]);
        idx = b0 + b1 * p.in[0] + b2 * p.in[0] * p.in[1];
      }
      indices[g] = plane * in_size + idx;
    }
  }
}

template <typename T, bool kMax>
__device__ __forceinline__ float global_reduce_step(float acc, T v) {
  return kMax ? fmaxf(acc, to_f(v)) : acc + to_f(v);
}

// Small planes: one warp per plane.
template <typename T, bool kMax>
__global__ void global_pool_warp(const T* __restrict__ x, T* __restrict__ y, int64_t planes, int64_t size) {
  const int lane = threadIdx.x & 31;
  const int64_t warps = (static_cast<int64_t>(gridDim.x) * blockDim.x) >> 5;
  for (int64_t pl = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) >> 5; pl < planes; pl += warps) {
    const T* xp = x + pl * size;
    float acc = kMax ? -INFINITY : 0.f;
    for (int64_t i = lane; i < size; i += 32) acc = global_reduce_step<T, kMax>(acc, xp[i]);
    for (int o = 16; o > 0; o >>= 1) {
      const float other = __shfl_xor_sync(0xffffffffu, acc, o);
      acc = kMax ? fmaxf(acc, other) : acc + other;
    }
    if (lane == 0) y[pl] = from_f<T>(kMax ? acc : acc / static_cast<float>(size));
  }
}

// Large planes: one block (256 threads) per plane.
template <typename T, bool kMax>
__global__ void global_pool_block(const T* __restrict__ x, T* __restrict__ y, int64_t planes, int64_t size) {
  __shared__ float shared[8];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  for (int64_t pl = blockIdx.x; pl < planes; pl += gridDim.x) {
    const T* xp = x + pl * size;
    float acc = kMax ? -INFINITY : 0.f;
    for (int64_t i = threadIdx.x; i < size; i += blockDim.x) acc = global_reduce_step<T, kMax>(acc, xp[i]);
    for (int o = 16; o > 0; o >>= 1) {
      const float other = __shfl_xor_sync(0xffffffffu, acc, o);
      acc = kMax ? fmaxf(acc, other) : acc + other;
    }
    __syncthreads();  // the previous plane's reads of `shared` are done
    if (lane == 0) shared[warp] = acc;
    __syncthreads();
    if (threadIdx.x == 0) {
      float r = shared[0];
      for (int w = 1; w < 8; ++w) r = kMax ? fmaxf(r, shared[w]) : r + shared[w];
      y[pl] = from_f<T>(kMax ? r : r / static_cast<float>(size));
    }
  }
}

template <typename T>
cudaError_t launch_pool(const void* x, void* y, int64_t* indices, int64_t planes, const PoolParams& p,
                        cudaStream_t stream) {
  const int64_t total = planes * p.out[0] * p.out[1] * p.out[2];
  if (total == 0) return cudaSuccess;
  const T* xt = static_cast<const T*>(x);
  T* yt = static_cast<T*>(y);
  switch (p.kind) {
    case PoolKind::kMax: pool_kernel<T, PoolKind::kMax><<<grid_for(total), 256, 0, stream>>>(xt, yt, indices, total, p); break;
    case PoolKind::kAverage: pool_kernel<T, PoolKind::kAverage><<<grid_for(total), 256, 0, stream>>>(xt, yt, nullptr, total, p); break;
    case PoolKind::kLp: pool_kernel<T, PoolKind::kLp><<<grid_for(total), 256, 0, stream>>>(xt, yt, nullptr, total, p); break;
  }
  return cudaGetLastError();
}

}  // namespace

cudaError_t pool_direct(DType t, const void* x, void* y, int64_t* indices, int64_t planes, const PoolParams& p,
                        cudaStream_t stream) {
  switch (t) {
    case DType::kFloat32: return launch_pool<float>(x, y, indices, planes, p, stream);
    case DType::kFloat16: return launch_pool<__half>(x, y, indices, planes, p, stream);
    case DType::kBFloat16: return launch_pool<__nv_bfloat16>(x, y, indices, planes, p, stream);
    case DType::kInt8:
      if (p.kind != PoolKind::kMax) return cudaErrorInvalidValue;
      return launch_pool<int8_t>(x, y, indices, planes, p, stream);
    case DType::kUInt8:
      if (p.kind != PoolKind::kMax) return cudaErrorInvalidValue;
      return launch_pool<uint8_t>(x, y, indices, planes, p, stream);
    default: return cudaErrorInvalidValue;
  }
}

cudaError_t global_pool(DType t, bool max, const void* x, void* y, int64_t planes, int64_t size, cudaStream_t stream) {
  if (planes == 0 || size == 0) return cudaSuccess;
  bool ok = dispatch_gpu_float(t, [&](auto tag) {
    using T = decltype(tag);
    const T* xt = static_cast<const T*>(x);
    T* yt = static_cast<T*>(y);
    if (size >= 2048) {
      const unsigned blocks = static_cast<unsigned>(planes < 65535 * 8 ? planes : 65535 * 8);
      if (max) global_pool_block<T, true><<<blocks, 256, 0, stream>>>(xt, yt, planes, size);
      else global_pool_block<T, false><<<blocks, 256, 0, stream>>>(xt, yt, planes, size);
    } else {
      const unsigned blocks = grid_for(planes * 32);
      if (max) global_pool_warp<T, true><<<blocks, 256, 0, stream>>>(xt, yt, planes, size);
      else global_pool_warp<T, false><<<blocks, 256, 0, stream>>>(xt, yt, planes, size);
    }
  });
  return ok ? cudaGetLastError() : cudaErrorInvalidValue;
}

}  // namespace kiln::cuda::kernels
