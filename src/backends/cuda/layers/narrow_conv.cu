// The direct 1x1 NHWC convolution with few output channels (narrow_conv.hpp): W and B staged in
// shared memory as floats, X read in 16-byte packs by a group of lanes per pixel.
#include <algorithm>

#include "backends/cuda/layers/device_types.cuh"
#include "backends/cuda/layers/narrow_conv_kernels.hpp"

namespace kiln::cuda::kernels {
namespace {

constexpr unsigned kMaxBlocks = 1024;

// A group of G = C / V lanes (a power of two <= 32) per pixel: lane l reads the pixel's l-th 16-byte
// pack (a warp's loads cover 32/G whole pixels, contiguous), forms M partial dot products, and the
// group sums them with shuffles; the group's first lane writes the pixel's M outputs.
template <typename T, int V, int M>
__global__ void narrow_conv_kernel(const T* __restrict__ x, const T* __restrict__ w, const T* __restrict__ b,
                                   const T* __restrict__ z, T* __restrict__ y, int64_t pixels, int c, bool relu,
                                   int group) {
  __shared__ float ws[M * kNarrowMaxInputs];
  __shared__ float bias[M];
  const int packs = c / V;
  for (int i = threadIdx.x; i < M * c; i += blockDim.x) {
    // [v][pack][M]: for one v, the lanes of a group (consecutive packs) read consecutive M-runs,
    // free of bank conflicts.
    const int m = i / c, k = i - m * c;
    ws[((k % V) * packs + k / V) * M + m] = to_f(w[i]);
  }
  for (int m = threadIdx.x; m < M; m += blockDim.x) bias[m] = b ? to_f(b[m]) : 0.f;
  __syncthreads();
  const int lane = threadIdx.x % group;
  const int64_t per_block = blockDim.x / group;
  // A warp's lanes run the loop together (the shuffles need all 32): it goes on while the warp's
  // first pixel is in range, and lanes past the end only take part in the shuffles.
  const int64_t warp_offset = (threadIdx.x % 32) / group;
  for (int64_t p = static_cast<int64_t>(blockIdx.x) * per_block + threadIdx.x / group; p - warp_offset < pixels;
       p += static_cast<int64_t>(gridDim.x) * per_block) {
    const bool valid = p < pixels;
    float acc[M];
#pragma unroll
    for (int m = 0; m < M; ++m) acc[m] = 0.f;
    const Pack<T, V>* xp = reinterpret_cast<const Pack<T, V>*>(x + p * c);
    for (int k0 = lane; valid && k0 < packs; k0 += group) {
      const Pack<T, V> in = xp[k0];
#pragma unroll
      for (int v = 0; v < V; ++v) {
        const float xv = to_f(in.v[v]);
        const float* wk = ws + (v * packs + k0) * M;
#pragma unroll
        for (int m = 0; m < M; ++m) acc[m] = fmaf(xv, wk[m], acc[m]);
      }
    }
    for (int off = group / 2; off > 0; off /= 2)
#pragma unroll
      for (int m = 0; m < M; ++m) acc[m] += __shfl_down_sync(0xffffffffu, acc[m], off, group);
    if (valid && lane == 0) {
#pragma unroll
      for (int m = 0; m < M; ++m) {
        const float r = acc[m] + bias[m] + (z ? to_f(z[p * M + m]) : 0.f);
        y[p * M + m] = from_f<T>(relu ? fmaxf(r, 0.f) : r);
      }
    }
  }
}

template <typename T, int M>
cudaError_t launch_m(const void* x, const void* w, const void* b, const void* z, void* y, int64_t pixels, int c,
                     bool relu, cudaStream_t stream) {
  constexpr int V = 16 / static_cast<int>(sizeof(T));
  int group = 1;  // the largest power of two <= min(packs, 32): every lane of a full warp stays busy
  while (group * 2 <= c / V && group * 2 <= 32) group *= 2;
  const int64_t threads = pixels * group;
  // Capped grid: each block stages W once, then walks many pixels.
  const unsigned blocks = std::min<unsigned>(grid_for(threads, 256), kMaxBlocks);
  narrow_conv_kernel<T, V, M><<<blocks, 256, 0, stream>>>(
      static_cast<const T*>(x), static_cast<const T*>(w), static_cast<const T*>(b), static_cast<const T*>(z),
      static_cast<T*>(y), pixels, c, relu, group);
  return cudaGetLastError();
}

template <typename T>
cudaError_t launch(const void* x, const void* w, const void* b, const void* z, void* y, int64_t pixels, int c, int m,
                   bool relu, cudaStream_t stream) {
  constexpr int V = 16 / static_cast<int>(sizeof(T));
  if (c % V != 0 || c > kNarrowMaxInputs || reinterpret_cast<uintptr_t>(x) % 16 != 0) return cudaErrorInvalidValue;
  if (pixels == 0) return cudaSuccess;
  switch (m) {
    case 1: return launch_m<T, 1>(x, w, b, z, y, pixels, c, relu, stream);
    case 2: return launch_m<T, 2>(x, w, b, z, y, pixels, c, relu, stream);
    case 3: return launch_m<T, 3>(x, w, b, z, y, pixels, c, relu, stream);
    case 4: return launch_m<T, 4>(x, w, b, z, y, pixels, c, relu, stream);
    case 5: return launch_m<T, 5>(x, w, b, z, y, pixels, c, relu, stream);
    case 6: return launch_m<T, 6>(x, w, b, z, y, pixels, c, relu, stream);
    case 7: return launch_m<T, 7>(x, w, b, z, y, pixels, c, relu, stream);
    case 8: return launch_m<T, 8>(x, w, b, z, y, pixels, c, relu, stream);
    default: return cudaErrorInvalidValue;
  }
}

}  // namespace

cudaError_t narrow_conv(DType t, const void* x, const void* w, const void* b, const void* z, void* y, int64_t pixels,
                        int c, int m, bool relu, cudaStream_t stream) {
  cudaError_t err = cudaErrorInvalidValue;
  dispatch_gpu_float(t, [&](auto tag) { err = launch<decltype(tag)>(x, w, b, z, y, pixels, c, m, relu, stream); });
  return err;
}

}  // namespace kiln::cuda::kernels
