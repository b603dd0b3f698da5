// LayerNormalization over rows of `cols` contiguous values: a warp per row (cols <= 1024) or a
// block per row. Two passes in float (mean, then the mean squared deviation: no cancellation
// for large means), then one pass writing y; the row is re-read from L1/L2, not DRAM. The
// register-resident kernel can also write y's float8 E4M3 copy (kiln.Fp8LayerNorm).
#include <cuda_fp8.h>

#include "backends/cuda/layers/norm_kernels.hpp"
#include "backends/cuda/layers/row_reduce.cuh"

namespace kiln::cuda::ew {
namespace {

template <int G, typename T>
__global__ void __launch_bounds__(G == 32 ? 256 : G)
    layer_norm_rows(const T* x, const T* scale, const T* bias, T* y, float* mean_out, float* inv_out, int64_t rows,
                    int64_t cols, float eps) {
  __shared__ float smem[G / 32];
  const RowGroup<G> rg;
  const auto add = [](float a, float b) { return a + b; };
  const float n = static_cast<float>(cols);
  for (int64_t row = rg.first; row < rows; row += rg.step) {
    const T* xr = x + row * cols;
    T* yr = y + row * cols;
    float sum = 0.f;
    for (int64_t k = rg.lane; k < cols; k += G) sum += load_c(xr[k]);
    const float mean = group_reduce<G>(sum, add, smem) / n;
    float sq = 0.f;
    for (int64_t k = rg.lane; k < cols; k += G) {
      const float d = load_c(xr[k]) - mean;
      sq += d * d;
    }
    const float inv = rsqrtf(group_reduce<G>(sq, add, smem) / n + eps);
    for (int64_t k = rg.lane; k < cols; k += G) {
      float v = (load_c(xr[k]) - mean) * inv * load_c(scale[k]);
      if (bias) v += load_c(bias[k]);
      yr[k] = store_c<T>(v);
    }
    if (rg.lane == 0) {
      if (mean_out) mean_out[row] = mean;
      if (inv_out) inv_out[row] = inv;
    }
  }
}

// V consecutive values from p (one 16-byte access when V > 1) in float.
template <int V, typename T>
__device__ __forceinline__ void load_floats(const T* p, float (&out)[V]) {
  if constexpr (V > 1) {
    const Vec<T, V> a = *reinterpret_cast<const Vec<T, V>*>(p);
#pragma unroll
    for (int k = 0; k < V; ++k) out[k] = load_c(a.v[k]);
  } else {
    out[0] = load_c(*p);
  }
}

// Rows of cols <= 1024 (transformer hidden sizes): a warp per row holding the row in registers,
// so x is read from memory once; 16-byte accesses when cols divides into V-element vectors and
// every pointer is aligned. The same two-pass float math as layer_norm_rows. yq (nullable): also
// e4m3(y * q_inv) of the rounded y, V bytes per access.
template <int V, int NV, typename T>
__global__ void __launch_bounds__(256)
    layer_norm_warp_regs(const T* __restrict__ x, const T* __restrict__ scale, const T* __restrict__ bias,
                         T* __restrict__ y, uint8_t* __restrict__ yq, float q_inv, float* mean_out, float* inv_out,
                         int64_t rows, int cols, float eps) {
  const int lane = threadIdx.x % 32;
  const int64_t warps = blockDim.x / 32;
  const float n = static_cast<float>(cols);
  for (int64_t row = blockIdx.x * warps + threadIdx.x / 32; row < rows; row += gridDim.x * warps) {
    const T* xr = x + row * cols;
    T* yr = y + row * cols;
    float v[NV][V];
    float sum = 0.f;
#pragma unroll
    for (int j = 0; j < NV; ++j) {
      const int at = (j * 32 + lane) * V;
      if (at < cols) {
        load_floats<V>(xr + at, v[j]);
      } else {
#pragma unroll
        for (int k = 0; k < V; ++k) v[j][k] = 0.f;
      }
#pragma unroll
      for (int k = 0; k < V; ++k) sum += v[j][k];
    }
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, o);
    const float mean = sum / n;
    float sq = 0.f;
#pragma unroll
    for (int j = 0; j < NV; ++j) {
      if ((j * 32 + lane) * V >= cols) continue;
#pragma unroll
      for (int k = 0; k < V; ++k) {
        const float d = v[j][k] - mean;
        sq += d * d;
      }
    }
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) sq += __shfl_xor_sync(0xffffffffu, sq, o);
    const float inv = rsqrtf(sq / n + eps);
#pragma unroll
    for (int j = 0; j < NV; ++j) {
      const int at = (j * 32 + lane) * V;
      if (at >= cols) continue;
      float g[V], b[V] = {};
      load_floats<V>(scale + at, g);
      if (bias) load_floats<V>(bias + at, b);
      Vec<T, V> r;
#pragma unroll
      for (int k = 0; k < V; ++k) r.v[k] = store_c<T>((v[j][k] - mean) * inv * g[k] + (bias ? b[k] : 0.f));
      if constexpr (V > 1) *reinterpret_cast<Vec<T, V>*>(yr + at) = r;
      else yr[at] = r.v[0];
      if (yq) {
        Vec<uint8_t, V> q;
#pragma unroll
        for (int k = 0; k < V; ++k) q.v[k] = __nv_cvt_float_to_fp8(load_c(r.v[k]) * q_inv, __NV_SATFINITE, __NV_E4M3);
        *reinterpret_cast<Vec<uint8_t, V>*>(yq + row * cols + at) = q;
      }
    }
    if (lane == 0) {
      if (mean_out) mean_out[row] = mean;
      if (inv_out) inv_out[row] = inv;
    }
  }
}

// The smallest NV that covers cols; instantiated up to 1024 values per row.
template <int V, int NV, typename T>
cudaError_t launch_warp_regs(const T* x, const T* scale, const T* bias, T* y, uint8_t* yq, float q_inv, float* mean,
                             float* inv, int64_t rows, int cols, float eps, cudaStream_t s) {
  if constexpr (32 * V * NV < 1024)
    if (cols > 32 * V * NV)
      return launch_warp_regs<V, NV * 2, T>(x, scale, bias, y, yq, q_inv, mean, inv, rows, cols, eps, s);
  layer_norm_warp_regs<V, NV>
      <<<row_grid(rows, 32, 256), 256, 0, s>>>(x, scale, bias, y, yq, q_inv, mean, inv, rows, cols, eps);
  return cudaGetLastError();
}

// yq (nullable, cols <= 1024 only): the float8 copy, e4m3(y * q_inv).
template <typename T>
cudaError_t launch(const void* x, const void* scale, const void* bias, void* y, uint8_t* yq, float q_inv, float* mean,
                   float* inv, int64_t rows, int64_t cols, float eps, cudaStream_t s) {
  const auto* px = static_cast<const T*>(x);
  const auto* ps = static_cast<const T*>(scale);
  const auto* pb = static_cast<const T*>(bias);
  auto* py = static_cast<T*>(y);
  if (cols <= 1024) {
    constexpr int V = static_cast<int>(16 / sizeof(T));
    const int c = static_cast<int>(cols);
    if (cols % V == 0 && aligned(x, 16) && aligned(y, 16) && aligned(scale, 16) && (!bias || aligned(bias, 16)) &&
        (!yq || aligned(yq, V)))
      return launch_warp_regs<V, 1, T>(px, ps, pb, py, yq, q_inv, mean, inv, rows, c, eps, s);
    return launch_warp_regs<1, 1, T>(px, ps, pb, py, yq, q_inv, mean, inv, rows, c, eps, s);
  }
  if (yq) return cudaErrorNotSupported;
  if (cols <= 1024)
    layer_norm_rows<32><<<row_grid(rows, 32, 256), 256, 0, s>>>(px, ps, pb, py, mean, inv, rows, cols, eps);
  else if (cols <= 8192)
    layer_norm_rows<256><<<row_grid(rows, 256, 256), 256, 0, s>>>(px, ps, pb, py, mean, inv, rows, cols, eps);
  else
    layer_norm_rows<1024><<<row_grid(rows, 1024, 1024), 1024, 0, s>>>(px, ps, pb, py, mean, inv, rows, cols, eps);
  return cudaGetLastError();
}

}  // namespace
}  // namespace kiln::cuda::ew

namespace kiln::cuda {

bool layer_norm_supported(DType t) { return ew::dispatch<ew::kFloats>(t, [](auto) {}); }

cudaError_t launch_layer_norm(DType t, const void* x, const void* scale, const void* bias, void* y, float* mean,
                              float* inv_std, int64_t rows, int64_t cols, float eps, cudaStream_t stream) {
  if (!layer_norm_supported(t)) return cudaErrorNotSupported;
  if (rows <= 0 || cols <= 0) return cudaSuccess;
  cudaError_t err = cudaSuccess;
  ew::dispatch<ew::kFloats>(t, [&](auto tag) {
    err = ew::launch<typename decltype(tag)::type>(x, scale, bias, y, nullptr, 1.f, mean, inv_std, rows, cols, eps,
                                                   stream);
  });
  return err;
}

bool layer_norm_e4m3_supported(DType t, int64_t cols) { return layer_norm_supported(t) && cols <= 1024; }

cudaError_t launch_layer_norm_e4m3(DType t, const void* x, const void* scale, const void* bias, void* y, void* yq,
                                   float q_inv_scale, int64_t rows, int64_t cols, float eps, cudaStream_t stream) {
  if (!layer_norm_e4m3_supported(t, cols) || !yq) return cudaErrorNotSupported;
  if (rows <= 0 || cols <= 0) return cudaSuccess;
  cudaError_t err = cudaSuccess;
  ew::dispatch<ew::kFloats>(t, [&](auto tag) {
    err = ew::launch<typename decltype(tag)::type>(x, scale, bias, y, static_cast<uint8_t*>(yq), q_inv_scale, nullptr,
                                                   nullptr, rows, cols, eps, stream);
  });
  return err;
}

}  // namespace kiln::cuda
