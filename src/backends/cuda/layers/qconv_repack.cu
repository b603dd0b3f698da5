// Repacked X for the small-channel int8 convolutions (an RGB 7x7 stem) that the implicit-GEMM tiles
// cannot read as they are (qconv.cpp): a 2x2 (s x s) space-to-depth copy (tactics "s2d_igemm*"),
// and rows of whole windows (tactics "im2col_igemm*").
//
// Space-to-depth: y (n, hs, ws, cs)[img, Y, X, (sy * s + sx) * c + ci] = x[img, Y*s + sy - pad_h,
// X*s + sx - pad_w, ci] (zero outside x and past s*s*c), so that a k x k stride-s convolution of x
// is a ceil(k/s)-square stride-1 unpadded one of y with rearranged weights; one thread per 16
// bytes of y, each byte's (sy, sx, ci) from a table in shared memory.
//
// Rows: each output pixel's window of
// NHWC X gathered into one row of kp bytes, the weights' (ky, kx, c) order with no per-tap
// channel padding (147 bytes for 7x7x3, zeros up to kp = 192), so that the implicit-GEMM tiles
// run the convolution as a 1x1 one over the rows (qconv.cpp, tactics "im2col_igemm*").
//
// A block makes the rows of `run` consecutive output pixels of one output row: it copies the kh
// input row segments they read into shared memory (zeros outside X), then each warp writes whole
// rows as 4-byte words, every byte read from that tile at an offset the lane computes once (window
// row ky's kw * c bytes for pixel r start at ky's segment + r * stride_w * c). Integer divisions
// per byte, or byte copies from global memory into per-row buffers, made the gather of ResNet-50
// batch 256's stem 0.8 ms; the rows' 616 MB take ~0.2 ms to write.
#include "backends/cuda/layers/device_types.cuh"
#include "backends/cuda/layers/qdq_kernels.hpp"

namespace kiln::cuda::kernels {
namespace {

constexpr int kThreads = 256;
constexpr int kMaxRun = 64;                  // output pixels per block, at most
constexpr size_t kMaxTileBytes = 40u << 10;  // the input segments' shared memory, at most

struct Im2colLaunch {
  int run = 0;            // output pixels per block
  int runs_per_row = 0;   // blocks per output row
  int span = 0;           // input columns a block reads: (run - 1) * stride_w + kw
  size_t tile_bytes = 0;  // kh * span * c, rounded up to 4
};

// Words of a row one lane writes, at most (kp <= kIm2colMaxDepth bytes, 32 lanes, 4 bytes a word).
constexpr int kWordsPerLane = kIm2colMaxDepth / 128;
constexpr int kItemsPerBlock = 8;  // work items (output row runs) a block makes, in turn
constexpr int kRowsAtOnce = 8;     // window rows whose input bytes a thread loads at once

// One work item: the rows of `run` pixels of one output row (img, oy).
__device__ __forceinline__ void im2col_item(const int8_t* __restrict__ x, int8_t* __restrict__ rows, const Im2colRows& g,
                                            const Im2colLaunch& l, int64_t item, int8_t* tile,
                                            const int (&offset)[kWordsPerLane][4], int words, int warp, int lane,
                                            int seg) {
  const int64_t row_id = item / l.runs_per_row;  // (img, oy)
  const int oy = static_cast<int>(row_id % g.oh);
  const int64_t img = row_id / g.oh;
  const int ox0 = static_cast<int>(item % l.runs_per_row) * l.run;
  const int count = min(l.run, g.ow - ox0);
  __syncthreads();  // the previous item's rows are read
  // The segments: byte j of window row ky's segment is X's (iy0 + ky, ix0 + j / c, j % c), zero
  // outside X (columns: bytes lo..hi-1 lie inside). A thread loads the bytes of kRowsAtOnce window
  // rows before storing any, so that their loads are in flight together; no integer division per
  // byte (the kernel was instruction-bound on them).
  const int ix0 = ox0 * g.stride_w - g.pad_w, iy0 = oy * g.stride_h - g.pad_h;
  const int lo = max(0, -ix0) * g.c, hi = min(seg, (g.w - ix0) * g.c);
  const int64_t pitch = static_cast<int64_t>(g.w) * g.c;
  const int8_t* base = x + img * g.h * pitch + static_cast<int64_t>(ix0) * g.c;
  for (int ky0 = 0; ky0 < g.kh; ky0 += kRowsAtOnce)
    for (int j = threadIdx.x; j < seg; j += kThreads) {
      const bool column = j >= lo && j < hi;
      int8_t v[kRowsAtOnce];
#pragma unroll
      for (int u = 0; u < kRowsAtOnce; ++u) {
        const int iy = iy0 + ky0 + u;
        v[u] = column && ky0 + u < g.kh && iy >= 0 && iy < g.h ? base[iy * pitch + j] : int8_t{0};
      }
#pragma unroll
      for (int u = 0; u < kRowsAtOnce; ++u)
        if (ky0 + u < g.kh) tile[(ky0 + u) * seg + j] = v[u];
    }
  __syncthreads();
  const int step = g.stride_w * g.c;
  int* out = reinterpret_cast<int*>(rows + ((img * g.oh + oy) * g.ow + ox0) * static_cast<int64_t>(g.kp));
  for (int r = warp; r < count; r += kThreads / 32) {
    const int8_t* src = tile + r * step;
#pragma unroll
    for (int i = 0; i < kWordsPerLane; ++i) {
      const int wd = lane + 32 * i;
      if (wd >= words) break;
      uint32_t v = 0;
#pragma unroll
      for (int b = 0; b < 4; ++b)
        if (offset[i][b] >= 0) v |= static_cast<uint32_t>(static_cast<uint8_t>(src[offset[i][b]])) << (8 * b);
      out[r * words + wd] = static_cast<int>(v);
    }
  }
}

__global__ void im2col_rows_kernel(const int8_t* __restrict__ x, int8_t* __restrict__ rows, Im2colRows g,
                                   Im2colLaunch l, int64_t items) {
  extern __shared__ int smem_words[];
  auto* tile = reinterpret_cast<int8_t*>(smem_words);
  const int seg = l.span * g.c;  // one input row segment's bytes
  // The tile offsets of this lane's bytes (the same words in every row): window row ky's bytes
  // for pixel 0 start at ky * seg; -1 past the window.
  const int words = g.kp / 4;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int window_row = g.kw * g.c;
  int offset[kWordsPerLane][4];
#pragma unroll
  for (int i = 0; i < kWordsPerLane; ++i)
#pragma unroll
    for (int b = 0; b < 4; ++b) {
      const int k = (lane + 32 * i) * 4 + b, ky = k / window_row;
      offset[i][b] = ky < g.kh ? ky * seg + (k - ky * window_row) : -1;
    }
  const int64_t last = min(items, (static_cast<int64_t>(blockIdx.x) + 1) * kItemsPerBlock);
  for (int64_t item = static_cast<int64_t>(blockIdx.x) * kItemsPerBlock; item < last; ++item)
    im2col_item(x, rows, g, l, item, tile, offset, words, warp, lane, seg);
}

__global__ void space_to_depth_kernel(const int8_t* __restrict__ x, int8_t* __restrict__ y, SpaceToDepth p,
                                      int64_t total) {
  __shared__ int table[kMaxDepthChannels];  // channel -> (sy * 256 + sx) * 256 + ci, or -1
  for (int ch = threadIdx.x; ch < p.cs; ch += blockDim.x) {
    const int q = ch / p.c, ci = ch - q * p.c, sy = q / p.s, sx = q - sy * p.s;
    table[ch] = q < p.s * p.s ? (sy * 256 + sx) * 256 + ci : -1;
  }
  __syncthreads();
  const int chunks = p.cs / 16;
  for (int64_t g = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; g < total;
       g += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int chunk = static_cast<int>(g % chunks);
    const int64_t pixel = g / chunks;
    const int xs = static_cast<int>(pixel % p.ws);
    const int64_t rest = pixel / p.ws;
    const int ys = static_cast<int>(rest % p.hs);
    const int64_t img = rest / p.hs;
    const int iy0 = ys * p.s - p.pad_h, ix0 = xs * p.s - p.pad_w;
    const int8_t* image = x + img * p.h * p.w * p.c;
    uint32_t words[4];
#pragma unroll
    for (int wd = 0; wd < 4; ++wd) {
      uint32_t v = 0;
#pragma unroll
      for (int b = 0; b < 4; ++b) {
        const int e = table[chunk * 16 + wd * 4 + b];
        if (e < 0) continue;
        const int iy = iy0 + (e >> 16), ix = ix0 + ((e >> 8) & 255);
        if (iy < 0 || iy >= p.h || ix < 0 || ix >= p.w) continue;
        const int64_t at = p.x_nchw ? (static_cast<int64_t>(e & 255) * p.h + iy) * p.w + ix
                                    : (static_cast<int64_t>(iy) * p.w + ix) * p.c + (e & 255);
        v |= static_cast<uint32_t>(static_cast<uint8_t>(image[at])) << (8 * b);
      }
      words[wd] = v;
    }
    reinterpret_cast<uint4*>(y)[g] = make_uint4(words[0], words[1], words[2], words[3]);
  }
}

}  // namespace

cudaError_t space_to_depth_int8(const int8_t* x, int8_t* y, const SpaceToDepth& p, cudaStream_t stream) {
  const int64_t total = static_cast<int64_t>(p.n) * p.hs * p.ws * (p.cs / 16);
  if (total == 0) return cudaSuccess;
  if (p.cs % 16 != 0 || p.cs > kMaxDepthChannels || p.s * p.s * p.c > p.cs || p.s < 1 || p.s > 255 ||
      reinterpret_cast<uintptr_t>(y) % 16 != 0)
    return cudaErrorInvalidValue;
  space_to_depth_kernel<<<grid_for(total), 256, 0, stream>>>(x, y, p, total);
  return cudaGetLastError();
}

cudaError_t im2col_rows_int8(const int8_t* x, int8_t* rows, const Im2colRows& g, cudaStream_t stream) {
  const int64_t total = static_cast<int64_t>(g.n) * g.oh * g.ow;
  if (total == 0) return cudaSuccess;
  if (g.kp % 16 != 0 || g.kp < g.kh * g.kw * g.c || g.kp > kIm2colMaxDepth ||
      reinterpret_cast<uintptr_t>(rows) % 16 != 0)
    return cudaErrorInvalidValue;
  Im2colLaunch l;
  // Equal runs per output row, as long as their input segments fit the shared memory.
  for (int blocks = (g.ow + kMaxRun - 1) / kMaxRun;; ++blocks) {
    l.run = (g.ow + blocks - 1) / blocks;
    l.span = (l.run - 1) * g.stride_w + g.kw;
    l.tile_bytes = (static_cast<size_t>(g.kh) * l.span * g.c + 3) / 4 * 4;
    if (l.tile_bytes <= kMaxTileBytes) break;
    if (l.run == 1) return cudaErrorInvalidValue;
  }
  l.runs_per_row = (g.ow + l.run - 1) / l.run;
  const int64_t items = static_cast<int64_t>(g.n) * g.oh * l.runs_per_row;
  const int64_t blocks = (items + kItemsPerBlock - 1) / kItemsPerBlock;
  if (blocks > INT32_MAX) return cudaErrorInvalidValue;
  const size_t smem = l.tile_bytes;
  im2col_rows_kernel<<<static_cast<unsigned>(blocks), kThreads, smem, stream>>>(x, rows, g, l, items);
  return cudaGetLastError();
}

}  // namespace kiln::cuda::kernels
