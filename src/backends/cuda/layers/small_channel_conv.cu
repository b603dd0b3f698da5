// The direct small-input-channel convolution (small_channel_conv.hpp): one thread per output pixel
// and 16 bytes of output channels; the weights sit in shared memory as [tap][M] so that the
// threads of a pixel read consecutive channels.
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

// total = N * OH * OW * (M / V). W is (M, kh, kw, C) as the NHWC node has it.
template <typename T, int V, typename I>
__global__ void small_channel_conv_kernel(const T* __restrict__ x, const T* __restrict__ w, const T* __restrict__ b,
                                          const T* __restrict__ z, T* __restrict__ y, I total, SmallConvParams p) {
  extern __shared__ float ws[];  // [taps * C][M] then bias [M]
  const int K = p.kh * p.kw * p.c;
  for (int i = threadIdx.x; i < K * p.m; i += blockDim.x) {
    const int m = i / K, k = i - m * K;
    ws[k * p.m + m] = to_f(w[i]);
  }
  float* bias = ws + K * p.m;
  for (int m = threadIdx.x; m < p.m; m += blockDim.x) bias[m] = b ? to_f(b[m]) : 0.f;
  __syncthreads();
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

constexpr int kRegTaps = 12;  // reduction length (taps * C) the register variant holds

struct TapTable {
  int8_t i[kRegTaps], j[kRegTaps], c[kRegTaps];
};

// Register variant for short reductions (a 3x3 grayscale stem: 9): each thread keeps the weights
// of its V output channels in registers and walks pixels, so the inner loop reads only X (shared
// by the threads of a pixel) and shared memory is not touched. groups = M / V divides blockDim.
template <typename T, int V, typename I>
__global__ void small_channel_conv_reg_kernel(const T* __restrict__ x, const T* __restrict__ w, const T* __restrict__ b,
                                              const T* __restrict__ z, T* __restrict__ y, I pixels, SmallConvParams p,
                                              TapTable taps, int groups) {
  const int K = p.kh * p.kw * p.c;
  const I lane = static_cast<I>(blockIdx.x) * blockDim.x + threadIdx.x;
  const int mg = static_cast<int>(lane % static_cast<I>(groups)), m0 = mg * V;
  float wr[kRegTaps][V], bias[V];
#pragma unroll
  for (int k = 0; k < kRegTaps; ++k)
#pragma unroll
    for (int v = 0; v < V; ++v) wr[k][v] = k < K ? to_f(w[(m0 + v) * K + k]) : 0.f;
#pragma unroll
  for (int v = 0; v < V; ++v) bias[v] = b ? to_f(b[m0 + v]) : 0.f;
  const I stride = static_cast<I>(gridDim.x) * blockDim.x / static_cast<I>(groups);
  for (I pix = lane / static_cast<I>(groups); pix < pixels; pix += stride) {
    I t = pix;
    const int ow = static_cast<int>(t % static_cast<I>(p.ow));
    t /= static_cast<I>(p.ow);
    const int oh = static_cast<int>(t % static_cast<I>(p.oh));
    const int64_t n = static_cast<int64_t>(t / static_cast<I>(p.oh));
    const int h0 = oh * p.sh - p.ph, w0 = ow * p.sw - p.pw;
    const T* xn = x + n * p.h * p.w * p.c;
    float acc[V];
#pragma unroll
    for (int v = 0; v < V; ++v) acc[v] = bias[v];
    // Fully unrolled with predication (no early exit), so that wr stays in registers.
#pragma unroll
    for (int k = 0; k < kRegTaps; ++k) {
      const int h = h0 + taps.i[k] * p.dh, wc = w0 + taps.j[k] * p.dw;
      const bool in = k < K && h >= 0 && h < p.h && wc >= 0 && wc < p.w;
      const float xv = in ? to_f(xn[(static_cast<int64_t>(h) * p.w + wc) * p.c + taps.c[k]]) : 0.f;
#pragma unroll
      for (int v = 0; v < V; ++v) acc[v] = fmaf(xv, wr[k][v], acc[v]);
    }
    store_epilogue<T, V>(acc, z, y, static_cast<int64_t>(pix) * p.m + m0, p.relu);
  }
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
  if (K <= kRegTaps && groups <= 256 && (groups & (groups - 1)) == 0 && total <= INT32_MAX) {
    TapTable taps{};
    for (int k = 0; k < K; ++k) {  // k = (i * kw + j) * C + c, as W (M, kh, kw, C) is laid out
      taps.c[k] = static_cast<int8_t>(k % p.c);
      taps.j[k] = static_cast<int8_t>((k / p.c) % p.kw);
      taps.i[k] = static_cast<int8_t>(k / (p.c * p.kw));
    }
    small_channel_conv_reg_kernel<T, V, uint32_t><<<std::min(grid_for(total), kMaxBlocks), 256, 0, stream>>>(
        xs, wt, bs, zs, ys, static_cast<uint32_t>(pixels), p, taps, groups);
    return cudaGetLastError();
  }
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
