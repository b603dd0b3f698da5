// Windowed pooling on NHWC data (kiln.NHWC MaxPool / AveragePool; MaxPool on int8 too): one thread per output pixel and
// run of channels, loading 16 bytes of channels per tap where C allows. cuDNN's NHWC pooling reads
// 4-5x the bytes' worth of time on Hopper for UNet-sized tensors; this is a plain bandwidth kernel.
#include <cfloat>

#include "backends/cuda/layers/device_types.cuh"
#include "backends/cuda/layers/nn_kernels.hpp"

namespace kiln::cuda::kernels {
namespace {

// Output item g (a run of V channels of one pixel) as (n, oh, ow, channel run).
template <typename I>
struct NhwcItem {
  I n, oh, ow, cv;
};
template <typename I>
__device__ __forceinline__ NhwcItem<I> decode(I g, I cv_count, const NhwcPoolParams& p) {
  const I cv = g % cv_count;
  I t = g / cv_count;
  const I ow = t % static_cast<I>(p.ow);
  t /= static_cast<I>(p.ow);
  const I oh = t % static_cast<I>(p.oh);
  return {t / static_cast<I>(p.oh), oh, ow, cv};
}

// Calls f(offset) for each window tap of output pixel (n, oh, ow) inside X, row by row: offset is
// the tap's element offset of channel c0.
template <typename I, typename F>
__device__ __forceinline__ void for_each_tap(const NhwcPoolParams& p, I n, I oh, I ow, int64_t c0, F f) {
  const int h0 = static_cast<int>(oh) * p.sh - p.ph, w0 = static_cast<int>(ow) * p.sw - p.pw;
  for (int i = 0; i < p.kh; ++i) {
    const int h = h0 + i;
    if (h < 0 || h >= p.h) continue;
    for (int j = 0; j < p.kw; ++j) {
      const int w = w0 + j;
      if (w < 0 || w >= p.w) continue;
      f(((static_cast<int64_t>(n) * p.h + h) * p.w + w) * p.c + c0);
    }
  }
}

// total = N * OH * OW * (C / V); I is the index type (32-bit where it fits: cheaper division).
template <typename T, int V, bool Max, typename I>
__global__ void nhwc_pool_kernel(const T* __restrict__ x, T* __restrict__ y, I total, NhwcPoolParams p) {
  const I cv_count = static_cast<I>(p.c / V);
  for (I g = static_cast<I>(blockIdx.x) * blockDim.x + threadIdx.x; g < total;
       g += static_cast<I>(gridDim.x) * blockDim.x) {
    const auto [n, oh, ow, cv] = decode(g, cv_count, p);
    float acc[V];
    int count = 0;
    for_each_tap(p, n, oh, ow, static_cast<int64_t>(cv) * V, [&](int64_t off) {
      const Pack<T, V> in = *reinterpret_cast<const Pack<T, V>*>(x + off);
#pragma unroll
      for (int k = 0; k < V; ++k) {
        const float f = to_f(in.v[k]);
        if constexpr (Max)
          acc[k] = (count == 0 || f > acc[k]) ? f : acc[k];  // the first tap seeds (as the CPU reference)
        else
          acc[k] = count == 0 ? f : acc[k] + f;
      }
      ++count;
    });
    Pack<T, V> out;
    const float div = Max ? 1.f : static_cast<float>(p.count_include_pad ? p.kh * p.kw : (count > 0 ? count : 1));
#pragma unroll
    for (int k = 0; k < V; ++k) out.v[k] = from_f<T>(count == 0 ? (Max ? -FLT_MAX : 0.f) : (Max ? acc[k] : acc[k] / div));
    const int64_t yoff = static_cast<int64_t>(g / cv_count) * p.c + static_cast<int64_t>(cv) * V;
    *reinterpret_cast<Pack<T, V>*>(y + yoff) = out;
  }
}

// The common 2x2 stride-2 unpadded window (UNet, VGG): four unconditional 16-byte loads per thread,
// all in flight at once, instead of the generic loop's bounds-checked taps.
template <typename T, int V, bool Max, typename I>
__global__ void nhwc_pool2x2_kernel(const T* __restrict__ x, T* __restrict__ y, I total, NhwcPoolParams p) {
  const I cv_count = static_cast<I>(p.c / V);
  for (I g = static_cast<I>(blockIdx.x) * blockDim.x + threadIdx.x; g < total;
       g += static_cast<I>(gridDim.x) * blockDim.x) {
    const auto [n, oh, ow, cv] = decode(g, cv_count, p);
    const int64_t row = static_cast<int64_t>(p.w) * p.c;
    const int64_t base = ((static_cast<int64_t>(n) * p.h + 2 * static_cast<int64_t>(oh)) * p.w + 2 * static_cast<int64_t>(ow)) * p.c +
                         static_cast<int64_t>(cv) * V;
    const Pack<T, V> a = *reinterpret_cast<const Pack<T, V>*>(x + base);
    const Pack<T, V> b = *reinterpret_cast<const Pack<T, V>*>(x + base + p.c);
    const Pack<T, V> c = *reinterpret_cast<const Pack<T, V>*>(x + base + row);
    const Pack<T, V> d = *reinterpret_cast<const Pack<T, V>*>(x + base + row + p.c);
    Pack<T, V> out;
#pragma unroll
    for (int k = 0; k < V; ++k) {
      // Same order as the generic kernel (and the CPU reference): row by row, the first tap seeds.
      float r = to_f(a.v[k]);
      const float f1 = to_f(b.v[k]), f2 = to_f(c.v[k]), f3 = to_f(d.v[k]);
      if constexpr (Max) {
        r = f1 > r ? f1 : r;
        r = f2 > r ? f2 : r;
        r = f3 > r ? f3 : r;
      } else {
        r = (((r + f1) + f2) + f3) / 4.f;
      }
      out.v[k] = from_f<T>(r);
    }
    *reinterpret_cast<Pack<T, V>*>(y + static_cast<int64_t>(g / cv_count) * p.c + static_cast<int64_t>(cv) * V) = out;
  }
}

// int8 MaxPool, 16 channels a thread: per-byte signed maxima of 4-byte words (__vmaxs4), seeded
// with -128 (the same result as seeding with the first tap; an empty window gives -128, as the
// generic kernel's clamped -FLT_MAX). Converting every byte to float made the pool instruction-bound.
template <typename I>
__global__ void nhwc_maxpool_s8_kernel(const int8_t* __restrict__ x, int8_t* __restrict__ y, I total, NhwcPoolParams p) {
  const I cv_count = static_cast<I>(p.c / 16);
  for (I g = static_cast<I>(blockIdx.x) * blockDim.x + threadIdx.x; g < total;
       g += static_cast<I>(gridDim.x) * blockDim.x) {
    const auto [n, oh, ow, cv] = decode(g, cv_count, p);
    uint4 acc = make_uint4(0x80808080u, 0x80808080u, 0x80808080u, 0x80808080u);
    for_each_tap(p, n, oh, ow, static_cast<int64_t>(cv) * 16, [&](int64_t off) {
      const uint4 in = *reinterpret_cast<const uint4*>(x + off);
      acc.x = __vmaxs4(acc.x, in.x);
      acc.y = __vmaxs4(acc.y, in.y);
      acc.z = __vmaxs4(acc.z, in.z);
      acc.w = __vmaxs4(acc.w, in.w);
    });
    *reinterpret_cast<uint4*>(y + static_cast<int64_t>(g / cv_count) * p.c + static_cast<int64_t>(cv) * 16) = acc;
  }
}

template <typename T, int V, bool Max>
cudaError_t launch(const void* x, void* y, const NhwcPoolParams& p, cudaStream_t stream) {
  const int64_t total = p.n * p.oh * p.ow * (p.c / V);
  if (total == 0) return cudaSuccess;
  const T* xs = static_cast<const T*>(x);
  T* ys = static_cast<T*>(y);
  const bool two_by_two = p.kh == 2 && p.kw == 2 && p.sh == 2 && p.sw == 2 && p.ph == 0 && p.pw == 0 &&
                          p.oh * 2 <= p.h && p.ow * 2 <= p.w;
  if (two_by_two && total <= INT32_MAX)
    nhwc_pool2x2_kernel<T, V, Max, uint32_t><<<grid_for(total), 256, 0, stream>>>(xs, ys, static_cast<uint32_t>(total), p);
  else if (two_by_two)
    nhwc_pool2x2_kernel<T, V, Max, int64_t><<<grid_for(total), 256, 0, stream>>>(xs, ys, total, p);
  else if (total <= INT32_MAX)
    nhwc_pool_kernel<T, V, Max, uint32_t><<<grid_for(total), 256, 0, stream>>>(xs, ys, static_cast<uint32_t>(total), p);
  else
    nhwc_pool_kernel<T, V, Max, int64_t><<<grid_for(total), 256, 0, stream>>>(xs, ys, total, p);
  return cudaGetLastError();
}

template <typename T, bool Max>
cudaError_t by_width(const void* x, void* y, const NhwcPoolParams& p, cudaStream_t stream) {
  constexpr int kWide = 16 / static_cast<int>(sizeof(T));
  const bool wide = p.c % kWide == 0 && reinterpret_cast<uintptr_t>(x) % 16 == 0 && reinterpret_cast<uintptr_t>(y) % 16 == 0;
  return wide ? launch<T, kWide, Max>(x, y, p, stream) : launch<T, 1, Max>(x, y, p, stream);
}

cudaError_t maxpool_s8(const void* x, void* y, const NhwcPoolParams& p, cudaStream_t stream) {
  const bool wide = p.c % 16 == 0 && reinterpret_cast<uintptr_t>(x) % 16 == 0 && reinterpret_cast<uintptr_t>(y) % 16 == 0;
  const int64_t total = p.n * p.oh * p.ow * (p.c / 16);
  if (!wide) return launch<int8_t, 1, true>(x, y, p, stream);
  if (total == 0) return cudaSuccess;
  const auto* xs = static_cast<const int8_t*>(x);
  auto* ys = static_cast<int8_t*>(y);
  if (total <= INT32_MAX)
    nhwc_maxpool_s8_kernel<uint32_t><<<grid_for(total), 256, 0, stream>>>(xs, ys, static_cast<uint32_t>(total), p);
  else
    nhwc_maxpool_s8_kernel<int64_t><<<grid_for(total), 256, 0, stream>>>(xs, ys, total, p);
  return cudaGetLastError();
}

}  // namespace

cudaError_t nhwc_pool(DType t, bool max, const void* x, void* y, const NhwcPoolParams& p, cudaStream_t stream) {
  // int8 (MaxPool only: an int8 chain's pooling, qdq-fusion): every value is exact in float.
  if (t == DType::kInt8) return max ? maxpool_s8(x, y, p, stream) : cudaErrorInvalidValue;
  cudaError_t err = cudaErrorInvalidValue;
  dispatch_gpu_float(t, [&](auto tag) {
    using T = decltype(tag);
    err = max ? by_width<T, true>(x, y, p, stream) : by_width<T, false>(x, y, p, stream);
  });
  return err;
}

}  // namespace kiln::cuda::kernels
