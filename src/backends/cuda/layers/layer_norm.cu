// LayerNormalization over rows of `cols` contiguous values: a warp per row (cols <= 1024) or a
// block per row. Two passes in float (mean, then the mean squared deviation: no cancellation
// for large means), then one pass writing y; the row is re-read from L1/L2, not DRAM.
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

template <typename T>
cudaError_t launch(const void* x, const void* scale, const void* bias, void* y, float* mean, float* inv,
                   int64_t rows, int64_t cols, float eps, cudaStream_t s) {
  const auto* px = static_cast<const T*>(x);
  const auto* ps = static_cast<const T*>(scale);
  const auto* pb = static_cast<const T*>(bias);
  auto* py = static_cast<T*>(y);
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
    err = ew::launch<typename decltype(tag)::type>(x, scale, bias, y, mean, inv_std, rows, cols, eps, stream);
  });
  return err;
}

}  // namespace kiln::cuda
