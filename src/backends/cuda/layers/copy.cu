// Data-movement kernels by element size: pitched 2-D copies (Concat, Split), general strided
// gathers of rank <= 8 (Transpose, Slice, Expand) and tiled batched transposes.
#include "backends/cuda/layers/device_types.cuh"
#include "backends/cuda/layers/nn_kernels.hpp"

namespace kiln::cuda::kernels {
namespace {

// Rows of `width` units of type U (the widest unit that divides widths, pitches and addresses).
// I: the index type, 32-bit when the unit count fits (a 64-bit division per 16-byte unit is what
// limited Concat's bandwidth).
template <typename U, typename I>
__global__ void copy_2d_kernel(char* __restrict__ dst, int64_t dst_pitch, const char* __restrict__ src,
                               int64_t src_pitch, I width, I total) {
  for (I g = static_cast<I>(blockIdx.x) * blockDim.x + threadIdx.x; g < total; g += static_cast<I>(gridDim.x) * blockDim.x) {
    const I r = g / width, c = g - r * width;
    reinterpret_cast<U*>(dst + static_cast<int64_t>(r) * dst_pitch)[c] =
        reinterpret_cast<const U*>(src + static_cast<int64_t>(r) * src_pitch)[c];
  }
}

template <typename U>
void launch_copy_2d(char* d, int64_t dst_pitch, const char* s, int64_t src_pitch, int64_t w, int64_t total,
                    cudaStream_t stream) {
  if (total <= UINT32_MAX - 65535LL * 8 * 256)  // room for the grid-stride step past the end
    copy_2d_kernel<U, uint32_t><<<grid_for(total), 256, 0, stream>>>(d, dst_pitch, s, src_pitch, static_cast<uint32_t>(w),
                                                                      static_cast<uint32_t>(total));
  else
    copy_2d_kernel<U, int64_t><<<grid_for(total), 256, 0, stream>>>(d, dst_pitch, s, src_pitch, w, total);
}

template <typename U, typename I>
__global__ void strided_kernel(const U* __restrict__ x, U* __restrict__ y, I total, StridedParams p) {
  for (I g = static_cast<I>(blockIdx.x) * blockDim.x + threadIdx.x; g < total;
       g += static_cast<I>(gridDim.x) * blockDim.x) {
    I rem = g;
    int64_t src = p.in_offset;
    for (int i = p.rank - 1; i >= 0; --i) {
      const I d = static_cast<I>(p.out_dims[i]);
      const I q = rem / d;
      src += static_cast<int64_t>(rem - q * d) * p.in_strides[i];
      rem = q;
    }
    y[g] = x[src];
  }
}

constexpr int kTile = 32;

// 32 x 32 tiles through shared memory (padded against bank conflicts); blocks of 32 x 8 threads
// walk the tiles of all batches with a grid-stride loop.
template <typename U>
__global__ void transpose_tiled(const U* __restrict__ x, U* __restrict__ y, int64_t batch, int64_t rows,
                                int64_t cols, int64_t tiles_r, int64_t tiles_c) {
  __shared__ U tile[kTile][kTile + 1];
  const int64_t per_batch = tiles_r * tiles_c, total = batch * per_batch;
  for (int64_t t = blockIdx.x; t < total; t += gridDim.x) {
    const int64_t b = t / per_batch, rem = t - b * per_batch;
    const int64_t r0 = (rem / tiles_c) * kTile, c0 = (rem % tiles_c) * kTile;
    const U* xb = x + b * rows * cols;
    U* yb = y + b * rows * cols;
    for (int j = threadIdx.y; j < kTile; j += blockDim.y) {
      const int64_t r = r0 + j, c = c0 + threadIdx.x;
      if (r < rows && c < cols) tile[j][threadIdx.x] = xb[r * cols + c];
    }
    __syncthreads();
    for (int j = threadIdx.y; j < kTile; j += blockDim.y) {
      const int64_t c = c0 + j, r = r0 + threadIdx.x;
      if (r < rows && c < cols) yb[c * rows + r] = tile[threadIdx.x][j];
    }
    __syncthreads();  // the tile is refilled by the next iteration
  }
}

template <typename U>
cudaError_t strided_as(const void* x, void* y, const StridedParams& p, cudaStream_t stream) {
  int64_t total = 1;
  for (int i = 0; i < p.rank; ++i) total *= p.out_dims[i];
  if (total == 0) return cudaSuccess;
  const U* xs = static_cast<const U*>(x);
  U* ys = static_cast<U*>(y);
  if (total <= INT32_MAX)
    strided_kernel<U, uint32_t><<<grid_for(total), 256, 0, stream>>>(xs, ys, static_cast<uint32_t>(total), p);
  else
    strided_kernel<U, int64_t><<<grid_for(total), 256, 0, stream>>>(xs, ys, total, p);
  return cudaGetLastError();
}

template <typename U>
cudaError_t transpose_as(const void* x, void* y, int64_t batch, int64_t rows, int64_t cols, cudaStream_t stream) {
  const int64_t tiles_r = (rows + kTile - 1) / kTile, tiles_c = (cols + kTile - 1) / kTile;
  const int64_t tiles = batch * tiles_r * tiles_c;
  if (tiles == 0) return cudaSuccess;
  const unsigned blocks = static_cast<unsigned>(tiles < 65535 * 16 ? tiles : 65535 * 16);
  transpose_tiled<U><<<blocks, dim3(kTile, 8), 0, stream>>>(static_cast<const U*>(x), static_cast<U*>(y), batch, rows,
                                                             cols, tiles_r, tiles_c);
  return cudaGetLastError();
}

bool aligned(const void* p, int64_t unit) { return reinterpret_cast<uintptr_t>(p) % static_cast<uintptr_t>(unit) == 0; }

// Every part of a Concat (Split) in one launch: unit g of the whole, row r = g / row_units, is
// column c of part k, the part whose columns [begin[k], begin[k] + width[k]) hold c. One launch
// writes (reads) the whole rows contiguously, where one pitched copy per part leaves gaps.
struct RowParts {
  char* ptr[kMaxRowParts];
  int64_t begin[kMaxRowParts + 1];  // in units; begin[n] = row_units
  int n = 0;
};

template <typename U, typename I, bool kSplit>
__global__ void row_parts_kernel(char* __restrict__ whole, I row_units, I total, RowParts p) {
  for (I g = static_cast<I>(blockIdx.x) * blockDim.x + threadIdx.x; g < total; g += static_cast<I>(gridDim.x) * blockDim.x) {
    const I r = g / row_units, c = g - r * row_units;
    int k = 0;
    while (k + 1 < p.n && c >= static_cast<I>(p.begin[k + 1])) ++k;
    const I b = static_cast<I>(p.begin[k]), w = static_cast<I>(p.begin[k + 1]) - b;
    U* part = reinterpret_cast<U*>(p.ptr[k]) + static_cast<int64_t>(r) * w + (c - b);
    U* all = reinterpret_cast<U*>(whole) + static_cast<int64_t>(g);
    if constexpr (kSplit) *part = *all;
    else *all = *part;
  }
}

template <typename U, bool kSplit>
void launch_row_parts(char* whole, int64_t row_units, int64_t total, const RowParts& p, cudaStream_t stream) {
  if (total <= UINT32_MAX - 65535LL * 8 * 256)
    row_parts_kernel<U, uint32_t, kSplit><<<grid_for(total), 256, 0, stream>>>(
        whole, static_cast<uint32_t>(row_units), static_cast<uint32_t>(total), p);
  else
    row_parts_kernel<U, int64_t, kSplit><<<grid_for(total), 256, 0, stream>>>(whole, row_units, total, p);
}

}  // namespace

cudaError_t concat_rows(void* whole, void* const* parts, const int64_t* widths, int n, int64_t rows, bool split,
                        cudaStream_t stream) {
  if (n < 1 || n > kMaxRowParts || rows <= 0) return cudaErrorNotSupported;
  int64_t unit = 16, row_bytes = 0;
  for (int k = 0; k < n; ++k) row_bytes += widths[k];
  auto fits = [&](int64_t u) {
    if (!aligned(whole, u)) return false;
    for (int k = 0; k < n; ++k)
      if (widths[k] % u || (widths[k] > 0 && !aligned(parts[k], u))) return false;
    return true;
  };
  while (unit > 1 && !fits(unit)) unit /= 2;
  if (unit < 4) return cudaErrorNotSupported;  // narrow rows: the pitched copies
  RowParts p;
  p.n = n;
  int64_t at = 0;
  for (int k = 0; k < n; ++k) {
    p.ptr[k] = static_cast<char*>(parts[k]);
    p.begin[k] = at / unit;
    at += widths[k];
  }
  p.begin[n] = at / unit;
  const int64_t row_units = row_bytes / unit, total = row_units * rows;
  if (total == 0) return cudaSuccess;
  char* w = static_cast<char*>(whole);
  if (split) {
    if (unit == 16) launch_row_parts<uint4, true>(w, row_units, total, p, stream);
    else if (unit == 8) launch_row_parts<uint2, true>(w, row_units, total, p, stream);
    else launch_row_parts<uint32_t, true>(w, row_units, total, p, stream);
  } else {
    if (unit == 16) launch_row_parts<uint4, false>(w, row_units, total, p, stream);
    else if (unit == 8) launch_row_parts<uint2, false>(w, row_units, total, p, stream);
    else launch_row_parts<uint32_t, false>(w, row_units, total, p, stream);
  }
  return cudaGetLastError();
}

cudaError_t copy_2d(void* dst, int64_t dst_pitch, const void* src, int64_t src_pitch, int64_t width, int64_t rows,
                    cudaStream_t stream) {
  if (width == 0 || rows == 0) return cudaSuccess;
  if ((dst_pitch == width && src_pitch == width) || rows == 1)
    return cudaMemcpyAsync(dst, src, static_cast<size_t>(width * rows), cudaMemcpyDeviceToDevice, stream);
  int64_t unit = 16;
  while (unit > 1 && (width % unit || dst_pitch % unit || src_pitch % unit || !aligned(dst, unit) || !aligned(src, unit)))
    unit /= 2;
  const int64_t w = width / unit, total = w * rows;
  char* d = static_cast<char*>(dst);
  const char* s = static_cast<const char*>(src);
  switch (unit) {
    case 16: launch_copy_2d<uint4>(d, dst_pitch, s, src_pitch, w, total, stream); break;
    case 8: launch_copy_2d<uint2>(d, dst_pitch, s, src_pitch, w, total, stream); break;
    case 4: launch_copy_2d<uint32_t>(d, dst_pitch, s, src_pitch, w, total, stream); break;
    case 2: launch_copy_2d<uint16_t>(d, dst_pitch, s, src_pitch, w, total, stream); break;
    default: launch_copy_2d<uint8_t>(d, dst_pitch, s, src_pitch, w, total, stream); break;
  }
  return cudaGetLastError();
}

cudaError_t strided_copy(size_t elem_size, const void* x, void* y, const StridedParams& p, cudaStream_t stream) {
  switch (elem_size) {
    case 1: return strided_as<uint8_t>(x, y, p, stream);
    case 2: return strided_as<uint16_t>(x, y, p, stream);
    case 4: return strided_as<uint32_t>(x, y, p, stream);
    case 8: return strided_as<uint64_t>(x, y, p, stream);
    case 16: return strided_as<uint4>(x, y, p, stream);
    default: return cudaErrorInvalidValue;
  }
}

namespace {

// x (batch, planes, size) -> y (batch, size, planes) for a few planes (an image's 3 channels to
// NHWC): a block reads kInterleaveItems positions of every plane (coalesced), interleaves them in
// shared memory, and writes the planes * kInterleaveItems elements out contiguously.
constexpr int kInterleaveItems = 1024;
constexpr int kInterleaveThreads = 256;

template <typename T>
__global__ void interleave_planes_kernel(const T* __restrict__ x, T* __restrict__ y, int64_t planes, int64_t size,
                                         int64_t total) {
  extern __shared__ int4 interleave_smem[];
  T* tile = reinterpret_cast<T*>(interleave_smem);
  const int64_t first = static_cast<int64_t>(blockIdx.x) * kInterleaveItems;
  const int count = static_cast<int>(total - first < kInterleaveItems ? total - first : kInterleaveItems);
  for (int i = threadIdx.x; i < count; i += kInterleaveThreads) {
    const int64_t g = first + i, b = g / size, p = g - b * size;
    const T* src = x + b * planes * size + p;
    for (int64_t c = 0; c < planes; ++c) tile[i * planes + c] = src[c * size];
  }
  __syncthreads();
  T* dst = y + first * planes;
  for (int64_t j = threadIdx.x; j < count * planes; j += kInterleaveThreads) dst[j] = tile[j];
}

template <typename T>
cudaError_t interleave_as(const void* x, void* y, int64_t batch, int64_t planes, int64_t size, cudaStream_t stream) {
  const int64_t total = batch * size;
  const int64_t blocks = (total + kInterleaveItems - 1) / kInterleaveItems;
  if (total == 0) return cudaSuccess;
  if (blocks > INT32_MAX) return cudaErrorInvalidValue;
  const size_t smem = static_cast<size_t>(kInterleaveItems * planes) * sizeof(T);
  interleave_planes_kernel<T><<<static_cast<unsigned>(blocks), kInterleaveThreads, smem, stream>>>(
      static_cast<const T*>(x), static_cast<T*>(y), planes, size, total);
  return cudaGetLastError();
}

}  // namespace

cudaError_t interleave_planes(size_t elem_size, const void* x, void* y, int64_t batch, int64_t planes, int64_t size,
                              cudaStream_t stream) {
  if (planes < 1 || planes > kMaxInterleavePlanes) return cudaErrorInvalidValue;
  switch (elem_size) {
    case 1: return interleave_as<uint8_t>(x, y, batch, planes, size, stream);
    case 2: return interleave_as<uint16_t>(x, y, batch, planes, size, stream);
    case 4: return interleave_as<uint32_t>(x, y, batch, planes, size, stream);
    case 8: return interleave_as<uint64_t>(x, y, batch, planes, size, stream);
    default: return cudaErrorInvalidValue;
  }
}

cudaError_t batched_transpose(size_t elem_size, const void* x, void* y, int64_t batch, int64_t rows, int64_t cols,
                              cudaStream_t stream) {
  switch (elem_size) {
    case 1: return transpose_as<uint8_t>(x, y, batch, rows, cols, stream);
    case 2: return transpose_as<uint16_t>(x, y, batch, rows, cols, stream);
    case 4: return transpose_as<uint32_t>(x, y, batch, rows, cols, stream);
    case 8: return transpose_as<uint64_t>(x, y, batch, rows, cols, stream);
    default: return cudaErrorInvalidValue;
  }
}

}  // namespace kiln::cuda::kernels
