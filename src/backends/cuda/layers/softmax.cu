// Softmax, LogSoftmax and Hardmax along one axis, seen as (outer, len, inner). Contiguous rows
// (inner == 1) are reduced by a warp (len <= 1024) or a block per row; otherwise each thread
// walks one (outer, inner) column, so neighbouring threads read neighbouring elements. Online
// max/sum in float, then one pass writing the outputs.
#include "backends/cuda/layers/norm_kernels.hpp"
#include "backends/cuda/layers/row_reduce.cuh"

namespace kiln::cuda::ew {
namespace {

template <SoftmaxKind K, typename T>
__device__ __forceinline__ void write_line(const T* x, T* y, int64_t begin, int64_t len, int64_t step,
                                           int64_t stride, MaxSum ms, int64_t arg) {
  const float inv = 1.f / ms.s, log_sum = logf(ms.s);
  for (int64_t k = begin; k < len; k += step) {
    float r;
    if constexpr (K == SoftmaxKind::kHardmax) r = k == arg ? 1.f : 0.f;
    else if constexpr (K == SoftmaxKind::kSoftmax) r = expf(load_c(x[k * stride]) - ms.m) * inv;
    else r = load_c(x[k * stride]) - ms.m - log_sum;
    y[k * stride] = store_c<T>(r);
  }
}

template <int G, SoftmaxKind K, typename T>
__global__ void __launch_bounds__(G == 32 ? 256 : G) softmax_rows(const T* x, T* y, int64_t rows, int64_t len) {
  __shared__ MaxSum smem_ms[G / 32];
  __shared__ ArgMax smem_am[G / 32];
  const RowGroup<G> rg;
  for (int64_t row = rg.first; row < rows; row += rg.step) {
    const T* xr = x + row * len;
    T* yr = y + row * len;
    MaxSum ms{0.f, 1.f};
    int64_t arg = 0;
    if constexpr (K == SoftmaxKind::kHardmax) {
      ArgMax am{-INFINITY, len};
      for (int64_t k = rg.lane; k < len; k += G) am = combine(am, ArgMax{load_c(xr[k]), k});
      am = group_reduce<G>(am, [](ArgMax a, ArgMax b) { return combine(a, b); }, smem_am);
      arg = am.i == len ? 0 : am.i;  // all -inf or NaN: index 0, as the CPU reference
    } else {
      ms = MaxSum{-INFINITY, 0.f};
      for (int64_t k = rg.lane; k < len; k += G) ms = combine(ms, MaxSum{load_c(xr[k]), 1.f});
      ms = group_reduce<G>(ms, [](MaxSum a, MaxSum b) { return combine(a, b); }, smem_ms);
    }
    write_line<K>(xr, yr, rg.lane, len, G, 1, ms, arg);
  }
}

template <SoftmaxKind K, typename T>
__global__ void __launch_bounds__(kThreads) softmax_cols(const T* x, T* y, int64_t outer, int64_t len,
                                                         int64_t inner) {
  const int64_t cols = outer * inner;
  const int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t c = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; c < cols; c += step) {
    const int64_t base = (c / inner) * len * inner + c % inner;
    const T* xc = x + base;
    MaxSum ms{-INFINITY, 0.f};
    ArgMax am{-INFINITY, len};
    for (int64_t k = 0; k < len; ++k) {
      const float v = load_c(xc[k * inner]);
      if constexpr (K == SoftmaxKind::kHardmax) am = combine(am, ArgMax{v, k});
      else ms = combine(ms, MaxSum{v, 1.f});
    }
    if constexpr (K == SoftmaxKind::kHardmax) ms = MaxSum{0.f, 1.f};
    write_line<K>(xc, y + base, 0, len, 1, inner, ms, am.i == len ? 0 : am.i);
  }
}

// Softmax of short contiguous rows (len <= 1024, the attention case) of x * scale + mask: a warp
// per row holding the row in registers, so x is read once; rows whose length divides into
// V-element vectors (and aligned pointers) are moved with 16-byte accesses. Entries beyond len
// are -inf (weight 0). mask (nullable) is read at the row's offset (MaskIndex) + column.
template <int V, int NV, typename T>
__global__ void __launch_bounds__(256) softmax_warp_regs(const T* __restrict__ x, T* __restrict__ y, int64_t rows,
                                                         int len, float scale, const T* __restrict__ mask,
                                                         MaskIndex mi) {
  const int lane = threadIdx.x % 32;
  const int64_t warps = blockDim.x / 32;
  for (int64_t row = blockIdx.x * warps + threadIdx.x / 32; row < rows; row += gridDim.x * warps) {
    const T* xr = x + row * len;
    T* yr = y + row * len;
    const T* mr = nullptr;
    if (mask) {
      int64_t off = 0, rem = row;
      for (int d = mi.rank - 1; d >= 0; --d) {
        off += (rem % mi.row_dims[d]) * mi.strides[d];
        rem /= mi.row_dims[d];
      }
      mr = mask + off;
    }
    float v[NV][V];
    float m = -INFINITY;
#pragma unroll
    for (int j = 0; j < NV; ++j) {
      const int at = (j * 32 + lane) * V;
      if (at < len) {
        if constexpr (V > 1) {
          const Vec<T, V> a = *reinterpret_cast<const Vec<T, V>*>(xr + at);
#pragma unroll
          for (int k = 0; k < V; ++k) v[j][k] = load_c(a.v[k]) * scale;
          if (mr) {
            const Vec<T, V> b = *reinterpret_cast<const Vec<T, V>*>(mr + at);
#pragma unroll
            for (int k = 0; k < V; ++k) v[j][k] += load_c(b.v[k]);
          }
        } else {
          v[j][0] = load_c(xr[at]) * scale;
          if (mr) v[j][0] += load_c(mr[at]);
        }
      } else {
#pragma unroll
        for (int k = 0; k < V; ++k) v[j][k] = -INFINITY;
      }
#pragma unroll
      for (int k = 0; k < V; ++k) m = fmaxf(m, v[j][k]);
    }
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, o));
    float sum = 0.f;
#pragma unroll
    for (int j = 0; j < NV; ++j) {
      const bool in = (j * 32 + lane) * V < len;
#pragma unroll
      for (int k = 0; k < V; ++k) {
        v[j][k] = in ? expf(v[j][k] - m) : 0.f;
        sum += v[j][k];
      }
    }
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, o);
    const float inv = 1.f / sum;
#pragma unroll
    for (int j = 0; j < NV; ++j) {
      const int at = (j * 32 + lane) * V;
      if (at >= len) continue;
      if constexpr (V > 1) {
        Vec<T, V> r;
#pragma unroll
        for (int k = 0; k < V; ++k) r.v[k] = store_c<T>(v[j][k] * inv);
        *reinterpret_cast<Vec<T, V>*>(yr + at) = r;
      } else {
        yr[at] = store_c<T>(v[j][0] * inv);
      }
    }
  }
}

// The smallest NV (registers per lane: NV vectors) that covers len; instantiated up to 1024.
template <int V, int NV, typename T>
cudaError_t launch_warp_regs(const T* x, T* y, int64_t rows, int len, float scale, const T* mask,
                             const MaskIndex& mi, cudaStream_t s) {
  if constexpr (32 * V * NV < 1024)
    if (len > 32 * V * NV) return launch_warp_regs<V, NV * 2, T>(x, y, rows, len, scale, mask, mi, s);
  softmax_warp_regs<V, NV><<<row_grid(rows, 32, 256), 256, 0, s>>>(x, y, rows, len, scale, mask, mi);
  return cudaGetLastError();
}

// Wide accesses need len in whole vectors and every row start (x, y, mask rows) 16-byte aligned.
template <typename T>
cudaError_t launch_regs(const T* x, T* y, int64_t rows, int64_t len, float scale, const T* mask,
                        const MaskIndex& mi, cudaStream_t s) {
  constexpr int V = static_cast<int>(16 / sizeof(T));
  bool wide = len % V == 0 && aligned(x, 16) && aligned(y, 16);
  if (mask) {
    wide = wide && aligned(mask, 16);
    for (int d = 0; d < mi.rank; ++d) wide = wide && mi.strides[d] % V == 0;
  }
  const int n = static_cast<int>(len);
  if (wide) return launch_warp_regs<V, 1, T>(x, y, rows, n, scale, mask, mi, s);
  return launch_warp_regs<1, 1, T>(x, y, rows, n, scale, mask, mi, s);
}

template <SoftmaxKind K, typename T>
cudaError_t launch(const void* xv, void* yv, int64_t outer, int64_t len, int64_t inner, cudaStream_t s) {
  const auto* x = static_cast<const T*>(xv);
  auto* y = static_cast<T*>(yv);
  if (K == SoftmaxKind::kSoftmax && inner == 1 && len <= 1024)
    return launch_regs<T>(x, y, outer, len, 1.f, nullptr, MaskIndex{}, s);
  if (inner > 1) {
    softmax_cols<K><<<grid_for(outer * inner), kThreads, 0, s>>>(x, y, outer, len, inner);
  } else if (len <= 1024) {
    softmax_rows<32, K><<<row_grid(outer, 32, 256), 256, 0, s>>>(x, y, outer, len);
  } else if (len <= 8192) {
    softmax_rows<256, K><<<row_grid(outer, 256, 256), 256, 0, s>>>(x, y, outer, len);
  } else {
    softmax_rows<1024, K><<<row_grid(outer, 1024, 1024), 1024, 0, s>>>(x, y, outer, len);
  }
  return cudaGetLastError();
}

}  // namespace
}  // namespace kiln::cuda::ew

namespace kiln::cuda {

bool softmax_supported(DType t) { return ew::dispatch<ew::kFloats>(t, [](auto) {}); }

cudaError_t launch_masked_softmax(DType t, const void* x, const void* mask, const MaskIndex& mi, float scale,
                                  void* y, int64_t rows, int64_t len, cudaStream_t stream) {
  if (!softmax_supported(t) || len > 1024 || mi.rank > kMaxMaskRank) return cudaErrorNotSupported;
  if (rows * len <= 0) return cudaSuccess;
  cudaError_t err = cudaSuccess;
  ew::dispatch<ew::kFloats>(t, [&](auto tag) {
    using T = typename decltype(tag)::type;
    err = ew::launch_regs<T>(static_cast<const T*>(x), static_cast<T*>(y), rows, len, scale,
                             static_cast<const T*>(mask), mi, stream);
  });
  return err;
}

cudaError_t launch_softmax(SoftmaxKind kind, DType t, const void* x, void* y, int64_t outer, int64_t len,
                           int64_t inner, cudaStream_t stream) {
  if (!softmax_supported(t)) return cudaErrorNotSupported;
  if (outer * len * inner <= 0) return cudaSuccess;
  cudaError_t err = cudaSuccess;
  ew::dispatch<ew::kFloats>(t, [&](auto tag) {
    using T = typename decltype(tag)::type;
    switch (kind) {
      case SoftmaxKind::kSoftmax: err = ew::launch<SoftmaxKind::kSoftmax, T>(x, y, outer, len, inner, stream); break;
      case SoftmaxKind::kLogSoftmax:
        err = ew::launch<SoftmaxKind::kLogSoftmax, T>(x, y, outer, len, inner, stream);
        break;
      case SoftmaxKind::kHardmax: err = ew::launch<SoftmaxKind::kHardmax, T>(x, y, outer, len, inner, stream); break;
    }
  });
  return err;
}

}  // namespace kiln::cuda
