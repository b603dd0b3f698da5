// Kernels of the data-dependent ops (NonZero, NonMaxSuppression, TopK); launchers declared in
// data_dependent_kernels.hpp. Correctness first: NonZero scans in one block, NMS ranks each
// (batch, class)'s scores pairwise (O(boxes^2) per class) and selects greedily in one block per
// class, TopK ranks each element against its whole slice (O(n^2) per slice).
#include <cub/block/block_scan.cuh>
#include <type_traits>

#include "backends/cuda/layers/data_dependent_kernels.hpp"
#include "backends/cuda/layers/device_types.cuh"

namespace kiln::cuda::kernels {
namespace {

// ---------------------------------------------------------------- NonZero
template <typename T> __device__ __forceinline__ bool is_nonzero(T v) { return v != T(0); }
template <> __device__ __forceinline__ bool is_nonzero<__half>(__half v) { return __half2float(v) != 0.f; }
template <> __device__ __forceinline__ bool is_nonzero<__nv_bfloat16>(__nv_bfloat16 v) {
  return __bfloat162float(v) != 0.f;
}

constexpr int kNzThreads = 512, kNzItems = 4;

// One block: count, then write each non-zero's coordinates at its rank (block scans per tile).
template <typename T>
__global__ void __launch_bounds__(kNzThreads)
    non_zero_kernel(const T* x, int64_t n, NonZeroShape shape, int64_t* y, int64_t* count) {
  using Scan = cub::BlockScan<int, kNzThreads>;
  __shared__ typename Scan::TempStorage scan;
  __shared__ unsigned long long total_s;
  if (threadIdx.x == 0) total_s = 0;
  __syncthreads();
  unsigned long long local = 0;
  for (int64_t i = threadIdx.x; i < n; i += kNzThreads) local += is_nonzero(x[i]) ? 1 : 0;
  atomicAdd(&total_s, local);
  __syncthreads();
  const int64_t total = static_cast<int64_t>(total_s);
  if (threadIdx.x == 0 && count) *count = total;
  constexpr int64_t kTile = int64_t{kNzThreads} * kNzItems;
  int64_t base = 0;
  for (int64_t start = 0; start < n; start += kTile) {
    int flags[kNzItems], offsets[kNzItems];
#pragma unroll
    for (int k = 0; k < kNzItems; ++k) {
      const int64_t idx = start + int64_t{threadIdx.x} * kNzItems + k;
      flags[k] = idx < n && is_nonzero(x[idx]) ? 1 : 0;
    }
    int tile_total = 0;
    Scan(scan).ExclusiveSum(flags, offsets, tile_total);
#pragma unroll
    for (int k = 0; k < kNzItems; ++k) {
      if (!flags[k]) continue;
      const int64_t p = base + offsets[k];
      int64_t rem = start + int64_t{threadIdx.x} * kNzItems + k;
      for (int d = shape.rank - 1; d >= 0; --d) {
        y[d * total + p] = rem % shape.dims[d];
        rem /= shape.dims[d];
      }
    }
    base += tile_total;
    __syncthreads();  // the scan's storage is reused by the next tile
  }
}

// ---------------------------------------------------------------- NonMaxSuppression
struct Box {
  double y1, x1, y2, x2;
};

// Products through the _rn intrinsics: no fused multiply-add, so the IoU rounds as on the CPU.
__device__ __forceinline__ double area(const Box& b) {
  return __dmul_rn(__dsub_rn(b.y2, b.y1), __dsub_rn(b.x2, b.x1));
}

__device__ Box load_box(const void* boxes, DType t, int64_t at, bool center) {
  const double b0 = load_as_float(boxes, t, at), b1 = load_as_float(boxes, t, at + 1);
  const double b2 = load_as_float(boxes, t, at + 2), b3 = load_as_float(boxes, t, at + 3);
  if (center) return {b1 - b3 / 2, b0 - b2 / 2, b1 + b3 / 2, b0 + b2 / 2};
  return {fmin(b0, b2), fmin(b1, b3), fmax(b0, b2), fmax(b1, b3)};
}

__device__ bool suppresses(const Box& a, const Box& b, double iou_threshold) {
  const double ih = __dsub_rn(fmin(a.y2, b.y2), fmax(a.y1, b.y1));
  const double iw = __dsub_rn(fmin(a.x2, b.x2), fmax(a.x1, b.x1));
  if (ih <= 0 || iw <= 0) return false;
  const double inter = __dmul_rn(ih, iw);
  const double aa = area(a), ab = area(b);
  const double uni = __dsub_rn(__dadd_rn(aa, ab), inter);
  if (aa <= 0 || ab <= 0 || uni <= 0) return false;
  return __ddiv_rn(inter, uni) > iou_threshold;
}

__device__ __forceinline__ bool nms_candidate(float s, bool has_threshold, float threshold) {
  return !isnan(s) && (!has_threshold || s > threshold);
}

// grid (batches * classes, ceil(spatial / 256)): order[seg][rank] = box, over the candidates.
__global__ void nms_rank_kernel(NmsParams p, const void* scores, int* order) {
  const int64_t seg = blockIdx.x;
  const int64_t j = int64_t{blockIdx.y} * blockDim.x + threadIdx.x;
  if (j >= p.spatial) return;
  const bool has_t = p.score_threshold != nullptr;
  const float thr = has_t ? load_as_float(p.score_threshold, p.score_threshold_t, 0) : 0.f;
  const int64_t base = seg * p.spatial;
  const float sj = load_as_float(scores, p.score_t, base + j);
  if (!nms_candidate(sj, has_t, thr)) return;
  int64_t rank = 0;
  for (int64_t i = 0; i < p.spatial; ++i) {
    const float si = load_as_float(scores, p.score_t, base + i);
    if (nms_candidate(si, has_t, thr) && (si > sj || (si == sj && i < j))) ++rank;
  }
  order[base + rank] = static_cast<int>(j);
}

// One block per (batch, class): visit candidates by rank, keep each that no kept box suppresses.
__global__ void nms_select_kernel(NmsParams p, const void* boxes, const void* scores, const int* order, int* kept,
                                  int64_t* counts) {
  const int64_t seg = blockIdx.x;
  const int64_t b = seg / p.classes;
  const int64_t base = seg * p.spatial;
  __shared__ unsigned long long cand_s;
  if (threadIdx.x == 0) cand_s = 0;
  __syncthreads();
  const bool has_t = p.score_threshold != nullptr;
  const float thr = has_t ? load_as_float(p.score_threshold, p.score_threshold_t, 0) : 0.f;
  unsigned long long local = 0;
  for (int64_t s = threadIdx.x; s < p.spatial; s += blockDim.x)
    local += nms_candidate(load_as_float(scores, p.score_t, base + s), has_t, thr) ? 1 : 0;
  atomicAdd(&cand_s, local);
  __syncthreads();
  const int64_t candidates = static_cast<int64_t>(cand_s);
  int64_t cap = p.max_out ? *p.max_out : 0;
  if (cap > p.spatial) cap = p.spatial;
  const double iou = p.iou ? static_cast<double>(load_as_float(p.iou, p.iou_t, 0)) : 0.0;
  int64_t nk = 0;  // the same in every thread (each step's decision is block-wide)
  for (int64_t r = 0; r < candidates && nk < cap; ++r) {
    const int j = order[base + r];
    const Box bj = load_box(boxes, p.box_t, (b * p.spatial + j) * 4, p.center_point_box);
    bool drop = false;
    for (int64_t t = threadIdx.x; t < nk && !drop; t += blockDim.x)
      drop = suppresses(load_box(boxes, p.box_t, (b * p.spatial + kept[base + t]) * 4, p.center_point_box), bj, iou);
    if (__syncthreads_or(drop)) continue;
    if (threadIdx.x == 0) kept[base + nk] = j;
    ++nk;
    __syncthreads();  // the new entry is visible before the next step reads it
  }
  if (threadIdx.x == 0) counts[seg] = nk;
}

// One thread: where each (batch, class)'s rows start, and the total.
__global__ void nms_offsets_kernel(int64_t segments, const int64_t* counts, int64_t* starts, int64_t* count) {
  int64_t total = 0;
  for (int64_t s = 0; s < segments; ++s) {
    starts[s] = total;
    total += counts[s];
  }
  if (count) *count = total;
}

__global__ void nms_write_kernel(NmsParams p, const int* kept, const int64_t* counts, const int64_t* starts,
                                 int64_t* y) {
  const int64_t seg = blockIdx.x;
  for (int64_t i = threadIdx.x; i < counts[seg]; i += blockDim.x) {
    int64_t* row = y + (starts[seg] + i) * 3;
    row[0] = seg / p.classes;
    row[1] = seg % p.classes;
    row[2] = kept[seg * p.spatial + i];
  }
}

// ---------------------------------------------------------------- TopK
template <typename T> struct Compute { using type = float; };
template <> struct Compute<int32_t> { using type = int64_t; };
template <> struct Compute<int64_t> { using type = int64_t; };
template <typename T> __device__ __forceinline__ typename Compute<T>::type load_c(T v) {
  return static_cast<typename Compute<T>::type>(v);
}
template <> __device__ __forceinline__ float load_c<__half>(__half v) { return __half2float(v); }
template <> __device__ __forceinline__ float load_c<__nv_bfloat16>(__nv_bfloat16 v) { return __bfloat162float(v); }

// Strict "a (at ia) comes before b (at ib)", as the CPU kernel's `before`.
template <bool kLargest, typename C>
__device__ __forceinline__ bool before(C a, int64_t ia, C b, int64_t ib) {
  if constexpr (std::is_floating_point_v<C>) {
    const bool an = isnan(a), bn = isnan(b);
    if (an || bn) {
      if (an && bn) return ia < ib;
      return kLargest ? an : bn;
    }
  }
  if (a != b) return kLargest ? a > b : a < b;
  return ia < ib;
}

constexpr int kTopkThreads = 256;

// grid (ceil(n / 256), slices (capped; the y loop covers the rest)): each element's rank in its
// slice; the first K by rank are written at their rank.
template <typename T, bool kLargest>
__global__ void __launch_bounds__(kTopkThreads)
    top_k_kernel(const T* x, int64_t outer, int64_t n, int64_t inner, const int64_t* k_ptr, T* values,
                 int64_t* indices, int64_t* count) {
  using C = typename Compute<T>::type;
  __shared__ C tile[kTopkThreads];
  const int64_t k = *k_ptr;
  if (count && blockIdx.x == 0 && blockIdx.y == 0 && threadIdx.x == 0) *count = k;
  if (k <= 0 || k > n) return;
  const int64_t j = int64_t{blockIdx.x} * kTopkThreads + threadIdx.x;
  const int64_t slices = outer * inner;
  for (int64_t sl = blockIdx.y; sl < slices; sl += gridDim.y) {
    const int64_t o = sl / inner, i = sl % inner;
    const T* xs = x + o * n * inner + i;
    const C vj = j < n ? load_c(xs[j * inner]) : C{};
    int64_t rank = 0;
    for (int64_t t0 = 0; t0 < n; t0 += kTopkThreads) {
      __syncthreads();
      if (t0 + threadIdx.x < n) tile[threadIdx.x] = load_c(xs[(t0 + threadIdx.x) * inner]);
      __syncthreads();
      const int64_t m = n - t0 < kTopkThreads ? n - t0 : kTopkThreads;
      if (j < n)
        for (int64_t t = 0; t < m; ++t) rank += before<kLargest>(tile[t], t0 + t, vj, j) ? 1 : 0;
    }
    if (j < n && rank < k) {
      values[(o * k + rank) * inner + i] = xs[j * inner];
      indices[(o * k + rank) * inner + i] = j;
    }
  }
}

template <typename T>
cudaError_t launch_top_k(const void* x, int64_t outer, int64_t n, int64_t inner, const int64_t* k, bool largest,
                         void* values, int64_t* indices, int64_t* count, cudaStream_t stream) {
  const int64_t slices = outer * inner;
  const int64_t bx = (n + kTopkThreads - 1) / kTopkThreads;
  dim3 grid(static_cast<unsigned>(bx < 1 ? 1 : bx), static_cast<unsigned>(slices < 1 ? 1 : (slices > 65535 ? 65535 : slices)));
  auto xs = static_cast<const T*>(x);
  auto vs = static_cast<T*>(values);
  if (largest) top_k_kernel<T, true><<<grid, kTopkThreads, 0, stream>>>(xs, outer, n, inner, k, vs, indices, count);
  else top_k_kernel<T, false><<<grid, kTopkThreads, 0, stream>>>(xs, outer, n, inner, k, vs, indices, count);
  return cudaGetLastError();
}

uint64_t align256(uint64_t x) { return (x + 255) / 256 * 256; }

}  // namespace

cudaError_t non_zero(DType t, const void* x, const NonZeroShape& shape, int64_t* y, int64_t* count,
                     cudaStream_t stream) {
  int64_t n = 1;
  for (int d = 0; d < shape.rank; ++d) n *= shape.dims[d];
  auto go = [&](auto tag) {
    using T = decltype(tag);
    non_zero_kernel<T><<<1, kNzThreads, 0, stream>>>(static_cast<const T*>(x), n, shape, y, count);
    return cudaGetLastError();
  };
  switch (t) {
    case DType::kFloat32: return go(float{});
    case DType::kFloat64: return go(double{});
    case DType::kFloat16: return go(__half{});
    case DType::kBFloat16: return go(__nv_bfloat16{});
    default: break;
  }
  // Integers and bool: non-zero bits.
  switch (dtype_size(t)) {
    case 1: return go(uint8_t{});
    case 2: return go(uint16_t{});
    case 4: return go(uint32_t{});
    case 8: return go(static_cast<unsigned long long>(0));
    default: return cudaErrorInvalidValue;
  }
}

size_t nms_workspace_bytes(const NmsParams& p) {
  const uint64_t segs = static_cast<uint64_t>(p.batches * p.classes);
  const uint64_t items = segs * static_cast<uint64_t>(p.spatial);
  return align256(items * sizeof(int)) * 2 + align256(segs * sizeof(int64_t)) * 2;
}

cudaError_t nms(const NmsParams& p, const void* boxes, const void* scores, int64_t* y, int64_t* count,
                void* workspace, cudaStream_t stream) {
  const int64_t segs = p.batches * p.classes;
  if (segs == 0 || p.spatial == 0) {
    return count ? cudaMemsetAsync(count, 0, sizeof(int64_t), stream) : cudaSuccess;
  }
  const uint64_t items = static_cast<uint64_t>(segs * p.spatial);
  char* ws = static_cast<char*>(workspace);
  int* order = reinterpret_cast<int*>(ws);
  int* kept = reinterpret_cast<int*>(ws + align256(items * sizeof(int)));
  int64_t* counts = reinterpret_cast<int64_t*>(ws + 2 * align256(items * sizeof(int)));
  int64_t* starts = reinterpret_cast<int64_t*>(ws + 2 * align256(items * sizeof(int)) +
                                               align256(static_cast<uint64_t>(segs) * sizeof(int64_t)));
  const int64_t by = (p.spatial + 255) / 256;
  nms_rank_kernel<<<dim3(static_cast<unsigned>(segs), static_cast<unsigned>(by)), 256, 0, stream>>>(p, scores, order);
  cudaError_t e = cudaGetLastError();
  if (e != cudaSuccess) return e;
  nms_select_kernel<<<static_cast<unsigned>(segs), 256, 0, stream>>>(p, boxes, scores, order, kept, counts);
  if ((e = cudaGetLastError()) != cudaSuccess) return e;
  nms_offsets_kernel<<<1, 1, 0, stream>>>(segs, counts, starts, count);
  if ((e = cudaGetLastError()) != cudaSuccess) return e;
  nms_write_kernel<<<static_cast<unsigned>(segs), 128, 0, stream>>>(p, kept, counts, starts, y);
  return cudaGetLastError();
}

cudaError_t top_k(DType t, const void* x, int64_t outer, int64_t n, int64_t inner, const int64_t* k, bool largest,
                  void* values, int64_t* indices, int64_t* count, cudaStream_t stream) {
  switch (t) {
    case DType::kFloat32: return launch_top_k<float>(x, outer, n, inner, k, largest, values, indices, count, stream);
    case DType::kFloat16: return launch_top_k<__half>(x, outer, n, inner, k, largest, values, indices, count, stream);
    case DType::kBFloat16:
      return launch_top_k<__nv_bfloat16>(x, outer, n, inner, k, largest, values, indices, count, stream);
    case DType::kInt32: return launch_top_k<int32_t>(x, outer, n, inner, k, largest, values, indices, count, stream);
    case DType::kInt64: return launch_top_k<int64_t>(x, outer, n, inner, k, largest, values, indices, count, stream);
    default: return cudaErrorInvalidValue;
  }
}

}  // namespace kiln::cuda::kernels
