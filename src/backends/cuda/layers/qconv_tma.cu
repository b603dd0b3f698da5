// The TMA tiles of the int8 implicit-GEMM convolution (qconv_tma.hpp), sm_90a.
//
// A CTA computes BM (128 or 64) output pixels x BN output channels, one warpgroup per 64 pixels.
// Thread 0 issues every copy: per 64-byte reduction stage (64 channels of one window position
// (ky, kx)), one im2col TMA load of the 128 pixels' window rows (the tensor map knows X's shape,
// the pads and the strides; the window position is the load's offset, padding comes back as
// zeros) and one tiled load of the BN weight rows, both into the 64-byte-swizzled layout that
// wgmma's descriptors read (wgmma.cuh). The stages form a ring guarded by mbarriers: "full"
// (the copies' bytes landed) and "empty" (every thread's multiplications of that stage done).
// The epilogue works on the accumulator registers: each thread holds columns 8i + 2t, +1 of rows
// g and g + 8 of its warp's 16. For int8 outputs the pairs go as 16-bit words into a shared tile
// in the TMA's swizzled layout (conflict-free), from which one thread per warpgroup stores the
// warpgroup's 64 rows with a TMA store (float16 outputs likewise, in their own tile); a residual
// (int8 or float16) comes into shared memory by a TMA load issued before the main loop, and a
// result of the residual's type overwrites it in place.
#include <cuda.h>
#include <cudaTypedefs.h>

#include <algorithm>
#include <atomic>
#include <climits>
#include <type_traits>

#include "backends/cuda/layers/cp_async.cuh"
#include "backends/cuda/layers/named_barrier.cuh"
#include "backends/cuda/layers/qconv_tma.hpp"
#include "backends/cuda/layers/tensor_map.hpp"
#include "backends/cuda/layers/tma.cuh"
#include "backends/cuda/layers/wgmma.cuh"
#include "util/fast_div.hpp"

namespace kiln::cuda::kernels {
namespace {

constexpr int kBK = 64, kMaxStages = 6;  // the most stages any tile has
enum Out { kAcc = 0, kInt8 = 1, kHalf = 2 };
enum Res { kNoZ = 0, kZInt8 = 1, kZHalf = 2 };

// The layer's parameters and what the launch derives from them.
struct TmaArgs {
  IgemmS8Params p;
  int rows = 0, kt = 0, stages = 0;
  int c_blocks = 0;    // the reduction: kt = ((ky * kw) + kx) * c_blocks + c / 64
  bool im2col = true;  // false: a 1x1, stride-1, unpadded convolution read as a (pixels, c) matrix
  FastDiv div_hw, div_ow;
};

// A tile: BM pixels (one warpgroup per 64) x BN channels. Shared memory: the stage ring, the int8
// residual tile (kZ int8), the output tile (int8: the residual's, in place; float16: its own),
// alpha and bias of the tile's channels, the barriers. The residual (int8 or float16) and output
// tiles are column strips of 128-byte rows (64-byte rows for a 64-channel int8 tile), each swizzled
// as the TMA does.
template <int BM_, int BN_, int kOut, int kZ>
struct Tile {
  static constexpr int BM = BM_, BN = BN_, kThreads = 2 * BM;
  static constexpr int kA = BM * kBK, kB = BN * kBK, kStage = kA + kB;
  // Stages in the ring: up to 80 KiB of them (two or three CTAs an SM with the tiles below).
  static constexpr int kStages = 80 * 1024 / kStage < kMaxStages ? 80 * 1024 / kStage : kMaxStages;
  static constexpr int kW8 = BN == 64 ? 64 : 128;  // int8 strip width (bytes = channels)
  static constexpr int kZBytes = kZ == kZInt8 ? BM * BN : kZ == kZHalf ? 2 * BM * BN : 0;
  // The output overwrites the residual in place where both have the same element type.
  static constexpr bool kYAliasesZ = (kOut == kInt8 && kZ == kZInt8) || (kOut == kHalf && kZ == kZHalf);
  static constexpr int kYBytes = kYAliasesZ || kOut == kAcc ? 0 : BM * BN * (kOut == kHalf ? 2 : 1);
  static int bytes(int stages) {
    return stages * kStage + kZBytes + kYBytes + 2 * BN * 4 + (2 * kMaxStages + 1) * 8 + 1024;
  }
  static_assert(kStage % 1024 == 0 && kZBytes % 1024 == 0 && kYBytes % 1024 == 0);
};

// The tiles by index (qconv_tma.hpp): pixels and channels.
constexpr int kTileRows[kIgemmTmaTiles] = {128, 128, 64, 64}, kTileCols[kIgemmTmaTiles] = {128, 64, 256, 128};

// CTAs an SM should hold (the register budget ptxas gets).
constexpr int min_blocks(int bm, int bn) { return bm == 128 ? (bn == 64 ? 3 : 2) : (bn == 256 ? 2 : 4); }

__device__ __forceinline__ uint32_t ld_shared_u16(uint32_t addr) {
  uint16_t v;
  asm volatile("ld.shared.u16 %0, [%1];\n" : "=h"(v) : "r"(addr));
  return v;
}
__device__ __forceinline__ void st_shared_u16(uint32_t addr, uint32_t v) {
  asm volatile("st.shared.u16 [%0], %1;\n" ::"r"(addr), "h"(static_cast<uint16_t>(v)) : "memory");
}
__device__ __forceinline__ uint32_t ld_shared_u32(uint32_t addr) {
  uint32_t v;
  asm volatile("ld.shared.u32 %0, [%1];\n" : "=r"(v) : "r"(addr));
  return v;
}
__device__ __forceinline__ void st_shared_u32(uint32_t addr, uint32_t v) {
  asm volatile("st.shared.u32 [%0], %1;\n" ::"r"(addr), "r"(v) : "memory");
}

template <bool kSmall>
__device__ __forceinline__ float acc_to_float(int v) {  // as qconv_igemm.cu's: exact for |v| <= 2^22
  if constexpr (kSmall) return __int_as_float(v + 0x4B400000) - 12582912.0f;
  else return static_cast<float>(v);
}

template <int BM, int BN, int kOut, int kZ>
__global__ void __launch_bounds__(2 * BM, min_blocks(BM, BN))
    igemm_s8_tma_kernel(const __grid_constant__ CUtensorMap map_x, const __grid_constant__ CUtensorMap map_w,
                        const __grid_constant__ CUtensorMap map_z, const __grid_constant__ CUtensorMap map_y,
                        const TmaArgs a) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  using T = Tile<BM, BN, kOut, kZ>;
  extern __shared__ __align__(128) uint8_t smem_raw[];
  uint8_t* smem = smem_raw + ((1024 - (smem_u32(smem_raw) & 1023)) & 1023);  // 128-byte swizzle: 1024-aligned
  uint8_t* ztile = smem + a.stages * T::kStage;
  uint8_t* ytile = T::kYAliasesZ ? ztile : ztile + T::kZBytes;
  float* s_alpha = reinterpret_cast<float*>(ztile + T::kZBytes + T::kYBytes);
  float* s_bias = s_alpha + BN;
  const uint32_t bars = smem_u32(s_bias + BN);  // full[kMaxStages], empty[kMaxStages], z
  auto full = [&](int s) { return bars + 8 * s; };
  auto empty = [&](int s) { return bars + 8 * (kMaxStages + s); };
  const uint32_t zbar = bars + 8 * 2 * kMaxStages;

  const int tid = threadIdx.x, lane = tid & 31, wg = tid >> 7, wq = (tid >> 5) & 3;
  const int m0 = blockIdx.y * BM, n0 = blockIdx.x * BN;

  if (tid == 0) {
    for (const CUtensorMap* mp : {&map_x, &map_w, &map_z, &map_y})
      tma_prefetch_map(mp);
    for (int s = 0; s < a.stages; ++s) {
      mbar_init(full(s), 1);
      mbar_init(empty(s), T::kThreads);
    }
    mbar_init(zbar, 1);
    mbar_init_fence();
  }
  // alpha and bias of the tile's channels (0 past m), divided by y_scale for int8 outputs.
  for (int i = tid; i < BN; i += T::kThreads) {
    const int ch = n0 + i;
    const float inv = kOut == kInt8 ? 1.0f / a.p.y_scale : 1.0f;
    s_alpha[i] = kOut != kAcc && ch < a.p.m ? a.p.alpha[ch] * inv : 0.f;
    s_bias[i] = kOut != kAcc && ch < a.p.m && a.p.bias ? a.p.bias[ch] * inv : 0.f;
  }
  __syncthreads();

  // Thread 0's copy state: the next stage to load, as (c block, kx, ky), and the first pixel's
  // window origin.
  int ld_cb = 0, ld_kx = 0, ld_ky = 0;
  int org_w = 0, org_h = 0, org_n = 0;
  auto issue = [&](int s) {
    const uint32_t sa = smem_u32(smem + s * T::kStage);
    mbar_expect_tx(full(s), T::kStage);
    const int c = ld_cb * kBK;
    if (a.im2col) {
      tma_load_im2col(sa, &map_x, c, org_w, org_h, org_n, static_cast<uint16_t>(ld_kx), static_cast<uint16_t>(ld_ky),
                      full(s));
    } else {
      tma_load_2d(sa, &map_x, c, m0, full(s));
    }
    const int k = ((ld_ky * a.p.kw) + ld_kx) * a.c_blocks * kBK + c;
    tma_load_2d(sa + T::kA, &map_w, k, n0, full(s));
    if (++ld_cb == a.c_blocks) {
      ld_cb = 0;
      if (++ld_kx == a.p.kw) {
        ld_kx = 0;
        ++ld_ky;
      }
    }
  };
  if (tid == 0) {
    if constexpr (kZ != kNoZ) {
      mbar_expect_tx(zbar, T::kZBytes);
      constexpr int kRowBytes = kZ == kZHalf ? 128 : T::kW8, kCols = kZ == kZHalf ? 64 : T::kW8;
#pragma unroll
      for (int strip = 0; strip < BN / kCols; ++strip)
        tma_load_2d(smem_u32(ztile + strip * BM * kRowBytes), &map_z, n0 + strip * kCols, m0, zbar);
    }
    const int img = static_cast<int>(a.div_hw.div(static_cast<uint32_t>(m0)));
    const int rem = m0 - img * static_cast<int>(a.div_hw.d);
    const int oy = static_cast<int>(a.div_ow.div(static_cast<uint32_t>(rem))), ox = rem - oy * a.p.ow;
    org_n = img;
    org_h = oy * a.p.stride_h - a.p.pad_h;
    org_w = ox * a.p.stride_w - a.p.pad_w;
    for (int s = 0; s < a.stages; ++s) issue(s);
  }

  // Not zeroed: the first multiplication overwrites (accumulate 0); zeroing them would be a
  // non-wgmma definition that makes ptxas serialize the wgmma pipeline.
  int acc[BN / 2];
  {
    int s = 0, prev_s = 0;
    uint32_t phase = 0, prev_phase = 0;
    for (int kt = 0; kt < a.kt; ++kt) {
      mbar_wait(full(s), phase);
      const uint32_t sa = smem_u32(smem + s * T::kStage);
      const uint32_t da = sa + wg * 64 * kBK, db = sa + T::kA;
      wgmma::fence();
#pragma unroll
      for (int ks = 0; ks < 2; ++ks) {
        const uint64_t x = wgmma::desc_k64(da + 32 * ks), w = wgmma::desc_k64(db + 32 * ks);
        const int accumulate = kt > 0 || ks > 0;
        if constexpr (BN == 256) wgmma::wgmma_m64n256k32_s8(acc, x, w, accumulate);
        else if constexpr (BN == 128) wgmma::wgmma_m64n128k32_s8(acc, x, w, accumulate);
        else wgmma::wgmma_m64n64k32_s8(acc, x, w, accumulate);
      }
      wgmma::commit();
      wgmma::wait<1>();  // kt-1's multiplication done: its stage may be refilled
      if (kt > 0) {
        mbar_arrive(empty(prev_s));
        if (tid == 0 && kt - 1 + a.stages < a.kt) {
          mbar_wait(empty(prev_s), prev_phase);
          issue(prev_s);
        }
      }
      prev_s = s;
      prev_phase = phase;
      if (++s == a.stages) {
        s = 0;
        phase ^= 1;
      }
    }
    wgmma::wait<0>();
#pragma unroll
    for (int i = 0; i < BN / 2; ++i) wgmma::fence_operand(acc[i]);
  }

  // Epilogue. acc[4i + e]: row 16 wq + g (+ 8 for e >= 2) of the warpgroup's 64, column 8i + 2t + e % 2.
  const int g = lane >> 2, t = lane & 3;
  const int r_lo = wg * 64 + 16 * wq + g;  // the tile's row (and r_lo + 8)
  const int pix_lo = m0 + r_lo;            // its output pixel
  if constexpr (kZ != kNoZ) mbar_wait(zbar, 0);
  // Tile addresses in the TMA's swizzle: a 128-byte row's 16-byte chunk is XORed with row % 8, a
  // 64-byte row's with (row / 2) % 4. For this thread's pair of columns in n8 block i: a per-thread
  // base (row, the row's XOR term, the pair's bytes) plus the strip and row-half offsets, XOR the
  // block's chunk: all compile-time but the base.
  const uint32_t row8 = r_lo * T::kW8 + ((T::kW8 == 128 ? g : (g >> 1) & 3) << 4) + 2 * t;
  const uint32_t zbase8 = smem_u32(ztile) + row8, ybase8 = smem_u32(ytile) + row8;
  const uint32_t ybase16 = smem_u32(ytile) + r_lo * 128 + (g << 4) + 4 * t;
  const uint32_t zbase16 = smem_u32(ztile) + r_lo * 128 + (g << 4) + 4 * t;
  auto addr8 = [&](uint32_t base, int i, int h) -> uint32_t {
    if constexpr (T::kW8 == 64) return (base + h * 8 * 64 + 8 * (i & 1)) ^ ((i >> 1) << 4);
    else return (base + (i >> 4) * BM * 128 + h * 8 * 128 + 8 * (i & 1)) ^ (((i & 15) >> 1) << 4);
  };
  auto addr16 = [&](uint32_t base, int i, int h) -> uint32_t {
    return (base + (i >> 3) * BM * 128 + h * 8 * 128) ^ ((i & 7) << 4);
  };
  float z_mul = a.p.z_scale;
  if constexpr (kOut == kInt8) z_mul /= a.p.y_scale;
  const float q_lo = a.p.relu ? 0.f : -128.f;
  auto epilogue = [&](auto small) {
    constexpr bool kSmall = decltype(small)::value;
#pragma unroll
    for (int i = 0; i < BN / 8; ++i) {
      [[maybe_unused]] const int col = n0 + 8 * i + 2 * t;
      const float2 al = reinterpret_cast<const float2*>(s_alpha)[4 * i + t];
      const float2 bi = reinterpret_cast<const float2*>(s_bias)[4 * i + t];
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const int v0 = acc[4 * i + 2 * h], v1 = acc[4 * i + 2 * h + 1];
        [[maybe_unused]] const int pix = pix_lo + 8 * h;
        [[maybe_unused]] float z0 = 0.f, z1 = 0.f;
        if constexpr (kZ == kZInt8) {
          // Two int8 to floats by byte permutes (qconv_igemm.cu's s8x4_to_float).
          const uint32_t u = ld_shared_u16(addr8(zbase8, i, h)) ^ 0x8080u;
          z0 = __uint_as_float(__byte_perm(u, 0x4B400000u, 0x7650u)) - 12583040.0f;
          z1 = __uint_as_float(__byte_perm(u, 0x4B400000u, 0x7651u)) - 12583040.0f;
        } else if constexpr (kZ == kZHalf) {
          const uint32_t zw = ld_shared_u32(addr16(zbase16, i, h));
          const float2 zf = __half22float2(*reinterpret_cast<const __half2*>(&zw));
          z0 = zf.x;
          z1 = zf.y;
        }
        if constexpr (kOut == kInt8) {
          float f0 = fmaf(acc_to_float<kSmall>(v0), al.x, bi.x), f1 = fmaf(acc_to_float<kSmall>(v1), al.y, bi.y);
          if constexpr (kZ != kNoZ) {
            f0 = fmaf(z0, z_mul, f0);
            f1 = fmaf(z1, z_mul, f1);
          }
          // Clamped, rounded half to even by adding 1.5 * 2^23: the low byte is the int8.
          const uint32_t q0 = __float_as_uint(fminf(fmaxf(f0, q_lo), 127.f) + 12582912.0f);
          const uint32_t q1 = __float_as_uint(fminf(fmaxf(f1, q_lo), 127.f) + 12582912.0f);
          st_shared_u16(addr8(ybase8, i, h), __byte_perm(q0, q1, 0x0040u));
        } else {
          // The same float operations, in the same order, as q_epilogue.
          float f[2] = {acc_to_float<kSmall>(v0) * al.x, acc_to_float<kSmall>(v1) * al.y};
          [[maybe_unused]] const float zz[2] = {z0, z1};
          const float bb[2] = {bi.x, bi.y};
#pragma unroll
          for (int e = 0; e < 2; ++e) {
            if (a.p.bias) f[e] += bb[e];
            if constexpr (kZ != kNoZ) f[e] += zz[e] * z_mul;
            if (a.p.relu) f[e] = fmaxf(f[e], 0.f);
          }
          const __half2 hv = __floats2half2_rn(f[0], f[1]);
          st_shared_u32(addr16(ybase16, i, h), *reinterpret_cast<const uint32_t*>(&hv));
        }
      }
    }
  };
  if constexpr (kOut == kAcc) {  // int32 sums, for the layer's epilogue kernel
#pragma unroll
    for (int i = 0; i < BN / 8; ++i) {
      const int col = n0 + 8 * i + 2 * t;
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const int pix = pix_lo + 8 * h;
        if (pix < a.rows && col < a.p.m)
          *reinterpret_cast<int2*>(a.p.acc + static_cast<int64_t>(pix) * a.p.acc_stride + col) =
              make_int2(acc[4 * i + 2 * h], acc[4 * i + 2 * h + 1]);
      }
    }
  } else {
    if (a.p.acc_small) epilogue(std::true_type{});
    else epilogue(std::false_type{});
    // The warpgroup's 64 rows of each output strip go out by TMA (rows and channels past the
    // tensor are clipped).
    asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");  // the tile's writes, visible to the TMA
    named_barrier_sync(1 + wg, 128);  // one barrier per warpgroup
    if ((tid & 127) == 0) {
      constexpr int kRowBytes = kOut == kHalf ? 128 : T::kW8, kStripBytes = BM * kRowBytes;
      constexpr int kCols = kOut == kHalf ? 64 : T::kW8;  // channels per strip
#pragma unroll
      for (int strip = 0; strip < BN / kCols; ++strip)
        tma_store_2d(&map_y, n0 + strip * kCols, m0 + wg * 64,
                     smem_u32(ytile + strip * kStripBytes + wg * 64 * kRowBytes));
      tma_store_wait();
    }
  }
#else
  __trap();
#endif
}

// A row-major (rows, cols) matrix of 1- or 2-byte elements, boxes of box_rows x box_cols,
// swizzled in 64- or 128-byte box rows.
bool encode_matrix(CUtensorMap* map, const void* base, int64_t rows, int64_t cols, int box_cols, int box_rows,
                   int elem_bytes = 1) {
  const cuuint64_t dims[2] = {static_cast<cuuint64_t>(cols), static_cast<cuuint64_t>(rows)};
  const cuuint64_t strides[1] = {static_cast<cuuint64_t>(cols) * elem_bytes};
  const cuuint32_t box[2] = {static_cast<cuuint32_t>(box_cols), static_cast<cuuint32_t>(box_rows)};
  const cuuint32_t estr[2] = {1, 1};
  const CUtensorMapSwizzle sw = box_cols * elem_bytes == 128 ? CU_TENSOR_MAP_SWIZZLE_128B : CU_TENSOR_MAP_SWIZZLE_64B;
  const CUtensorMapDataType type = elem_bytes == 2 ? CU_TENSOR_MAP_DATA_TYPE_FLOAT16 : CU_TENSOR_MAP_DATA_TYPE_UINT8;
  return tensor_map_encoder_tiled()(map, type, 2, const_cast<void*>(base), dims, strides, box, estr,
                          CU_TENSOR_MAP_INTERLEAVE_NONE, sw, CU_TENSOR_MAP_L2_PROMOTION_L2_128B,
                          CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE) == CUDA_SUCCESS;
}

// The box of window origins the im2col copies walk, (W, H): from -pad (lower, from X's first
// pixel) to the last output pixel's origin (upper, counted from X's last pixel), so that a walk
// of `stride` steps wraps to the next row after ow origins (asymmetric pads included).
void tma_corners(int64_t h, int64_t w, int64_t oh, int64_t ow, int64_t sh, int64_t sw, int64_t ph, int64_t pw,
                 int* lower, int* upper) {
  lower[0] = static_cast<int>(-pw);
  lower[1] = static_cast<int>(-ph);
  upper[0] = static_cast<int>((ow - 1) * sw - pw - (w - 1));
  upper[1] = static_cast<int>((oh - 1) * sh - ph - (h - 1));
}

// X (n, h, w, c) int8 as im2col rows: 64 channels of `pixels` consecutive output pixels' window origins.
bool encode_im2col(CUtensorMap* map, const IgemmS8Params& p, int pixels) {
  const cuuint64_t dims[4] = {static_cast<cuuint64_t>(p.c), static_cast<cuuint64_t>(p.w_in),
                              static_cast<cuuint64_t>(p.h), static_cast<cuuint64_t>(p.n)};
  const cuuint64_t strides[3] = {static_cast<cuuint64_t>(p.c), static_cast<cuuint64_t>(p.c) * p.w_in,
                                 static_cast<cuuint64_t>(p.c) * p.w_in * p.h};
  int lower[2], upper[2];
  tma_corners(p.h, p.w_in, p.oh, p.ow, p.stride_h, p.stride_w, p.pad_h, p.pad_w, lower, upper);
  const cuuint32_t estr[4] = {1, static_cast<cuuint32_t>(p.stride_w), static_cast<cuuint32_t>(p.stride_h), 1};
  return tensor_map_encoder_im2col()(map, CU_TENSOR_MAP_DATA_TYPE_UINT8, 4, const_cast<int8_t*>(p.x), dims, strides, lower,
                           upper, kBK, static_cast<cuuint32_t>(pixels), estr, CU_TENSOR_MAP_INTERLEAVE_NONE,
                           CU_TENSOR_MAP_SWIZZLE_64B, CU_TENSOR_MAP_L2_PROMOTION_L2_128B,
                           CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE) == CUDA_SUCCESS;
}

template <int BM, int BN, int kOut, int kZ>
cudaError_t launch_one(const IgemmS8Params& p, cudaStream_t stream) {
  using T = Tile<BM, BN, kOut, kZ>;
  const int64_t rows = static_cast<int64_t>(p.n) * p.oh * p.ow;
  const int K = p.kh * p.kw * p.c;
  TmaArgs a;
  a.p = p;
  a.rows = static_cast<int>(rows);
  a.kt = K / kBK;
  a.stages = std::min(a.kt, T::kStages);
  a.c_blocks = p.c / kBK;
  a.im2col = !(p.kh == 1 && p.kw == 1 && p.stride_h == 1 && p.stride_w == 1 && p.pad_h == 0 && p.pad_w == 0);
  a.div_hw = FastDiv::of(static_cast<uint32_t>(p.oh * p.ow));
  a.div_ow = FastDiv::of(static_cast<uint32_t>(p.ow));
  alignas(64) CUtensorMap mx{}, mw{}, mz{}, my{};
  bool ok = a.im2col ? encode_im2col(&mx, p, BM) : encode_matrix(&mx, p.x, rows, p.c, kBK, BM);
  ok = ok && encode_matrix(&mw, p.w, p.m, K, kBK, BN);
  if constexpr (kZ == kZInt8) ok = ok && encode_matrix(&mz, p.z, rows, p.m, T::kW8, BM);
  if constexpr (kZ == kZHalf) ok = ok && encode_matrix(&mz, p.z_h, rows, p.m, 64, BM, 2);
  if constexpr (kOut == kInt8) ok = ok && encode_matrix(&my, p.y, rows, p.m, T::kW8, 64);
  if constexpr (kOut == kHalf) ok = ok && encode_matrix(&my, p.y_h, rows, p.m, 64, 64, 2);
  if (!ok) return cudaErrorInvalidValue;
  const dim3 grid(static_cast<unsigned>((p.m + BN - 1) / BN), static_cast<unsigned>((rows + BM - 1) / BM));
  igemm_s8_tma_kernel<BM, BN, kOut, kZ><<<grid, T::kThreads, T::bytes(a.stages), stream>>>(mx, mw, mz, my, a);
  return cudaGetLastError();
}

template <int BM, int BN>
cudaError_t launch(const IgemmS8Params& p, int out, cudaStream_t stream) {
  const int z = p.z ? kZInt8 : p.z_h ? kZHalf : kNoZ;
  if (out == kAcc) return launch_one<BM, BN, kAcc, kNoZ>(p, stream);
  if (out == kInt8) {
    if (z == kZInt8) return launch_one<BM, BN, kInt8, kZInt8>(p, stream);
    if (z == kZHalf) return launch_one<BM, BN, kInt8, kZHalf>(p, stream);
    return launch_one<BM, BN, kInt8, kNoZ>(p, stream);
  }
  if (z == kZInt8) return launch_one<BM, BN, kHalf, kZInt8>(p, stream);
  if (z == kZHalf) return launch_one<BM, BN, kHalf, kZHalf>(p, stream);
  return launch_one<BM, BN, kHalf, kNoZ>(p, stream);
}

template <int BM, int BN, int kOut, int kZ>
cudaError_t allow_smem() {
  return cudaFuncSetAttribute(igemm_s8_tma_kernel<BM, BN, kOut, kZ>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                              Tile<BM, BN, kOut, kZ>::bytes(Tile<BM, BN, kOut, kZ>::kStages));
}

template <int BM, int BN>
cudaError_t prepare() {
  for (cudaError_t e : {allow_smem<BM, BN, kAcc, kNoZ>(), allow_smem<BM, BN, kInt8, kNoZ>(),
                        allow_smem<BM, BN, kInt8, kZInt8>(), allow_smem<BM, BN, kInt8, kZHalf>(),
                        allow_smem<BM, BN, kHalf, kNoZ>(), allow_smem<BM, BN, kHalf, kZInt8>(),
                        allow_smem<BM, BN, kHalf, kZHalf>()})
    if (e != cudaSuccess) return e;
  return cudaSuccess;
}

}  // namespace

bool igemm_s8_tma_supports(int tile, int64_t n, int64_t h, int64_t w, int64_t c, int64_t m, int64_t oh, int64_t ow,
                           int64_t stride_h, int64_t stride_w, int64_t pad_h, int64_t pad_w) {
  if (tile < 0 || tile >= kIgemmTmaTiles) return false;
  if (!igemm_s8_wgmma_available() || c % kBK != 0 || m % 16 != 0) return false;
  const int bm = kTileRows[tile], bn = kTileCols[tile];
  if (bn == 256 && m <= 128) return false;  // a 256-channel tile half empty or worse
  if ((n * oh * ow + bm - 1) / bm > 65535 || (m + bn - 1) / bn > 65535) return false;
  if (stride_h < 1 || stride_h > 8 || stride_w < 1 || stride_w > 8) return false;
  if (pad_h < 0 || pad_w < 0 || pad_h > 127 || pad_w > 127 || h > INT_MAX / 2 || w > INT_MAX / 2) return false;
  int lower[2], upper[2];
  tma_corners(h, w, oh, ow, stride_h, stride_w, pad_h, pad_w, lower, upper);
  for (int corner : {lower[0], lower[1], upper[0], upper[1]})
    if (corner < -128 || corner > 127) return false;
  return tensor_map_encoder_tiled() && tensor_map_encoder_im2col();
}

cudaError_t igemm_s8_tma_prepare(int tile) {
  if (tile < 0 || tile >= kIgemmTmaTiles) return cudaErrorInvalidValue;
  switch (tile) {  // kTileRows / kTileCols order
    case 0: return prepare<128, 128>();
    case 1: return prepare<128, 64>();
    case 2: return prepare<64, 256>();
    default: return prepare<64, 128>();
  }
}

cudaError_t igemm_s8_tma_conv(const IgemmS8Params& p, int tile, int out, cudaStream_t stream) {
  if (!igemm_s8_tma_supports(tile, p.n, p.h, p.w_in, p.c, p.m, p.oh, p.ow, p.stride_h, p.stride_w, p.pad_h, p.pad_w))
    return cudaErrorInvalidValue;
  // TMA base addresses are 16-byte aligned.
  for (const void* ptr : {static_cast<const void*>(p.x), static_cast<const void*>(p.w), static_cast<const void*>(p.z), static_cast<const void*>(p.z_h),
                          static_cast<const void*>(p.y), static_cast<const void*>(p.y_h)})
    if (reinterpret_cast<uintptr_t>(ptr) % 16 != 0) return cudaErrorInvalidValue;
  switch (tile) {  // kTileRows / kTileCols order
    case 0: return launch<128, 128>(p, out, stream);
    case 1: return launch<128, 64>(p, out, stream);
    case 2: return launch<64, 256>(p, out, stream);
    default: return launch<64, 128>(p, out, stream);
  }
}

}  // namespace kiln::cuda::kernels
