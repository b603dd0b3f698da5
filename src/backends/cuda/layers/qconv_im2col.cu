// The rows of a small-channel int8 convolution (an RGB 7x7 stem): each output pixel's window of
// NHWC X gathered into one row of kp bytes, the weights' (ky, kx, c) order with no per-tap
// channel padding (147 bytes for 7x7x3, zeros up to kp = 192), so that the implicit-GEMM tiles
// run the convolution as a 1x1 one over the rows (qconv.cpp, tactics "im2col_igemm*").
// A block gathers 64 rows into shared memory byte by byte (one task per pixel and window row:
// kw * c contiguous bytes of X) and writes them out with 16-byte stores.
#include "backends/cuda/layers/device_types.cuh"
#include "backends/cuda/layers/qdq_kernels.hpp"

namespace kiln::cuda::kernels {
namespace {

constexpr int kRowsPerBlock = 64;
constexpr int kThreads = 256;

__global__ void im2col_rows_kernel(const int8_t* __restrict__ x, int8_t* __restrict__ rows, Im2colRows g,
                                   int64_t total) {
  extern __shared__ int4 smem_vec[];
  auto* tile = reinterpret_cast<int8_t*>(smem_vec);
  const int64_t first = static_cast<int64_t>(blockIdx.x) * kRowsPerBlock;
  const int count = static_cast<int>(total - first < kRowsPerBlock ? total - first : kRowsPerBlock);
  const int span = g.kw * g.c;  // one window row's bytes
  const int depth = g.kh * span;
  // The zero tail of every row (columns depth..kp-1).
  const int tail = g.kp - depth;
  for (int i = threadIdx.x; i < count * tail; i += kThreads) tile[(i / tail) * g.kp + depth + i % tail] = 0;
  for (int t = threadIdx.x; t < count * g.kh; t += kThreads) {
    const int r = t % count, ky = t / count;
    const int64_t pixel = first + r;
    const int ox = static_cast<int>(pixel % g.ow);
    const int64_t rest = pixel / g.ow;
    const int oy = static_cast<int>(rest % g.oh);
    const int64_t img = rest / g.oh;
    const int iy = oy * g.stride_h - g.pad_h + ky;
    int8_t* dst = tile + r * g.kp + ky * span;
    if (iy < 0 || iy >= g.h) {
      for (int i = 0; i < span; ++i) dst[i] = 0;
      continue;
    }
    const int ix0 = ox * g.stride_w - g.pad_w;
    const int8_t* src = x + ((img * g.h + iy) * g.w + ix0) * g.c;
    if (ix0 >= 0 && ix0 + g.kw <= g.w) {
      for (int i = 0; i < span; ++i) dst[i] = src[i];
    } else {
      for (int kx = 0; kx < g.kw; ++kx) {
        const bool inside = ix0 + kx >= 0 && ix0 + kx < g.w;
        for (int ci = 0; ci < g.c; ++ci) dst[kx * g.c + ci] = inside ? src[kx * g.c + ci] : int8_t{0};
      }
    }
  }
  __syncthreads();
  const int vecs = count * g.kp / 16;
  int4* out = reinterpret_cast<int4*>(rows + first * g.kp);
  for (int i = threadIdx.x; i < vecs; i += kThreads) out[i] = smem_vec[i];
}

}  // namespace

cudaError_t im2col_rows_int8(const int8_t* x, int8_t* rows, const Im2colRows& g, cudaStream_t stream) {
  const int64_t total = static_cast<int64_t>(g.n) * g.oh * g.ow;
  if (total == 0) return cudaSuccess;
  if (g.kp % 16 != 0 || g.kp < g.kh * g.kw * g.c || g.kp > kIm2colMaxDepth ||
      reinterpret_cast<uintptr_t>(rows) % 16 != 0)
    return cudaErrorInvalidValue;
  const int64_t blocks = (total + kRowsPerBlock - 1) / kRowsPerBlock;
  if (blocks > INT32_MAX) return cudaErrorInvalidValue;
  const size_t smem = static_cast<size_t>(kRowsPerBlock) * g.kp;
  im2col_rows_kernel<<<static_cast<unsigned>(blocks), kThreads, smem, stream>>>(x, rows, g, total);
  return cudaGetLastError();
}

}  // namespace kiln::cuda::kernels
