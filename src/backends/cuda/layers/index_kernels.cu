// Index-driven data movement: per-axis map gathers (Slice, Pad, Expand, Tile, nearest Resize),
// Gather along an axis, and separable weighted resampling (linear/cubic Resize).
#include "backends/cuda/layers/device_types.cuh"
#include "backends/cuda/layers/nn_kernels.hpp"

namespace kiln::cuda::kernels {
namespace {

template <typename U, typename I>
__global__ void axis_map_kernel(const U* __restrict__ x, U* __restrict__ y, const int64_t* __restrict__ maps,
                                const U* __restrict__ fill, I total, AxisMapParams p) {
  for (I g = static_cast<I>(blockIdx.x) * blockDim.x + threadIdx.x; g < total;
       g += static_cast<I>(gridDim.x) * blockDim.x) {
    I rem = g;
    int64_t src = 0;
    bool filled = false;
    for (int i = p.rank - 1; i >= 0; --i) {
      const I d = static_cast<I>(p.out_dims[i]);
      const I q = rem / d;
      const int64_t m = maps[p.map_offset[i] + static_cast<int64_t>(rem - q * d)];
      rem = q;
      if (m < 0) filled = true;
      else src += m;
    }
    y[g] = filled ? (fill ? *fill : U{}) : x[src];
  }
}

template <typename U, typename Idx>
__global__ void gather_kernel(const U* __restrict__ x, U* __restrict__ y, const Idx* __restrict__ idx, int64_t total,
                              int64_t count, int64_t axis_dim, int64_t inner) {
  for (int64_t g = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; g < total;
       g += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t i = g % inner, t = g / inner, k = t % count, o = t / count;
    int64_t j = static_cast<int64_t>(idx[k]);
    if (j < 0) j += axis_dim;
    y[g] = j >= 0 && j < axis_dim ? x[(o * axis_dim + j) * inner + i] : U{};
  }
}

template <typename T>
__global__ void resample_kernel(const T* __restrict__ x, T* __restrict__ y, const int64_t* __restrict__ offs,
                                const float* __restrict__ weights, int64_t total, ResampleParams p) {
  for (int64_t g = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; g < total;
       g += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    int64_t rem = g, base = 0;
    int64_t row[3] = {-1, -1, -1};  // per slot: first table entry of this output coordinate
    for (int i = p.rank - 1; i >= 0; --i) {
      const int64_t c = rem % p.out_dims[i];
      rem /= p.out_dims[i];
      const int s = p.resized[i];
      if (s < 0) base += c * p.in_strides[i];
      else row[s] = p.table_offset[s] + c * p.taps;
    }
    const int n0 = row[0] >= 0 ? p.taps : 1, n1 = row[1] >= 0 ? p.taps : 1, n2 = row[2] >= 0 ? p.taps : 1;
    float acc = 0.f;
    for (int a = 0; a < n0; ++a) {
      const float w0 = row[0] >= 0 ? weights[row[0] + a] : 1.f;
      const int64_t o0 = row[0] >= 0 ? offs[row[0] + a] : 0;
      if (w0 == 0.f) continue;
      for (int b = 0; b < n1; ++b) {
        const float w1 = row[1] >= 0 ? weights[row[1] + b] : 1.f;
        const int64_t o1 = row[1] >= 0 ? offs[row[1] + b] : 0;
        if (w1 == 0.f) continue;
        for (int c = 0; c < n2; ++c) {
          const float w2 = row[2] >= 0 ? weights[row[2] + c] : 1.f;
          const int64_t o2 = row[2] >= 0 ? offs[row[2] + c] : 0;
          acc += w0 * w1 * w2 * to_f(x[base + o0 + o1 + o2]);
        }
      }
    }
    y[g] = from_f<T>(acc);
  }
}

template <typename U>
cudaError_t axis_map_as(const void* x, void* y, const int64_t* maps, const void* fill, const AxisMapParams& p,
                        cudaStream_t stream) {
  int64_t total = 1;
  for (int i = 0; i < p.rank; ++i) total *= p.out_dims[i];
  if (total == 0) return cudaSuccess;
  const U* xs = static_cast<const U*>(x);
  const U* f = static_cast<const U*>(fill);
  U* ys = static_cast<U*>(y);
  if (total <= INT32_MAX)
    axis_map_kernel<U, uint32_t><<<grid_for(total), 256, 0, stream>>>(xs, ys, maps, f, static_cast<uint32_t>(total), p);
  else
    axis_map_kernel<U, int64_t><<<grid_for(total), 256, 0, stream>>>(xs, ys, maps, f, total, p);
  return cudaGetLastError();
}

template <typename U>
cudaError_t gather_as(const void* x, void* y, const void* indices, bool i64, int64_t count, int64_t outer,
                      int64_t axis_dim, int64_t inner, cudaStream_t stream) {
  const int64_t total = outer * count * inner;
  if (total == 0) return cudaSuccess;
  if (i64)
    gather_kernel<U, int64_t><<<grid_for(total), 256, 0, stream>>>(
        static_cast<const U*>(x), static_cast<U*>(y), static_cast<const int64_t*>(indices), total, count, axis_dim, inner);
  else
    gather_kernel<U, int32_t><<<grid_for(total), 256, 0, stream>>>(
        static_cast<const U*>(x), static_cast<U*>(y), static_cast<const int32_t*>(indices), total, count, axis_dim, inner);
  return cudaGetLastError();
}

}  // namespace

cudaError_t axis_map_gather(size_t elem_size, const void* x, void* y, const int64_t* maps, const void* fill,
                            const AxisMapParams& p, cudaStream_t stream) {
  switch (elem_size) {
    case 1: return axis_map_as<uint8_t>(x, y, maps, fill, p, stream);
    case 2: return axis_map_as<uint16_t>(x, y, maps, fill, p, stream);
    case 4: return axis_map_as<uint32_t>(x, y, maps, fill, p, stream);
    case 8: return axis_map_as<uint64_t>(x, y, maps, fill, p, stream);
    default: return cudaErrorInvalidValue;
  }
}

cudaError_t gather(size_t elem_size, const void* x, void* y, const void* indices, bool indices_int64, int64_t count,
                   int64_t outer, int64_t axis_dim, int64_t inner, cudaStream_t stream) {
  switch (elem_size) {
    case 1: return gather_as<uint8_t>(x, y, indices, indices_int64, count, outer, axis_dim, inner, stream);
    case 2: return gather_as<uint16_t>(x, y, indices, indices_int64, count, outer, axis_dim, inner, stream);
    case 4: return gather_as<uint32_t>(x, y, indices, indices_int64, count, outer, axis_dim, inner, stream);
    case 8: return gather_as<uint64_t>(x, y, indices, indices_int64, count, outer, axis_dim, inner, stream);
    default: return cudaErrorInvalidValue;
  }
}

cudaError_t resample(DType t, const void* x, void* y, const int64_t* tap_offsets, const float* tap_weights,
                     const ResampleParams& p, cudaStream_t stream) {
  int64_t total = 1;
  for (int i = 0; i < p.rank; ++i) total *= p.out_dims[i];
  if (total == 0) return cudaSuccess;
  bool ok = dispatch_gpu_float(t, [&](auto tag) {
    using T = decltype(tag);
    resample_kernel<T><<<grid_for(total), 256, 0, stream>>>(static_cast<const T*>(x), static_cast<T*>(y), tap_offsets,
                                                            tap_weights, total, p);
  });
  return ok ? cudaGetLastError() : cudaErrorInvalidValue;
}

}  // namespace kiln::cuda::kernels
