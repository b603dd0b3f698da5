// The direct small-input-channel convolution (small_channel_conv.hpp), three variants by shape:
// wide (M = 32 * G, G dividing 32: one thread per pixel and 32 output channels), register (a
// reduction of <= 12: one thread per pixel and 16 bytes of outputs, weights in registers) and
// shared-memory (the rest: one thread per pixel and 16 bytes of outputs, weights as [tap][M]).
#include <algorithm>

#include "backends/cuda/layers/device_types.cuh"
#include "backends/cuda/layers/small_channel_conv_kernels.hpp"

namespace kiln::cuda::kernels {
namespace {

// Capped grids: each thread (register variant) or block (shared-memory variant) stages the weights
// once and then walks many pixels; one pixel per thread would reload them 2M times for a 512x512 stem.
constexpr unsigned kMaxBlocks = 1024;

// The epilogue of both variants: + Z (residual), ReLU, one 16-byte store at element `off`.
template <typename T, int V>
__device__ __forceinline__ void store_epilogue(float (&acc)[V], const T* __restrict__ z, T* __restrict__ y,
                                               int64_t off, bool relu) {
  if (z) {
    const Pack<T, V> zv = *reinterpret_cast<const Pack<T, V>*>(z + off);
#pragma unroll
    for (int v = 0; v < V; ++v) acc[v] += to_f(zv.v[v]);
  }
  Pack<T, V> out;
#pragma unroll
  for (int v = 0; v < V; ++v) out.v[v] = from_f<T>(relu ? fmaxf(acc[v], 0.f) : acc[v]);
  *reinterpret_cast<Pack<T, V>*>(y + off) = out;
}

// The block stages W (M, kh, kw, C) in shared memory as float [tap * C][M], then the bias [M]
// (zeros without one); returns where the bias starts.
template <typename T>
__device__ __forceinline__ const float* stage_weights(float* ws, const T* __restrict__ w, const T* __restrict__ b,
                                                      const SmallConvParams& p) {
  const int K = p.kh * p.kw * p.c;
  for (int i = threadIdx.x; i < K * p.m; i += blockDim.x) {
    const int m = i / K, k = i - m * K;
    ws[k * p.m + m] = to_f(w[i]);
  }
  float* bias = ws + K * p.m;
  for (int m = threadIdx.x; m < p.m; m += blockDim.x) bias[m] = b ? to_f(b[m]) : 0.f;
  __syncthreads();
  return bias;
}

// total = N * OH * OW * (M / V). W is (M, kh, kw, C) as the NHWC node has it.
template <typename T, int V, typename I>
__global__ void small_channel_conv_kernel(const T* __restrict__ x, const T* __restrict__ w, const T* __restrict__ b,
                                          const T* __restrict__ z, T* __restrict__ y, I total, SmallConvParams p) {
  extern __shared__ float ws[];  // [taps * C][M] then bias [M]
  const float* bias = stage_weights(ws, w, b, p);
  const I groups = static_cast<I>(p.m / V);
  for (I g = static_cast<I>(blockIdx.x) * blockDim.x + threadIdx.x; g < total; g += static_cast<I>(gridDim.x) * blockDim.x) {
    const I mg = g % groups;
    I t = g / groups;
    const I pix = t;
    const int ow = static_cast<int>(t % static_cast<I>(p.ow));
    t /= static_cast<I>(p.ow);
    const int oh = static_cast<int>(t % static_cast<I>(p.oh));
    const int64_t n = static_cast<int64_t>(t / static_cast<I>(p.oh));
    const int m0 = static_cast<int>(mg) * V;
    float acc[V];
#pragma unroll
    for (int v = 0; v < V; ++v) acc[v] = bias[m0 + v];
    for (int i = 0; i < p.kh; ++i) {
      const int h = oh * p.sh - p.ph + i * p.dh;
      if (h < 0 || h >= p.h) continue;
      for (int j = 0; j < p.kw; ++j) {
        const int wc = ow * p.sw - p.pw + j * p.dw;
        if (wc < 0 || wc >= p.w) continue;
        const T* xp = x + ((n * p.h + h) * p.w + wc) * p.c;
        const float* wk = ws + ((i * p.kw + j) * p.c) * p.m + m0;
        for (int c = 0; c < p.c; ++c) {
          const float xv = to_f(xp[c]);
#pragma unroll
          for (int v = 0; v < V; ++v) acc[v] = fmaf(xv, wk[c * p.m + v], acc[v]);
        }
      }
    }
    store_epilogue<T, V>(acc, z, y, static_cast<int64_t>(pix) * p.m + m0, p.relu);
  }
}

// Where output pixel `pix` (n, oh, ow) has its window: image n, top-left input row and column.
struct WindowOrigin {
  int64_t n;
  int h0, w0;
};
template <typename I>
__device__ __forceinline__ WindowOrigin window_origin(I pix, const SmallConvParams& p) {
  const int ow = static_cast<int>(pix % static_cast<I>(p.ow));
  pix /= static_cast<I>(p.ow);
  const int oh = static_cast<int>(pix % static_cast<I>(p.oh));
  return {static_cast<int64_t>(pix / static_cast<I>(p.oh)), oh * p.sh - p.ph, ow * p.sw - p.pw};
}

// Wide variant (M = 32 * G with G dividing 32): one thread per (pixel, 32 output channels), so
// each X value is loaded once for 32 outputs, and the weights (float [tap][M] in shared memory)
// are read as float4 broadcasts. A warp holds 32 / G consecutive pixels, its G lanes per pixel on
// the pixel's channel groups, so each 16-byte store instruction fills whole 32-byte sectors of
// those pixels' rows. (The register variant below gives each 8 outputs their own thread and its
// own 9 loads of X: on a 512x512 grayscale stem with 64 outputs those loads and their index math
// were its time; one thread per 32 channels of one pixel with a warp on 32 pixels left each store
// instruction 32 half-sectors. Measured on an H200 for that stem: 0.090 ms register variant,
// 0.039 ms this one; one thread per 64 channels was slower, 0.046 ms, at 156 registers.)
constexpr int kWide = 32;

template <typename T, typename I>
__global__ void __launch_bounds__(256, 2) small_channel_conv_wide_kernel(
    const T* __restrict__ x, const T* __restrict__ w, const T* __restrict__ b, const T* __restrict__ z,
    T* __restrict__ y, I pixels, SmallConvParams p) {
  extern __shared__ float4 ws4[];  // [taps * C][M] floats, then bias [M]
  float* ws = reinterpret_cast<float*>(ws4);
  const float* bias = stage_weights(ws, w, b, p);
  constexpr int V = 16 / static_cast<int>(sizeof(T));  // elements per 16-byte store
  const int groups = p.m / kWide, per_warp = 32 / groups;  // pixels a warp holds
  const int lane = static_cast<int>(threadIdx.x) & 31;
  const int m0 = lane / per_warp * kWide;
  const I warps = static_cast<I>(gridDim.x) * (blockDim.x / 32);
  for (I wp = static_cast<I>(blockIdx.x) * (blockDim.x / 32) + threadIdx.x / 32;
       wp * static_cast<I>(per_warp) < pixels; wp += warps) {
    const I pix = wp * static_cast<I>(per_warp) + static_cast<I>(lane % per_warp);
    if (pix >= pixels) continue;
    const WindowOrigin o = window_origin(pix, p);
    const int h0 = o.h0, w0 = o.w0;
    const T* xn = x + o.n * p.h * p.w * p.c;
    float acc[kWide];
#pragma unroll
    for (int v = 0; v < kWide; ++v) acc[v] = bias[m0 + v];
    int k = 0;
    for (int i = 0; i < p.kh; ++i) {
      const int h = h0 + i * p.dh;
      for (int j = 0; j < p.kw; ++j) {
        const int wc = w0 + j * p.dw;
        const bool in = h >= 0 && h < p.h && wc >= 0 && wc < p.w;
        const T* xp = xn + (static_cast<int64_t>(h) * p.w + wc) * p.c;
        for (int c = 0; c < p.c; ++c, ++k) {
          if (!in) continue;
          const float xv = to_f(xp[c]);
          const float4* wk = reinterpret_cast<const float4*>(ws + k * p.m + m0);
#pragma unroll
          for (int q = 0; q < kWide / 4; ++q) {
            const float4 wq = wk[q];
            acc[4 * q] = fmaf(xv, wq.x, acc[4 * q]);
            acc[4 * q + 1] = fmaf(xv, wq.y, acc[4 * q + 1]);
            acc[4 * q + 2] = fmaf(xv, wq.z, acc[4 * q + 2]);
            acc[4 * q + 3] = fmaf(xv, wq.w, acc[4 * q + 3]);
          }
        }
      }
    }
#pragma unroll
    for (int part = 0; part < kWide / V; ++part) {
      float out[V];
#pragma unroll
      for (int v = 0; v < V; ++v) out[v] = acc[part * V + v];
      store_epilogue<T, V>(out, z, y, static_cast<int64_t>(pix) * p.m + m0 + part * V, p.relu);
    }
  }
}

constexpr int kRegTaps = 12;  // longest reduction (taps * C) the register variant holds

struct TapTable {
  int8_t i[kRegTaps], j[kRegTaps], c[kRegTaps];
};

// Register variant for short reductions (a 3x3 grayscale stem: 9): each thread keeps the weights
// of its V output channels in registers and walks pixels, so the inner loop reads only X (shared
// by the threads of a pixel) and shared memory is not touched. groups = M / V divides blockDim.
// KR, the reduction length compiled in, is K or the next instantiated size: its weights take
// KR * V registers; at two blocks of 256 per SM (the launch bound for KR <= 9) a 3x3 stem keeps 16 warps
// per SM in flight instead of the 8 that one block of a 168-register build gave.
template <typename T, int V, int KR, typename I>
__global__ void __launch_bounds__(256, KR <= 9 ? 2 : 1)
    small_channel_conv_reg_kernel(const T* __restrict__ x, const T* __restrict__ w, const T* __restrict__ b,
                                  const T* __restrict__ z, T* __restrict__ y, I pixels, SmallConvParams p,
                                  TapTable taps, int groups) {
  const int K = p.kh * p.kw * p.c;
  const I lane = static_cast<I>(blockIdx.x) * blockDim.x + threadIdx.x;
  const int mg = static_cast<int>(lane % static_cast<I>(groups)), m0 = mg * V;
  float wr[KR][V], bias[V];
#pragma unroll
  for (int k = 0; k < KR; ++k)
#pragma unroll
    for (int v = 0; v < V; ++v) wr[k][v] = k < K ? to_f(w[(m0 + v) * K + k]) : 0.f;
#pragma unroll
  for (int v = 0; v < V; ++v) bias[v] = b ? to_f(b[m0 + v]) : 0.f;
  const I stride = static_cast<I>(gridDim.x) * blockDim.x / static_cast<I>(groups);
  for (I pix = lane / static_cast<I>(groups); pix < pixels; pix += stride) {
    const WindowOrigin o = window_origin(pix, p);
    const int h0 = o.h0, w0 = o.w0;
    const T* xn = x + o.n * p.h * p.w * p.c;
    float acc[V];
#pragma unroll
    for (int v = 0; v < V; ++v) acc[v] = bias[v];
    // Fully unrolled with predication (no early exit), so that wr stays in registers.
#pragma unroll
    for (int k = 0; k < KR; ++k) {
      const int h = h0 + taps.i[k] * p.dh, wc = w0 + taps.j[k] * p.dw;
      const bool in = k < K && h >= 0 && h < p.h && wc >= 0 && wc < p.w;
      const float xv = in ? to_f(xn[(static_cast<int64_t>(h) * p.w + wc) * p.c + taps.c[k]]) : 0.f;
#pragma unroll
      for (int v = 0; v < V; ++v) acc[v] = fmaf(xv, wr[k][v], acc[v]);
    }
    store_epilogue<T, V>(acc, z, y, static_cast<int64_t>(pix) * p.m + m0, p.relu);
  }
}

// A grid-stride kernel's grid: the blocks its launch bound keeps resident on every SM at once (no
// tail wave), or fewer when the work is smaller. No occupancy query: launches are captured into
// CUDA graphs, and the bound is what the kernels are compiled for.
unsigned resident_grid(int blocks_per_sm, int64_t total) {
  int device = 0, sms = 0;
  if (cudaGetDevice(&device) != cudaSuccess ||
      cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device) != cudaSuccess || sms < 1)
    return std::min(grid_for(total), kMaxBlocks);
  return std::min(grid_for(total), static_cast<unsigned>(sms * blocks_per_sm));
}

template <typename T, int V, int KR>
cudaError_t launch_reg(const T* x, const T* w, const T* b, const T* z, T* y, const SmallConvParams& p,
                       int64_t pixels, int64_t total, cudaStream_t stream) {
  const int groups = p.m / V, K = p.kh * p.kw * p.c;
  TapTable taps{};
  for (int k = 0; k < K; ++k) {  // k = (i * kw + j) * C + c, as W (M, kh, kw, C) is laid out
    taps.c[k] = static_cast<int8_t>(k % p.c);
    taps.j[k] = static_cast<int8_t>((k / p.c) % p.kw);
    taps.i[k] = static_cast<int8_t>(k / (p.c * p.kw));
  }
  auto kernel = small_channel_conv_reg_kernel<T, V, KR, uint32_t>;
  // Whole pixels per sweep: the grid's threads are a multiple of groups (a power of two <= 256).
  kernel<<<resident_grid(KR <= 9 ? 2 : 1, total), 256, 0, stream>>>(x, w, b, z, y, static_cast<uint32_t>(pixels), p,
                                                                     taps, groups);
  return cudaGetLastError();
}

template <typename T>
cudaError_t launch(const void* x, const void* w, const void* b, const void* z, void* y, const SmallConvParams& p,
                   cudaStream_t stream) {
  constexpr int V = 16 / static_cast<int>(sizeof(T));
  if (p.m % V != 0) return cudaErrorInvalidValue;
  const int64_t total = p.n * p.oh * p.ow * (p.m / V);
  if (total == 0) return cudaSuccess;
  const size_t smem = static_cast<size_t>(p.kh * p.kw * p.c * p.m + p.m) * sizeof(float);
  auto* xs = static_cast<const T*>(x);
  auto* wt = static_cast<const T*>(w);
  auto* bs = static_cast<const T*>(b);
  auto* zs = static_cast<const T*>(z);
  auto* ys = static_cast<T*>(y);
  const int groups = p.m / V, K = p.kh * p.kw * p.c;
  const int64_t pixels = p.n * p.oh * p.ow;
  if (p.m % kWide == 0 && 32 % (p.m / kWide) == 0 && pixels * (p.m / kWide) <= INT32_MAX) {
    auto kernel = small_channel_conv_wide_kernel<T, uint32_t>;
    kernel<<<resident_grid(2, pixels * (p.m / kWide)), 256, smem, stream>>>(xs, wt, bs, zs, ys,
                                                                          static_cast<uint32_t>(pixels), p);
    return cudaGetLastError();
  }
  if (K <= kRegTaps && groups <= 256 && (groups & (groups - 1)) == 0 && total <= INT32_MAX)
    return K <= 9 ? launch_reg<T, V, 9>(xs, wt, bs, zs, ys, p, pixels, total, stream)
                  : launch_reg<T, V, kRegTaps>(xs, wt, bs, zs, ys, p, pixels, total, stream);
  if (total <= INT32_MAX)
    small_channel_conv_kernel<T, V, uint32_t>
        <<<std::min(grid_for(total), kMaxBlocks), 256, smem, stream>>>(xs, wt, bs, zs, ys, static_cast<uint32_t>(total), p);
  else
    small_channel_conv_kernel<T, V, int64_t><<<std::min(grid_for(total), kMaxBlocks), 256, smem, stream>>>(xs, wt, bs, zs, ys, total, p);
  return cudaGetLastError();
}

}  // namespace

cudaError_t small_channel_conv(DType t, const void* x, const void* w, const void* b, const void* z, void* y,
                               const SmallConvParams& p, cudaStream_t stream) {
  cudaError_t err = cudaErrorInvalidValue;
  dispatch_gpu_float(t, [&](auto tag) { err = launch<decltype(tag)>(x, w, b, z, y, p, stream); });
  return err;
}

}  // namespace kiln::cuda::kernels
