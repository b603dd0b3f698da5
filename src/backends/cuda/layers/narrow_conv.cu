// The direct 1x1 NHWC convolution with few output channels (narrow_conv.hpp): W and B staged in
// shared memory as floats (every thread reads the same weight at a time: a broadcast), X read in
// 16-byte packs.
#include "backends/cuda/layers/device_types.cuh"
#include "backends/cuda/layers/narrow_conv_kernels.hpp"

namespace kiln::cuda::kernels {
namespace {

template <typename T, int V>
struct alignas(sizeof(T) * V) Pack {
  T v[V];
};

template <typename T, int V, int M>
__global__ void narrow_conv_kernel(const T* __restrict__ x, const T* __restrict__ w, const T* __restrict__ b,
                                   const T* __restrict__ z, T* __restrict__ y, int64_t pixels, int c, bool relu) {
  __shared__ float ws[M * kNarrowMaxInputs];
  __shared__ float bias[M];
  for (int i = threadIdx.x; i < M * c; i += blockDim.x) {
    const int m = i / c, k = i - m * c;
    ws[k * M + m] = to_f(w[i]);  // [c][M]: one pack of X meets M consecutive weights
  }
  for (int m = threadIdx.x; m < M; m += blockDim.x) bias[m] = b ? to_f(b[m]) : 0.f;
  __syncthreads();
  for (int64_t p = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; p < pixels;
       p += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    float acc[M];
#pragma unroll
    for (int m = 0; m < M; ++m) acc[m] = bias[m];
    const Pack<T, V>* xp = reinterpret_cast<const Pack<T, V>*>(x + p * c);
    for (int k0 = 0; k0 < c / V; ++k0) {
      const Pack<T, V> in = xp[k0];
#pragma unroll
      for (int v = 0; v < V; ++v) {
        const float xv = to_f(in.v[v]);
        const float* wk = ws + (k0 * V + v) * M;
#pragma unroll
        for (int m = 0; m < M; ++m) acc[m] = fmaf(xv, wk[m], acc[m]);
      }
    }
#pragma unroll
    for (int m = 0; m < M; ++m) {
      float r = acc[m] + (z ? to_f(z[p * M + m]) : 0.f);
      y[p * M + m] = from_f<T>(relu ? fmaxf(r, 0.f) : r);
    }
  }
}

template <typename T, int M>
cudaError_t launch_m(const void* x, const void* w, const void* b, const void* z, void* y, int64_t pixels, int c,
                     bool relu, cudaStream_t stream) {
  constexpr int V = 16 / static_cast<int>(sizeof(T));
  narrow_conv_kernel<T, V, M><<<grid_for(pixels, 128), 128, 0, stream>>>(
      static_cast<const T*>(x), static_cast<const T*>(w), static_cast<const T*>(b), static_cast<const T*>(z),
      static_cast<T*>(y), pixels, c, relu);
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
