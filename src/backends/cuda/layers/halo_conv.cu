// The Hopper halo-tile 3x3 convolution (halo_conv_kernels.hpp), sm_90a: float16 NHWC, stride 1,
// pads 1, 64 output channels.
//
// With 64 output channels an implicit GEMM of pixels x channels runs wgmma at N = 64, where both
// operands stream from shared memory at 4 KiB per m64n64k16: half the tensor cores' rate
// (cuDNN's engines ran UNet's 64-channel 512x512 layers at 390-470 TFLOP/s of the H200's 989).
// Here the product is transposed, Y^T = W x X^T: M = the 64 output channels (the weights, A),
// N = 128 pixels (the activations, B), so each m64n128k16 reads 6 KiB for twice the work.
// And each tile's input is loaded once, with its one-pixel halo, letting wgmma read each tap's
// window as a shifted view of it:
//  - a halo tile (18 x 10 pixels for 16 x 8 outputs) is stored per 8-channel plane, each pixel's
//    8 channels in 16 bytes, pixels in row-major order. wgmma's non-swizzled K-major operand is
//    built of "core matrices" of 8 rows x 16 bytes at a constant stride (SBO) along M or N and
//    another (LBO) along K: 8 consecutive pixels of a halo row are one core matrix, the next
//    output row's 8 pixels start one halo row (10 pixels, 160 bytes) later, the next 8 channels
//    one plane later. Tap (dy, dx) is the same descriptor started dy rows and dx pixels in;
//  - the weights stay in shared memory for the kernel's life (a persistent grid, one CTA an SM):
//    per tap and 8-channel plane, 64 output channels x 16 bytes, one core matrix per 8 outputs;
//  - two warpgroups take the CTA's tiles in turn (ping-pong), each with its own two halo stages
//    (cp.async, zero-filled outside the image, two tiles ahead): one multiplies (16 output rows x
//    8 columns as n128 by the 64 channels as m64, float accumulation) while the other writes its
//    last tile. The epilogue adds the bias, rounds to float16 and stores the tile transposed to
//    pixels x channels (stmatrix) into the halo stage it just read, then adds Z, applies ReLU and
//    writes 16 bytes a thread.
// On an H200 (UNet's 64-channel 512x512 layer, 19.3 GFLOP) this takes 53 us against 44.5 for
// cuDNN's best engine, so the builder does not pick it there. Without its loads and stores the
// kernel's products alone take 35 us (545 TFLOP/s), the same with the weights in registers or
// with 128-byte-aligned operands: the product chain, not shared-memory bandwidth, bounds it.
#include <cuda_fp16.h>

#include <algorithm>

#include "backends/cuda/layers/cp_async.cuh"
#include "backends/cuda/layers/halo_conv_kernels.hpp"
#include "backends/cuda/layers/wgmma.cuh"

namespace kiln::cuda::kernels {
namespace {

// Each warpgroup owns its tiles: 16 output rows x 8 columns (n128) by the 64 channels (m64).
constexpr int kRows = 16, kCols = 8;
constexpr int kHaloCols = kCols + 2, kHaloPix = (kRows + 2) * kHaloCols;
// One 8-channel plane of a halo tile, in bytes: 16 bytes a pixel, padded by 16 so that the 8 planes
// of one pixel (written by 8 neighbouring threads) start in different banks.
constexpr int kPlane = kHaloPix * 16 + 16;
constexpr int kHaloStage = 8 * kPlane;  // a tile's 64 input channels
constexpr int kM = kHaloConvOutChannels;
constexpr int kWBytes = 9 * 8 * kM * 16;  // the weights of 64 input channels
constexpr int kThreads = 256;
constexpr int kOutStride = kM + 8;  // halves per pixel of the epilogue's tile (padded: no bank conflicts)
static_assert(kRows * kCols * kOutStride * 2 <= kHaloStage, "the epilogue reuses its tile's halo stage");

// The weights, then two halo stages per warpgroup.
size_t smem_bytes() { return static_cast<size_t>(kWBytes) + 4 * kHaloStage; }

// Named barriers: 1 + wg syncs warpgroup wg's 128 threads; 3 + wg is warpgroup wg's turn at the
// tensor cores, which the other warpgroup hands it (arrive) once it has issued its products.
__device__ __forceinline__ void wg_sync(int wg) { asm volatile("bar.sync %0, 128;\n" ::"r"(1 + wg) : "memory"); }
__device__ __forceinline__ void turn_wait(int wg) { asm volatile("bar.sync %0, 256;\n" ::"r"(3 + wg) : "memory"); }
__device__ __forceinline__ void turn_hand(int to) { asm volatile("bar.arrive %0, 256;\n" ::"r"(3 + to) : "memory"); }

// Four 8x8 float16 matrices, transposed, to the rows whose addresses lanes 8j..8j+7 give (matrix j).
__device__ __forceinline__ void stmatrix_x4_trans(uint32_t addr, uint32_t r0, uint32_t r1, uint32_t r2, uint32_t r3) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  asm volatile("stmatrix.sync.aligned.m8n8.x4.trans.shared.b16 [%0], {%1, %2, %3, %4};\n" ::"r"(addr), "r"(r0),
               "r"(r1), "r"(r2), "r"(r3)
               : "memory");
#else  // built for other GPUs too (release builds): never launched there (sm90a.hpp)
  __trap();
#endif
}

__device__ __forceinline__ uint32_t pack_half2(float a, float b) {
  __half2 h = __floats2half2_rn(a, b);
  return *reinterpret_cast<uint32_t*>(&h);
}

struct TileOrigin {
  int n, y0, x0;
};

__device__ __forceinline__ TileOrigin tile_origin(int64_t tile, int tiles_x, int tiles_y) {
  const int tx = static_cast<int>(tile % tiles_x);
  const int64_t rest = tile / tiles_x;
  return {static_cast<int>(rest / tiles_y), static_cast<int>(rest % tiles_y) * kRows, tx * kCols};
}

// A tile's halo into a stage (zeros outside the image), by the 128 threads of one warpgroup:
// neighbouring threads copy one pixel's 8 planes (128 contiguous bytes of X).
__device__ __forceinline__ void load_halo(const __half* x, const HaloConvParams& p, TileOrigin o, uint32_t stage,
                                          int t) {
  for (int i = t; i < kHaloPix * 8; i += 128) {
    const int pix = i >> 3, plane = i & 7;
    const int hy = pix / kHaloCols, hx = pix - hy * kHaloCols;
    const int gy = o.y0 - 1 + hy, gx = o.x0 - 1 + hx;
    const bool inside = gy >= 0 && gy < p.h && gx >= 0 && gx < p.w;
    const __half* src = inside ? x + ((static_cast<int64_t>(o.n) * p.h + gy) * p.w + gx) * p.c + plane * 8 : x;
    cp_async16(stage + plane * kPlane + pix * 16, src, inside ? 16 : 0);
  }
}

// A persistent CTA per SM; its k-th tile is blockIdx.x + k * gridDim.x, and warpgroup k % 2 runs
// it: loads its halo two tiles ahead into its own two stages, issues its products when the other
// warpgroup hands over the tensor cores, hands them back and writes its outputs while the other
// multiplies.
__global__ void __launch_bounds__(kThreads, 1)
    halo_conv_kernel(const __half* __restrict__ x, const __half* __restrict__ w, const __half* __restrict__ bias,
                     const __half* __restrict__ z, __half* __restrict__ y, HaloConvParams p, int tiles_x, int tiles_y,
                     int64_t tiles) {
  extern __shared__ __align__(128) unsigned char smem[];
  const int tid = threadIdx.x, wg = tid / 128, t = tid % 128, warp = t / 32, lane = tid % 32;
  const uint32_t w_base = smem_u32(smem), halo_base = w_base + kWBytes + wg * 2 * kHaloStage;
  const int64_t count = tiles > blockIdx.x ? (tiles - blockIdx.x + gridDim.x - 1) / gridDim.x : 0;

  // The weights (64, 3, 3, 64): per tap and plane, 64 outputs x 16 bytes.
  for (int i = tid; i < kM * 9 * 8; i += kThreads) {
    const int m = i / 72, r = i - m * 72, tap = r / 8, q = r % 8;
    cp_async16(w_base + ((tap * 8 + q) * kM + m) * 16, w + (static_cast<int64_t>(m) * 9 + tap) * 64 + q * 8, 16);
  }
  cp_async_commit();
  if (wg < count) load_halo(x, p, tile_origin(blockIdx.x + wg * static_cast<int64_t>(gridDim.x), tiles_x, tiles_y),
                            halo_base, t);
  cp_async_commit();
  cp_async_wait<1>();  // the weights, for this thread's copies
  __syncthreads();

  // This thread's accumulator rows are output channels c_lo and c_lo + 8.
  const int c_lo = 16 * warp + lane / 4;
  const float bias_lo = bias ? __half2float(bias[c_lo]) : 0.f, bias_hi = bias ? __half2float(bias[c_lo + 8]) : 0.f;
  float acc[64];
  int stage = 0;
  for (int64_t k = wg; k < count; k += 2, stage ^= 1) {
    const TileOrigin o = tile_origin(blockIdx.x + k * gridDim.x, tiles_x, tiles_y);
    // The other stage held tile k - 2, whose epilogue this warpgroup finished.
    if (k + 2 < count)
      load_halo(x, p, tile_origin(blockIdx.x + (k + 2) * gridDim.x, tiles_x, tiles_y),
                halo_base + (stage ^ 1) * kHaloStage, t);
    cp_async_commit();
    cp_async_wait<1>();  // tile k's halo, for this thread's copies
    wgmma::fence_async_shared();
    wg_sync(wg);

    if (k > 0) turn_wait(wg);
    const uint32_t b0 = halo_base + stage * kHaloStage;
    wgmma::fence();
#pragma unroll
    for (int tap = 0; tap < 9; ++tap) {
      const int dy = tap / 3, dx = tap % 3;
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        const uint64_t a = wgmma::desc_plain(w_base + (tap * 8 + 2 * j) * kM * 16, kM * 16, 128);
        const uint64_t b = wgmma::desc_plain(b0 + 2 * j * kPlane + (dy * kHaloCols + dx) * 16, kPlane, kHaloCols * 16);
        wgmma::wgmma_m64n128k16_f16(acc, a, b, (tap | j) != 0);
      }
    }
    wgmma::commit();
    // Issued: the other warpgroup's products may queue behind these.
    if (k + 1 < count) turn_hand(wg ^ 1);
    wgmma::wait<0>();
#pragma unroll
    for (int i = 0; i < 64; ++i) wgmma::fence_operand(acc[i]);

    // Accumulators + bias, as float16, into the stage just read, as pixels x channels: column
    // 8i + 2*(lane%4) + e%2 is pixel 8i + ... of the tile, row c_lo + 8*(e/2) its channel. Each
    // stmatrix.trans stores columns i and i+1 for both row halves; lane l gives the address of
    // pixel 8(i + l/16) + l%8, channels 16*warp + 8*((l/8)%2).
    __half* out_s = reinterpret_cast<__half*>(smem + (b0 - w_base));
    {
      const int pix_in = lane % 8 + 8 * (lane / 16), ch = 16 * warp + 8 * ((lane / 8) % 2);
#pragma unroll
      for (int i = 0; i < 16; i += 2)
        stmatrix_x4_trans(smem_u32(out_s + (8 * i + pix_in) * kOutStride + ch),
                          pack_half2(acc[4 * i] + bias_lo, acc[4 * i + 1] + bias_lo),
                          pack_half2(acc[4 * i + 2] + bias_hi, acc[4 * i + 3] + bias_hi),
                          pack_half2(acc[4 * i + 4] + bias_lo, acc[4 * i + 5] + bias_lo),
                          pack_half2(acc[4 * i + 6] + bias_hi, acc[4 * i + 7] + bias_hi));
    }
    wg_sync(wg);
    // Z and ReLU, 8 channels (16 bytes) a thread per step, whole pixels per 8 threads.
#pragma unroll 4
    for (int item = t; item < kRows * kCols * (kM / 8); item += 128) {
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
        for (int q = 0; q < 4; ++q) {
          const float2 a = __half22float2(h[q]), b = __half22float2(zh[q]);
          h[q] = __floats2half2_rn(a.x + b.x, a.y + b.y);
        }
      }
      if (p.relu)
#pragma unroll
        for (int q = 0; q < 4; ++q) h[q] = __hmax2_nan(h[q], __float2half2_rn(0.f));  // NaN stays NaN
      *reinterpret_cast<uint4*>(y + off) = v;
    }
    wg_sync(wg);  // the stage's readers done before the next tile's load refills it
  }
}

}  // namespace

cudaError_t halo_conv_setup(const HaloConvParams& p, HaloConvLaunch* launch) {
  if (p.c != kHaloConvMaxChannels || p.n < 1 || p.h < 1 || p.w < 1)
    return cudaErrorInvalidValue;
  HaloConvLaunch l;
  l.tiles_x = (p.w + kCols - 1) / kCols;
  l.tiles_y = (p.h + kRows - 1) / kRows;
  l.tiles = static_cast<int64_t>(p.n) * l.tiles_x * l.tiles_y;
  l.smem = smem_bytes();
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
