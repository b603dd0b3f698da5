// The Hopper halo-tile 3x3 convolution (halo_conv_kernels.hpp), sm_90a: float16 NHWC, stride 1,
// pads 1, 64 output channels.
//
// With 64 output channels an implicit GEMM of pixels x channels runs wgmma at N = 64, where both
// operands stream from shared memory at 4 KiB per m64n64k16: half the tensor cores' rate
// (cuDNN's engines ran UNet's 64-channel 512x512 layers at 390-470 TFLOP/s of the H200's 989).
// Here the product is transposed, Y^T = W x X^T: M = the 64 output channels (the weights, A),
// N = 128 pixels (the activations, B), so each m64n128k16 reads 6 KiB for twice the work.
// And a CTA loads its output tile's input once, with its one-pixel halo, letting wgmma read each
// tap's window as a shifted view of it:
//  - the halo tile (34 x 10 pixels for 32 x 8 outputs) is stored per 8-channel plane, each pixel's
//    8 channels in 16 bytes, pixels in row-major order. wgmma's non-swizzled K-major operand is
//    built of "core matrices" of 8 rows x 16 bytes at a constant stride (SBO) along M or N and
//    another (LBO) along K: 8 consecutive pixels of a halo row are one core matrix, the next
//    output row's 8 pixels start one halo row (10 pixels, 160 bytes) later, the next 8 channels
//    one plane later. Tap (dy, dx) is the same descriptor started dy rows and dx pixels in;
//  - the weights stay in shared memory for the kernel's life (a persistent grid, one CTA an SM):
//    per tap and 8-channel plane, 64 output channels x 16 bytes, one core matrix per 8 outputs;
//  - two warpgroups, each 16 output rows x 8 columns (n128) by the 64 channels (m64), float
//    accumulation; the next tile's halo is loaded (cp.async, zero-filled outside the image) while
//    this one multiplies. The epilogue adds the bias, rounds to float16 into a shared tile of
//    pixels x channels, then adds Z, applies ReLU and stores 16 bytes a thread.
#include <cuda_fp16.h>

#include <algorithm>

#include "backends/cuda/layers/halo_conv_kernels.hpp"
#include "backends/cuda/layers/wgmma.cuh"

namespace kiln::cuda::kernels {
namespace {

constexpr int kRows = 32, kCols = 8;  // output tile: two warpgroups of 16 rows x 8 columns
constexpr int kHaloCols = kCols + 2, kHaloPix = (kRows + 2) * kHaloCols;
constexpr int kPlane = kHaloPix * 16;  // one 8-channel plane of the halo tile, in bytes
constexpr int kHaloStage = 8 * kPlane;  // a 64-channel chunk
constexpr int kM = kHaloConvOutChannels;
constexpr int kWChunk = 9 * 8 * kM * 16;  // the weights of 64 input channels
constexpr int kThreads = 256;
constexpr int kOutStride = kM + 8;  // halves per pixel row of the output tile (padded: no bank conflicts)
constexpr int kOutBytes = kRows * kCols * kOutStride * 2;

size_t smem_bytes(int c) { return static_cast<size_t>(c / 64) * kWChunk + 2 * kHaloStage + kOutBytes; }

__device__ __forceinline__ uint32_t smem_u32(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

__device__ __forceinline__ void cp_async16(uint32_t dst, const void* src, int src_bytes) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src), "r"(src_bytes) : "memory");
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::: "memory"); }
// Every group but the newest complete.
__device__ __forceinline__ void cp_async_wait_prior() { asm volatile("cp.async.wait_group 1;\n" ::: "memory"); }

struct TileOrigin {
  int n, y0, x0;
};

__device__ __forceinline__ TileOrigin tile_origin(int64_t tile, int tiles_x, int tiles_y) {
  const int tx = static_cast<int>(tile % tiles_x);
  const int64_t rest = tile / tiles_x;
  return {static_cast<int>(rest / tiles_y), static_cast<int>(rest % tiles_y) * kRows, tx * kCols};
}

// The halo of a tile's 64-channel chunk into a stage (zeros outside the image).
__device__ __forceinline__ void load_halo(const __half* x, const HaloConvParams& p, TileOrigin o, int chunk,
                                          uint32_t stage) {
  for (int i = threadIdx.x; i < kHaloPix * 8; i += kThreads) {
    const int pix = i >> 3, plane = i & 7;
    const int hy = pix / kHaloCols, hx = pix - hy * kHaloCols;
    const int gy = o.y0 - 1 + hy, gx = o.x0 - 1 + hx;
    const bool inside = gy >= 0 && gy < p.h && gx >= 0 && gx < p.w;
    const __half* src =
        inside ? x + ((static_cast<int64_t>(o.n) * p.h + gy) * p.w + gx) * p.c + chunk * 64 + plane * 8 : x;
    cp_async16(stage + plane * kPlane + pix * 16, src, inside ? 16 : 0);
  }
}

__global__ void __launch_bounds__(kThreads, 1)
    halo_conv_kernel(const __half* __restrict__ x, const __half* __restrict__ w, const __half* __restrict__ bias,
                     const __half* __restrict__ z, __half* __restrict__ y, HaloConvParams p, int tiles_x, int tiles_y,
                     int64_t tiles) {
  extern __shared__ __align__(128) unsigned char smem[];
  const int chunks = p.c / 64;
  const uint32_t w_base = smem_u32(smem), halo_base = w_base + chunks * kWChunk;
  __half* out_s = reinterpret_cast<__half*>(smem + chunks * kWChunk + 2 * kHaloStage);
  const int tid = threadIdx.x, wg = tid / 128, warp = (tid / 32) % 4, lane = tid % 32;

  // The weights (64, 3, 3, C): per chunk, tap and plane, 64 outputs x 16 bytes.
  const int pieces = p.c / 8;  // 16-byte pieces per (output, tap)
  for (int i = tid; i < kM * 9 * pieces; i += kThreads) {
    const int m = i / (9 * pieces), r = i - m * 9 * pieces, tap = r / pieces, q = r - tap * pieces;
    cp_async16(w_base + (q >> 3) * kWChunk + ((tap * 8 + (q & 7)) * kM + m) * 16,
               w + (static_cast<int64_t>(m) * 9 + tap) * p.c + q * 8, 16);
  }
  cp_async_commit();

  // This thread's accumulator rows are output channels c_lo and c_lo + 8.
  const int c_lo = 16 * warp + lane / 4;
  const float bias_lo = bias ? __half2float(bias[c_lo]) : 0.f, bias_hi = bias ? __half2float(bias[c_lo + 8]) : 0.f;

  int64_t tile = blockIdx.x;
  int chunk = 0, stage = 0;
  TileOrigin o = tile_origin(tile, tiles_x, tiles_y);
  load_halo(x, p, o, 0, halo_base);
  cp_async_commit();
  float acc[64];
  for (int i = 0; i < 64; ++i) acc[i] = 0.f;
  while (true) {
    int64_t next_tile = tile;
    int next_chunk = chunk + 1;
    if (next_chunk == chunks) {
      next_chunk = 0;
      next_tile += gridDim.x;
    }
    const bool more = next_tile < tiles;
    const TileOrigin next = more ? tile_origin(next_tile, tiles_x, tiles_y) : o;
    // The other stage was last read by the previous step, which every thread has finished.
    if (more) load_halo(x, p, next, next_chunk, halo_base + (stage ^ 1) * kHaloStage);
    cp_async_commit();
    cp_async_wait_prior();  // this step's halo (and the weights) landed, for this thread's copies
    wgmma::fence_async_shared();
    __syncthreads();

    const uint32_t b0 = halo_base + stage * kHaloStage + wg * (kRows / 2) * kHaloCols * 16;
    const uint32_t a0 = w_base + chunk * kWChunk;
    wgmma::fence();
#pragma unroll
    for (int tap = 0; tap < 9; ++tap) {
      const int dy = tap / 3, dx = tap % 3;
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        const uint64_t a = wgmma::desc_plain(a0 + (tap * 8 + 2 * j) * kM * 16, kM * 16, 128);
        const uint64_t b = wgmma::desc_plain(b0 + 2 * j * kPlane + (dy * kHaloCols + dx) * 16, kPlane, kHaloCols * 16);
        wgmma::wgmma_m64n128k16_f16(acc, a, b, (chunk | tap | j) != 0);
      }
    }
    wgmma::commit();
    wgmma::wait<0>();
#pragma unroll
    for (int i = 0; i < 64; ++i) wgmma::fence_operand(acc[i]);

    if (chunk == chunks - 1) {
      // Accumulators + bias, as float16, into the shared tile of pixels x channels: column
      // n = 8i + 2*(lane%4) + e%2 of warpgroup wg is pixel wg * 128 + n of the tile.
#pragma unroll
      for (int i = 0; i < 16; ++i)
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const int pix = wg * 128 + 8 * i + 2 * (lane % 4) + (e & 1);
          const int c = c_lo + 8 * (e >> 1);
          out_s[pix * kOutStride + c] = __float2half_rn(acc[4 * i + e] + (e >> 1 ? bias_hi : bias_lo));
        }
      __syncthreads();
      // Z and ReLU, 8 channels (16 bytes) a thread per step, whole pixel rows per warp.
      for (int item = tid; item < kRows * kCols * (kM / 8); item += kThreads) {
        const int pix = item / (kM / 8), g = item % (kM / 8);
        const int oy = o.y0 + pix / kCols, ox = o.x0 + pix % kCols;
        if (oy >= p.h || ox >= p.w) continue;
        uint4 v = *reinterpret_cast<const uint4*>(out_s + pix * kOutStride + 8 * g);
        const int64_t off = ((static_cast<int64_t>(o.n) * p.h + oy) * p.w + ox) * kM + 8 * g;
        __half2* h = reinterpret_cast<__half2*>(&v);
        if (z) {
          const uint4 zv = *reinterpret_cast<const uint4*>(z + off);
          const __half2* zh = reinterpret_cast<const __half2*>(&zv);
#pragma unroll
          for (int k = 0; k < 4; ++k) {
            const float2 a = __half22float2(h[k]), b = __half22float2(zh[k]);
            h[k] = __floats2half2_rn(a.x + b.x, a.y + b.y);
          }
        }
        if (p.relu)
#pragma unroll
          for (int k = 0; k < 4; ++k) h[k] = __hmax2_nan(h[k], __float2half2_rn(0.f));  // NaN stays NaN
        *reinterpret_cast<uint4*>(y + off) = v;
      }
    }
    __syncthreads();  // this stage's and the output tile's readers done before they are refilled
    if (!more) break;
    tile = next_tile;
    chunk = next_chunk;
    o = next;
    stage ^= 1;
  }
}

}  // namespace

cudaError_t halo_conv_setup(const HaloConvParams& p, HaloConvLaunch* launch) {
  if (p.c % 64 != 0 || p.c < 64 || p.c > kHaloConvMaxChannels || p.n < 1 || p.h < 1 || p.w < 1)
    return cudaErrorInvalidValue;
  HaloConvLaunch l;
  l.tiles_x = (p.w + kCols - 1) / kCols;
  l.tiles_y = (p.h + kRows - 1) / kRows;
  l.tiles = static_cast<int64_t>(p.n) * l.tiles_x * l.tiles_y;
  l.smem = smem_bytes(p.c);
  int device = 0, sms = 0;
  cudaError_t e = cudaGetDevice(&device);
  if (e == cudaSuccess) e = cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device);
  if (e == cudaSuccess)
    e = cudaFuncSetAttribute(halo_conv_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(l.smem));
  if (e != cudaSuccess) return e;
  l.grid = static_cast<unsigned>(std::min<int64_t>(l.tiles, sms));
  *launch = l;
  return cudaSuccess;
}

cudaError_t halo_conv(const void* x, const void* w, const void* b, const void* z, void* y, const HaloConvParams& p,
                      const HaloConvLaunch& l, cudaStream_t stream) {
  if (l.grid == 0) return cudaErrorInvalidValue;  // not set up
  halo_conv_kernel<<<l.grid, kThreads, l.smem, stream>>>(
      static_cast<const __half*>(x), static_cast<const __half*>(w), static_cast<const __half*>(b),
      static_cast<const __half*>(z), static_cast<__half*>(y), p, l.tiles_x, l.tiles_y, l.tiles);
  return cudaGetLastError();
}

}  // namespace kiln::cuda::kernels
