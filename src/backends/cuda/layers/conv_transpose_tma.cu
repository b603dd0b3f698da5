// The Hopper GEMM of a float16 NHWC ConvTranspose whose kernel equals its stride
// (conv_transpose_tma_kernels.hpp), sm_90a.
//
// Every input pixel p = (n, h, w) scatters one (kh, kw, M) block: as a product over all P pixels,
// T[P, kh*kw*M] = X[P, C] . Wt[kh*kw*M, C]ᵀ, and T's columns (a, b, o) of pixel p are Y's pixel
// (n, kh*h + a, kw*w + b), channel o. cuBLASLt writes T (a shuffle follows) or runs kh strided
// batches; here the product's tiles go straight to their place in Y: Y seen as the 5-d tensor
// (o: M, b: kw, w: W, a: kh, nh: N*H) is a TMA store's target, and a 64-column chunk of a tile
// (one (a, b) and 64 channels) over 64 consecutive pixels is one box of it.
//  - a persistent CTA per SM walks tiles of 128 pixels x TN (128 or 256) columns; its producer
//    warpgroup (one thread, its registers handed to the others) has the TMA bring 64-channel
//    slices of X's 128 rows and Wt's TN rows (128-byte swizzled, K-major for wgmma) into a ring of
//    stages, running ahead into the next tile while the last one's epilogue runs. Where Wt's
//    column tile fits in shared memory whole, it is loaded once per CTA (the grid a multiple of
//    the column tiles, so a CTA keeps one);
//  - two consumer warpgroups each multiply their 64 pixels by the TN columns (m64nTNk16, float
//    accumulation, one slice's products in flight while the next is issued), then add the bias,
//    round to float16 and write their part of the tile, swizzled the way a TMA store reads it,
//    into their own staging tile, which one thread stores (64-column chunks).
// On an H200 (Nsight Compute, in UNet's graph at batch 1), UNet's three upsamplings below the top
// (to 128x128 ... 512x512) took 12.4, 14.7 and 19.0 us against 15.4, 15.5 and 21.1 for cuBLASLt's
// best; the deepest (1024 -> 512 channels on 32x32) stays on cuBLASLt (about equal).
#include <cuda_fp16.h>

#include <algorithm>

#include "backends/cuda/layers/conv_transpose_tma_kernels.hpp"
#include "backends/cuda/layers/cp_async.cuh"
#include "backends/cuda/layers/named_barrier.cuh"
#include "backends/cuda/layers/tensor_map.hpp"
#include "backends/cuda/layers/tma.cuh"
#include "backends/cuda/layers/wgmma.cuh"

namespace kiln::cuda::kernels {
namespace {

constexpr int kTileRows = 128;   // pixels per tile: 64 per consumer warpgroup
constexpr int kRowBytes = 128;   // a 64-channel slice of one row
constexpr int kATile = kTileRows * kRowBytes;
constexpr int kOutChunk = 64 * kRowBytes;  // a warpgroup's 64 pixels x 64 columns
constexpr int kMaxCols = 4096;             // kh*kw*M: the columns' bias in shared memory
constexpr int kThreads = 384;              // the producer warpgroup, then two consumer warpgroups

UpGemmSmem smem_layout(int64_t tile_cols, int64_t chunks, int64_t cols, bool resident) {
  UpGemmSmem l;
  l.resident = resident;
  const uint32_t w_slice = static_cast<uint32_t>(tile_cols) * kRowBytes;
  l.stage_bytes = kATile + (resident ? 0 : w_slice);
  l.stages = resident ? 4 : tile_cols == 256 ? 3 : 4;
  l.resident_w = l.stages * l.stage_bytes;
  l.staging = l.resident_w + (resident ? static_cast<uint32_t>(chunks) * w_slice : 0);
  l.bias = l.staging + 2 * static_cast<uint32_t>(tile_cols / 64) * kOutChunk;
  l.barriers = l.bias + static_cast<uint32_t>((cols * 2 + 15) / 16 * 16);
  l.bytes = l.barriers + 8 * (2 * l.stages + 1) + 1024;
  return l;
}

// Registers move from the producer warpgroup to the consumers (each SM quarter holds 64 K / 4).
template <int Count>
__device__ __forceinline__ void regs_dec() {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;\n" ::"n"(Count));
#endif
}
template <int Count>
__device__ __forceinline__ void regs_inc() {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;\n" ::"n"(Count));
#endif
}

// With L.resident the grid is a multiple of col_tiles, so a CTA's tiles all have its column
// tile, whose Wt rows (all C channels) are loaded once.
template <int TN>
__global__ void __launch_bounds__(kThreads, 1)
    up_gemm_kernel(const __grid_constant__ CUtensorMap map_x, const __grid_constant__ CUtensorMap map_w,
                   const __grid_constant__ CUtensorMap map_y, const __half* __restrict__ bias, int m, int kw,
                   int cols, int chunks, int col_tiles, int64_t tiles, int64_t pixels, int img_w,
                   const UpGemmSmem L) {
  const int S = static_cast<int>(L.stages);
  extern __shared__ __align__(1024) unsigned char smem_raw[];
  const uint32_t base = (smem_u32(smem_raw) + 1023) & ~1023u;
  const int tid = threadIdx.x, t = tid % 128, warp = t / 32, lane = tid % 32;
  const uint32_t full0 = base + L.barriers, empty0 = full0 + 8 * S, w_full = empty0 + 8 * S;
  const uint32_t w_slice = TN * kRowBytes;
  if (tid == 0) {
    for (const CUtensorMap* map : {&map_x, &map_w, &map_y}) tma_prefetch_map(map);
    for (int s = 0; s < S; ++s) {
      mbar_init(full0 + 8 * s, 1);
      mbar_init(empty0 + 8 * s, 256);  // every consumer thread releases a stage
    }
    mbar_init(w_full, 1);
    mbar_init_fence();
  }
  __syncthreads();

  if (tid < 128) {  // the producer warpgroup: thread 0 issues every load
    regs_dec<40>();
    if (tid != 0) return;
    if (L.resident) {
      const int col0 = static_cast<int>(blockIdx.x % col_tiles) * TN;
      mbar_expect_tx(w_full, static_cast<int>(chunks * w_slice));
      for (int k = 0; k < chunks; ++k) tma_load_2d(base + L.resident_w + k * w_slice, &map_w, 64 * k, col0, w_full);
    }
    int64_t it = 0;  // slices loaded so far, over all of this CTA's tiles
    for (int64_t tile = blockIdx.x; tile < tiles; tile += gridDim.x) {
      const int col0 = static_cast<int>(tile % col_tiles) * TN;
      const int pix0 = static_cast<int>(tile / col_tiles) * kTileRows;
      for (int k = 0; k < chunks; ++k, ++it) {
        const int s = static_cast<int>(it % S);
        if (it >= S) mbar_wait(empty0 + 8 * s, static_cast<uint32_t>((it / S - 1) & 1));
        const uint32_t stage = base + s * L.stage_bytes;
        mbar_expect_tx(full0 + 8 * s, static_cast<int>(L.stage_bytes));
        tma_load_2d(stage, &map_x, 64 * k, pix0, full0 + 8 * s);
        if (!L.resident) tma_load_2d(stage + kATile, &map_w, 64 * k, col0, full0 + 8 * s);
      }
    }
    return;
  }

  // Consumer warpgroup wg (0, 1) takes the tile's pixels 64 wg ... d[4i + e]: pixel
  // 16*warp + lane/4 (+8 for e >= 2) of its 64, column 8i + 2*(lane%4) + e%2 of the tile.
  regs_inc<232>();
  const int wg = tid / 128 - 1;
  // Every product column's bias B[col % M] into shared memory, once (per-tile global loads of it
  // stalled the epilogue: 33 against 18 us for UNet's last upsampling on an H200).
  const uint32_t bias_at = base + L.bias;
  for (int c = tid - 128; c < cols; c += 256) {
    const __half v = bias ? bias[c % m] : __float2half(0.f);
    asm volatile("st.shared.b16 [%0], %1;\n" ::"r"(bias_at + 2 * c), "h"(*reinterpret_cast<const unsigned short*>(&v))
                 : "memory");
  }
  named_barrier_sync(3, 256);  // both consumer warpgroups (1 + wg is each one's own)
  const auto* bias_cols = reinterpret_cast<const __half2*>(smem_raw + (bias_at - smem_u32(smem_raw)));
  const uint32_t staging = base + L.staging + wg * (TN / 64) * kOutChunk;
  float acc[TN / 2];
  int64_t it = 0;
  bool stored = false;
  if (L.resident) mbar_wait(w_full, 0);
  for (int64_t tile = blockIdx.x; tile < tiles; tile += gridDim.x) {
    const int col0 = static_cast<int>(tile % col_tiles) * TN;
    const int64_t pix0 = tile / col_tiles * kTileRows;
    for (int k = 0; k < chunks; ++k, ++it) {
      const int s = static_cast<int>(it % S);
      const uint32_t stage = base + s * L.stage_bytes;
      const uint32_t w_at = L.resident ? base + L.resident_w + k * w_slice : stage + kATile;
      mbar_wait(full0 + 8 * s, static_cast<uint32_t>((it / S) & 1));
      wgmma::fence();
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        const uint64_t a = wgmma::desc_sw128(stage + wg * 64 * kRowBytes + 32 * j, 8 * kRowBytes);
        const uint64_t b = wgmma::desc_sw128(w_at + 32 * j, 8 * kRowBytes);
        wgmma::wgmma_m64nk16_f16<TN>(acc, a, b, (k | j) != 0);
      }
      wgmma::commit();
      wgmma::wait<1>();  // the previous slice's products are done: release its stage
      if (k > 0) mbar_arrive(empty0 + 8 * static_cast<int>((it - 1) % S));
    }
    wgmma::wait<0>();
#pragma unroll
    for (int q = 0; q < TN / 2; ++q) wgmma::fence_operand(acc[q]);
    mbar_arrive(empty0 + 8 * static_cast<int>((it - 1) % S));

    // Chunk q (columns 64q ..) of the staging tile: pixel r's 128-byte row, its 16-byte unit u at
    // u ^ (r % 8) (the TMA store's 128-byte swizzle). The last tile's stores must have read it.
    if (stored) {
      if (t == 0) tma_store_wait_read();
      named_barrier_sync(1 + wg, 128);
    }
#pragma unroll
    for (int i = 0; i < TN / 8; ++i) {
      const int q = i / 8, u = i % 8;
      // Past the last column (a partial tile) the bias region's padding or its neighbour is read:
      // those columns are not stored.
      const float2 bf = __half22float2(bias_cols[min(col0 + 8 * i + 2 * (lane % 4), cols - 2) / 2]);
#pragma unroll
      for (int hr = 0; hr < 2; ++hr) {
        const int r = 16 * warp + lane / 4 + 8 * hr;
        const __half2 h = __floats2half2_rn(acc[4 * i + 2 * hr] + bf.x, acc[4 * i + 2 * hr + 1] + bf.y);
        const uint32_t addr = staging + q * kOutChunk + r * kRowBytes + ((u ^ (r % 8)) << 4) + 4 * (lane % 4);
        // No memory clobber: the bias loads may move across these stores (another region).
        asm volatile("st.shared.b32 [%0], %1;\n" ::"r"(addr), "r"(*reinterpret_cast<const uint32_t*>(&h)));
      }
    }
    wgmma::fence_async_shared();  // the tile's writes visible to the TMA store
    named_barrier_sync(1 + wg, 128);
    if (t == 0) {
      const int64_t pix = pix0 + 64 * wg;
      if (pix < pixels) {
        const int nh = static_cast<int>(pix / img_w), w = static_cast<int>(pix % img_w);
        for (int q = 0; q < TN / 64; ++q) {
          const int c = col0 + 64 * q;
          if (c >= cols) break;
          tma_store_5d(&map_y, c % m, (c / m) % kw, w, c / (kw * m), nh, staging + q * kOutChunk);
        }
      }
      tma_store_commit();
    }
    stored = true;
  }
  if (t == 0) tma_store_wait_read();  // the stores have read shared memory before the CTA ends
}

// Y (N, kh*H, kw*W, M) as (o: M, b: kw, w: W, a: kh, nh: N*H); a box is 64 channels of
// box_rows x box_w input pixels' (a, b) output pixels.
bool encode_output(CUtensorMap* map, void* y, const UpGemmParams& p, const UpGemmLaunch& l) {
  const auto encode = tensor_map_encoder_tiled();
  if (!encode) return false;
  const cuuint64_t dims[5] = {static_cast<cuuint64_t>(p.m), static_cast<cuuint64_t>(p.kw),
                              static_cast<cuuint64_t>(p.w), static_cast<cuuint64_t>(p.kh),
                              static_cast<cuuint64_t>(p.n * p.h)};
  const cuuint64_t px = static_cast<cuuint64_t>(p.m) * 2;  // one output pixel's channels
  const cuuint64_t strides[4] = {px, px * p.kw, px * p.kw * p.w, px * p.kw * p.w * p.kh};
  const cuuint32_t box[5] = {64, 1, static_cast<cuuint32_t>(l.box_w), 1, static_cast<cuuint32_t>(l.box_rows)};
  const cuuint32_t estr[5] = {1, 1, 1, 1, 1};
  return encode(map, CU_TENSOR_MAP_DATA_TYPE_FLOAT16, 5, y, dims, strides, box, estr, CU_TENSOR_MAP_INTERLEAVE_NONE,
                CU_TENSOR_MAP_SWIZZLE_128B, CU_TENSOR_MAP_L2_PROMOTION_L2_128B,
                CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE) == CUDA_SUCCESS;
}

}  // namespace

bool up_gemm_fits(const UpGemmParams& p) {
  if (p.n < 1 || p.h < 1 || p.w < 1 || p.kh < 1 || p.kw < 1 || p.c < 64 || p.m < 64) return false;
  if (p.c % 64 != 0 || p.m % 64 != 0) return false;
  if (p.w % 64 != 0 && 64 % p.w != 0) return false;
  const int64_t pixels = p.n * p.h * p.w, cols = p.kh * p.kw * p.m;
  return p.n * p.h <= INT32_MAX && pixels <= INT32_MAX && cols <= kMaxCols && p.c <= INT32_MAX &&
         (p.tile_cols == 128 || p.tile_cols == 256);
}

cudaError_t up_gemm_setup(const UpGemmParams& p, UpGemmLaunch* launch) {
  if (!up_gemm_fits(p)) return cudaErrorInvalidValue;
  if (!tensor_map_encoder_tiled()) return cudaErrorNotSupported;
  UpGemmLaunch l;
  const int64_t pixels = p.n * p.h * p.w, cols = p.kh * p.kw * p.m;
  l.col_tiles = static_cast<int>((cols + p.tile_cols - 1) / p.tile_cols);
  l.tiles = (pixels + kTileRows - 1) / kTileRows * l.col_tiles;
  l.box_w = static_cast<int>(std::min<int64_t>(p.w, 64));
  l.box_rows = 64 / l.box_w;
  int device = 0, sms = 0, optin = 0;
  cudaError_t e = cudaGetDevice(&device);
  if (e == cudaSuccess) e = cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device);
  if (e == cudaSuccess) e = cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, device);
  if (e != cudaSuccess) return e;
  // Wt's column tile stays in shared memory where it fits and every CTA can keep one column tile.
  const int64_t chunks = p.c / 64;
  l.layout = smem_layout(p.tile_cols, chunks, cols, true);
  if (l.layout.bytes > static_cast<size_t>(optin) || l.col_tiles > sms)
    l.layout = smem_layout(p.tile_cols, chunks, cols, false);
  if (l.layout.bytes > static_cast<size_t>(optin)) return cudaErrorInvalidValue;
  // The device's maximum, not this layer's size: the attribute is the kernel's, shared by every
  // layer (one set to less would make the larger ones' launches fail).
  e = p.tile_cols == 256
          ? cudaFuncSetAttribute(up_gemm_kernel<256>, cudaFuncAttributeMaxDynamicSharedMemorySize, optin)
          : cudaFuncSetAttribute(up_gemm_kernel<128>, cudaFuncAttributeMaxDynamicSharedMemorySize, optin);
  if (e != cudaSuccess) return e;
  int64_t grid = std::min<int64_t>(l.tiles, sms);
  if (l.layout.resident) grid -= grid % l.col_tiles;
  l.grid = static_cast<unsigned>(grid);
  *launch = l;
  return cudaSuccess;
}

cudaError_t up_gemm(const void* x, const void* wt, const void* b, void* y, const UpGemmParams& p,
                    const UpGemmLaunch& l, cudaStream_t stream) {
  if (l.grid == 0) return cudaErrorInvalidValue;  // not set up
  for (const void* ptr : {x, wt, static_cast<const void*>(y)})
    if (reinterpret_cast<uintptr_t>(ptr) % 16 != 0) return cudaErrorMisalignedAddress;  // TMA's requirement
  const int64_t pixels = p.n * p.h * p.w, cols = p.kh * p.kw * p.m;
  // Made per launch: the maps hold the buffers' addresses (host work, recorded by graph capture).
  alignas(64) CUtensorMap mx{}, mw{}, my{};
  if (!encode_rows64_f16(&mx, x, pixels, p.c, kTileRows) ||
      !encode_rows64_f16(&mw, wt, cols, p.c, static_cast<int>(p.tile_cols)) ||
      !encode_output(&my, y, p, l))
    return cudaErrorInvalidValue;
  auto* kernel = p.tile_cols == 256 ? up_gemm_kernel<256> : up_gemm_kernel<128>;
  kernel<<<l.grid, kThreads, l.layout.bytes, stream>>>(mx, mw, my, static_cast<const __half*>(b), static_cast<int>(p.m),
                                               static_cast<int>(p.kw), static_cast<int>(cols),
                                               static_cast<int>(p.c / 64), l.col_tiles, l.tiles, pixels,
                                               static_cast<int>(p.w), l.layout);
  return cudaGetLastError();
}

}  // namespace kiln::cuda::kernels
