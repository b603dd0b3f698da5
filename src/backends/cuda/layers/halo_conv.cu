// The Hopper halo-tile 3x3 convolution (halo_conv_kernels.hpp), sm_90a: float16 NHWC, stride 1,
// pads 1, 64 input and 64 output channels.
//
// With 64 output channels an implicit GEMM of pixels x channels runs wgmma at N = 64, where both
// operands stream from shared memory at 4 KiB per m64n64k16: half the tensor cores' rate
// (cuDNN's engines ran UNet's 64-channel 512x512 layers at 390-470 TFLOP/s of the H200's 989).
// Here the product is transposed, Y^T = W x X^T: M = the 64 output channels (the weights, A),
// N = 128 pixels (the activations, B), and each tile's input is loaded once with its one-pixel
// halo, wgmma reading each tap's window as a shifted view of it:
//  - a tile is 16 output rows x 8 columns; its halo (18 x 10 pixels) comes in by one TMA copy
//    (pixels outside the image arrive as zeros: the padding), each pixel's 64 channels one
//    128-byte row, 128-byte swizzled. wgmma's swizzled K-major operand is 8-row groups of such
//    rows at a constant stride (SBO): 8 consecutive pixels of a halo row are one group, the next
//    output row's group starts one halo row (10 pixels, 1280 bytes) later. Tap (dy, dx) is the
//    same descriptor started dy halo rows and dx pixels in. The hardware swizzles the absolute
//    shared address, as the TMA wrote it, so starts off the 1024-byte pattern need no base
//    offset (checked against a CPU reference on an H200);
//  - the weights (64 x 9 taps x 64 channels, 72 KiB) stay in shared memory for the kernel's life
//    (a persistent grid, one CTA an SM), per tap 64 rows of 128 bytes, swizzled the same way;
//  - two warpgroups take the CTA's tiles in turn (ping-pong), each with two halo stages loaded
//    one and two of its tiles ahead: one multiplies (36 m64n128k16, float accumulation) while
//    the other finishes its last tile. Its epilogue adds the bias (and Z, which a TMA copy brought
//    into the output tile meanwhile), applies ReLU, rounds to float16 and stores the tile
//    transposed to pixels x channels (stmatrix) into a swizzled output tile, which one TMA store
//    writes to Y (clipped at the image's edges).
// On an H200, UNet's 64-channel 512x512 layer (19.3 GFLOP) takes 31 us (620 TFLOP/s) against
// 49 us for cuDNN's best engine timed the same way; ResNet-50's first-stage 3x3 at batch 64
// 26 us against 53.
#include <cuda_fp16.h>

#include <algorithm>

#include "backends/cuda/layers/cp_async.cuh"
#include "backends/cuda/layers/mma_sync.cuh"
#include "backends/cuda/layers/halo_conv_kernels.hpp"
#include "backends/cuda/layers/named_barrier.cuh"
#include "backends/cuda/layers/tensor_map.hpp"
#include "backends/cuda/layers/tma.cuh"
#include "backends/cuda/layers/wgmma.cuh"

namespace kiln::cuda::kernels {
namespace {

constexpr int kRows = 16, kCols = 8;  // a tile: n128 = 16 output rows x 8 columns, by the 64 channels (m64)
constexpr int kHaloCols = kCols + 2, kHaloRows = kRows + 2;
constexpr int kRowBytes = 128;  // one pixel's 64 channels
constexpr int kHaloBytes = kHaloCols * kHaloRows * kRowBytes;
constexpr int kStage = (kHaloBytes + 1023) / 1024 * 1024;  // the swizzle pattern repeats every 1024 bytes
constexpr int kOutTile = kRows * kCols * kRowBytes;
constexpr int kM = kHaloConvOutChannels;
constexpr int kTapBytes = kM * kRowBytes;
constexpr int kWBytes = 9 * kTapBytes;
constexpr int kPerWarpgroup = 2 * kStage + kOutTile;  // two halo stages and the output tile
constexpr int kBarrierOffset = kWBytes + 2 * kPerWarpgroup;
constexpr int kThreads = 256;
// Barriers: the weights', then per warpgroup its two stages' and its Z tile's.
constexpr int kBarrierCount = 1 + 2 * 3;
static_assert(kPerWarpgroup % 1024 == 0 && kWBytes % 1024 == 0, "swizzled tiles start on 1024 bytes");

// Shared memory with the slack to align it to 1024 bytes.
size_t smem_bytes() { return static_cast<size_t>(kBarrierOffset) + 8 * kBarrierCount + 1024; }

// Named barriers: 1 + wg syncs warpgroup wg's 128 threads; 3 + wg is warpgroup wg's turn at the
// tensor cores, which the other warpgroup hands it (arrive) once it has issued its products.
__device__ __forceinline__ void wg_sync(int wg) { named_barrier_sync(1 + wg, 128); }
__device__ __forceinline__ void turn_wait(int wg) { named_barrier_sync(3 + wg, 256); }
__device__ __forceinline__ void turn_hand(int to) { named_barrier_arrive(3 + to, 256); }

// Four 8x8 float16 matrices, transposed, to (from) the rows whose addresses lanes 8j..8j+7 give (matrix j).
__device__ __forceinline__ void stmatrix_x4_trans(uint32_t addr, const uint32_t (&r)[4]) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  asm volatile("stmatrix.sync.aligned.m8n8.x4.trans.shared.b16 [%0], {%1, %2, %3, %4};\n" ::"r"(addr), "r"(r[0]),
               "r"(r[1]), "r"(r[2]), "r"(r[3])
               : "memory");
#else  // built for other GPUs too (release builds): never launched there (sm90a.hpp)
  __trap();
#endif
}
__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t addr, uint32_t (&r)[4]) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr)
               : "memory");
#else
  __trap();
#endif
}

__device__ __forceinline__ void ldmatrix_x4(uint32_t addr, uint32_t (&r)[4]) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr)
               : "memory");
}
__device__ __forceinline__ __half2 as_half2(uint32_t v) { return *reinterpret_cast<__half2*>(&v); }
__device__ __forceinline__ uint32_t as_u32(__half2 h) { return *reinterpret_cast<uint32_t*>(&h); }

struct TileOrigin {
  int n, y0, x0;
};

__device__ __forceinline__ TileOrigin tile_origin(int64_t tile, int tiles_x, int tiles_y) {
  const int tx = static_cast<int>(tile % tiles_x);
  const int64_t rest = tile / tiles_x;
  return {static_cast<int>(rest / tiles_y), static_cast<int>(rest % tiles_y) * kRows, tx * kCols};
}

// A persistent CTA per SM; its k-th tile is blockIdx.x + k * gridDim.x, and warpgroup k % 2 runs it.
__global__ void __launch_bounds__(kThreads, 1)
    halo_conv_kernel(const __grid_constant__ CUtensorMap map_x, const __grid_constant__ CUtensorMap map_w,
                     const __grid_constant__ CUtensorMap map_z, const __grid_constant__ CUtensorMap map_y,
                     const __half* __restrict__ bias, bool has_z, bool relu, int tiles_x, int tiles_y,
                     int64_t tiles, int head, const __half* __restrict__ head_w,
                     const __half* __restrict__ head_b, __half* __restrict__ head_y, int img_h, int img_w) {
  extern __shared__ __align__(1024) unsigned char smem_raw[];
  const uint32_t base = (smem_u32(smem_raw) + 1023) & ~1023u;
  const int tid = threadIdx.x, wg = tid / 128, t = tid % 128, warp = t / 32, lane = tid % 32;
  const uint32_t w_base = base, stage0 = base + kWBytes + wg * kPerWarpgroup, out_tile = stage0 + 2 * kStage;
  const uint32_t w_bar = base + kBarrierOffset, full0 = w_bar + 8 * (1 + 3 * wg), z_bar = full0 + 16;
  const int64_t count = tiles > blockIdx.x ? (tiles - blockIdx.x + gridDim.x - 1) / gridDim.x : 0;
  auto load_halo = [&](int64_t k, int s) {  // tile k's halo into stage s (thread t == 0)
    const TileOrigin o = tile_origin(blockIdx.x + k * gridDim.x, tiles_x, tiles_y);
    mbar_expect_tx(full0 + 8 * s, kHaloBytes);
    tma_load_4d(stage0 + s * kStage, &map_x, 0, o.x0 - 1, o.y0 - 1, o.n, full0 + 8 * s);
  };

  // A head's B fragments (HWᵀ: k = channel, n = output g = lane / 4, zero past K) and the bias of
  // this lane's accumulator columns 2 * (lane % 4) (+1).
  uint32_t head_frag[4][2] = {};
  float head_bias[2] = {0.f, 0.f};
  if (head) {
    const int g = lane / 4, k0 = 2 * (lane % 4);
    if (g < head)
#pragma unroll
      for (int kk = 0; kk < 4; ++kk)
#pragma unroll
        for (int r = 0; r < 2; ++r)
          head_frag[kk][r] = *reinterpret_cast<const uint32_t*>(head_w + g * kM + 16 * kk + 8 * r + k0);
    for (int e = 0; e < 2; ++e) head_bias[e] = head_b && k0 + e < head ? __half2float(head_b[k0 + e]) : 0.f;
  }
  if (tid == 0) {
    for (const CUtensorMap* m : {&map_x, &map_w}) tma_prefetch_map(m);
    if (!head) tma_prefetch_map(&map_y);  // left zeroed with a head
    if (has_z) tma_prefetch_map(&map_z);  // left zeroed without Z
    for (int i = 0; i < kBarrierCount; ++i) mbar_init(w_bar + 8 * i, 1);
    mbar_init_fence();
  }
  __syncthreads();
  if (tid == 0) {  // the weights (64, 3, 3, 64) as 9 taps of (64 outputs, 64 channels)
    mbar_expect_tx(w_bar, kWBytes);
    for (int tap = 0; tap < 9; ++tap) tma_load_4d(w_base + tap * kTapBytes, &map_w, 0, tap, 0, 0, w_bar);
  }
  if (t == 0)
    for (int s = 0; s < 2 && wg + 2 * s < count; ++s) load_halo(wg + 2 * s, s);

  // This thread's accumulator rows are output channels c_lo and c_lo + 8; d[4i + e] is column
  // (pixel) 8i + 2*(lane%4) + e%2, row c_lo + 8*(e/2).
  const int c_lo = 16 * warp + lane / 4;
  const float bias_lo = bias ? __half2float(bias[c_lo]) : 0.f, bias_hi = bias ? __half2float(bias[c_lo + 8]) : 0.f;
  // stmatrix/ldmatrix.trans: 4 matrices per call, columns i and i+1 for both row halves; lane l
  // gives the address of pixel 8(i + l/16) + l%8, channels 16*warp + 8*((l/8)%2): 16-byte chunk
  // 2*warp + (l/8)%2 of that pixel's swizzled row (chunk ^ pixel % 8).
  const uint32_t lane_row =
      out_tile + (lane % 8 + 8 * (lane / 16)) * kRowBytes + (((2 * warp + (lane / 8) % 2) ^ (lane % 8)) << 4);
  mbar_wait(w_bar, 0);
  float acc[64];
  int i = 0;  // this warpgroup's tile count
  for (int64_t k = wg; k < count; k += 2, ++i) {
    const int s = i & 1;
    const TileOrigin o = tile_origin(blockIdx.x + k * gridDim.x, tiles_x, tiles_y);
    const uint32_t stage = stage0 + s * kStage;
    if (t == 0) {
      tma_store_wait_read();  // the last tile's store has read the output tile
      if (has_z) {
        mbar_expect_tx(z_bar, kOutTile);
        tma_load_4d(out_tile, &map_z, 0, o.x0, o.y0, o.n, z_bar);
      }
    }
    mbar_wait(full0 + 8 * s, (i >> 1) & 1);
    if (k > 0) turn_wait(wg);
    wgmma::fence();
#pragma unroll
    for (int tap = 0; tap < 9; ++tap) {
      const int dy = tap / 3, dx = tap % 3;
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        const uint64_t a = wgmma::desc_sw128(w_base + tap * kTapBytes + 32 * j, 8 * kRowBytes);
        const uint64_t b =
            wgmma::desc_sw128(stage + (dy * kHaloCols + dx) * kRowBytes + 32 * j, kHaloCols * kRowBytes);
        wgmma::wgmma_m64n128k16_f16(acc, a, b, (tap | j) != 0);
      }
    }
    wgmma::commit();
    if (k + 1 < count) turn_hand(wg ^ 1);  // issued: the other warpgroup's products queue behind
    wgmma::wait<0>();
#pragma unroll
    for (int q = 0; q < 64; ++q) wgmma::fence_operand(acc[q]);
    wg_sync(wg);  // every thread's products have read stage s
    if (t == 0 && k + 4 < count) load_halo(k + 4, s);

    if (has_z) mbar_wait(z_bar, i & 1);
#pragma unroll
    for (int q = 0; q < 16; q += 2) {
      const uint32_t addr = lane_row + q * 8 * kRowBytes;
      __half2 h[4];
      for (int r = 0; r < 4; ++r) {
        const float b = r % 2 ? bias_hi : bias_lo;
        h[r] = __floats2half2_rn(acc[4 * q + 2 * r] + b, acc[4 * q + 2 * r + 1] + b);
      }
      if (has_z) {
        uint32_t zr[4];
        ldmatrix_x4_trans(addr, zr);
        for (int r = 0; r < 4; ++r) {
          const float2 a = __half22float2(h[r]), b = __half22float2(as_half2(zr[r]));
          h[r] = __floats2half2_rn(a.x + b.x, a.y + b.y);
        }
      }
      if (relu)
        for (int r = 0; r < 4; ++r) h[r] = __hmax2_nan(h[r], __float2half2_rn(0.f));  // NaN stays NaN
      const uint32_t out[4] = {as_u32(h[0]), as_u32(h[1]), as_u32(h[2]), as_u32(h[3])};
      stmatrix_x4_trans(addr, out);
    }
    if (head) {
      wg_sync(wg);  // the tile is in shared memory
      // H (128 pixels x K) = tile (128 x 64) . HWᵀ on the tensor cores: warp w takes pixels
      // 32w .. 32w + 31 as two m16n8k16 row blocks, 4 k-steps of 16 channels each. ldmatrix
      // reads the A fragments from the swizzled tile (chunk c of pixel p at c ^ (p % 8)).
#pragma unroll
      for (int blk = 0; blk < 2; ++blk) {
        const int p0 = 32 * warp + 16 * blk;
        float h[4] = {head_bias[0], head_bias[1], head_bias[0], head_bias[1]};
#pragma unroll
        for (int kk = 0; kk < 4; ++kk) {
          const int p = p0 + lane % 8 + 8 * ((lane / 8) % 2), c = 2 * kk + lane / 16;
          uint32_t a[4];
          ldmatrix_x4(out_tile + p * kRowBytes + ((c ^ (p % 8)) << 4), a);
          mma_m16n8k16<__half>(h, a, head_frag[kk]);
        }
        // h[0..1]: pixel p0 + lane / 4, outputs 2 * (lane % 4) (+1); h[2..3]: pixel p0 + 8 + lane / 4.
        const int k0 = 2 * (lane % 4);
        if (k0 < head)
#pragma unroll
          for (int r = 0; r < 2; ++r) {
            const int p = p0 + lane / 4 + 8 * r, gy = o.y0 + p / kCols, gx = o.x0 + p % kCols;
            if (gy >= img_h || gx >= img_w) continue;
            __half* dst = head_y + ((static_cast<int64_t>(o.n) * img_h + gy) * img_w + gx) * head + k0;
            dst[0] = __float2half_rn(h[2 * r]);
            if (k0 + 1 < head) dst[1] = __float2half_rn(h[2 * r + 1]);
          }
      }
      wg_sync(wg);  // the tile is read before its next use (a Z load, the next epilogue)
      continue;
    }
    wgmma::fence_async_shared();  // the tile's writes visible to the TMA store
    wg_sync(wg);
    if (t == 0) {
      tma_store_4d(&map_y, 0, o.x0, o.y0, o.n, out_tile);
      tma_store_commit();
    }
  }
  if (t == 0) tma_store_wait_read();
}

}  // namespace

cudaError_t halo_conv_setup(const HaloConvParams& p, HaloConvLaunch* launch) {
  if (p.c != kHaloConvInChannels || p.n < 1 || p.h < 1 || p.w < 1) return cudaErrorInvalidValue;
  if (!tensor_map_encoder_tiled()) return cudaErrorNotSupported;
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
                      const HaloConvLaunch& l, cudaStream_t stream, const void* head_w, const void* head_b) {
  if (l.grid == 0) return cudaErrorInvalidValue;  // not set up
  if (p.head < 0 || p.head > kHaloConvMaxHead || (p.head > 0) != (head_w != nullptr)) return cudaErrorInvalidValue;
  for (const void* ptr : {x, w, z, static_cast<const void*>(y)})
    if (reinterpret_cast<uintptr_t>(ptr) % 16 != 0) return cudaErrorMisalignedAddress;  // TMA's requirement
  // The maps hold the buffers' addresses, which differ per execution context: made per launch
  // (host work only, so CUDA-graph capture records them with the launch).
  alignas(64) CUtensorMap mx{}, mw{}, mz{}, my{};
  bool ok = encode_nhwc64_f16(&mx, x, p.n, p.h, p.w, kM, kHaloCols, kHaloRows) &&
            (p.head > 0 || encode_nhwc64_f16(&my, y, p.n, p.h, p.w, kM, kCols, kRows)) &&
            // W (64, 3, 3, 64) as one image of 64 rows (outputs) x 9 pixels (taps): a box per tap.
            encode_nhwc64_f16(&mw, w, 1, kM, 9, kM, 1, kM);
  if (ok && z) ok = encode_nhwc64_f16(&mz, z, p.n, p.h, p.w, kM, kCols, kRows);
  if (!ok) return cudaErrorInvalidValue;
  halo_conv_kernel<<<l.grid, kThreads, l.smem, stream>>>(mx, mw, mz, my, static_cast<const __half*>(b), z != nullptr,
                                                        p.relu, l.tiles_x, l.tiles_y, l.tiles, p.head,
                                                        static_cast<const __half*>(head_w),
                                                        static_cast<const __half*>(head_b), static_cast<__half*>(y),
                                                        p.h, p.w);
  return cudaGetLastError();
}

}  // namespace kiln::cuda::kernels
