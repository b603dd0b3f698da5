// INT8 implicit-GEMM convolution (qconv_igemm.hpp). A CTA computes a BM (output pixels) x BN
// (output channels) tile; its warps a WM x WN tile each, with mma.sync m16n8k32 (s8 x s8 -> s32).
// Per stage a 64-byte slice of the reduction (ky, kx, c order, the weights' order) is copied into
// shared memory with 16-byte cp.async (src-size 0 where the window leaves X: zero fill); rows are
// 64 bytes, their four 16-byte chunks XOR-swizzled by (row / 2) % 4 so that ldmatrix's eight row
// reads of one chunk hit eight distinct bank groups. c % 16 == 0 keeps each chunk inside one
// window position, so a thread tracks (ky, kx, c) incrementally with no division in the loop.
// The "wg" tiles (sm_90a) keep that pipeline but multiply with Hopper's warpgroup MMA instead: each
// warpgroup (4 warps) computes 64 output pixels x BN channels per wgmma, reading both operands
// from the same swizzled stages (the 64-byte swizzle above is wgmma's 64-byte swizzle mode), so
// the ldmatrix loads and their register traffic are gone.
#include <climits>
#include <type_traits>

#include "backends/cuda/layers/cp_async.cuh"
#include "backends/cuda/layers/qconv_igemm.hpp"
#include "backends/cuda/layers/qconv_tma.hpp"
#include "backends/cuda/layers/sm90a.hpp"
#include "backends/cuda/layers/wgmma.cuh"
#include "util/fast_div.hpp"

namespace kiln::cuda::kernels {

namespace {

constexpr int kBK = 64;  // reduction bytes per stage

// Wg: the main loop runs wgmma, one warpgroup per 64 rows (then WM = 16, WN = BN: each warp holds
// 16 rows x BN columns of the accumulators, in mma.sync's fragment layout).
template <int BM_, int BN_, int WM_, int WN_, int MinBlocks_, bool Wg_ = false>
struct Cfg {
  static constexpr int BM = BM_, BN = BN_, WM = WM_, WN = WN_, kMinBlocks = MinBlocks_;
  static constexpr bool kWg = Wg_;
  // Stages in shared memory, and how many are loaded ahead of the one being multiplied: mma.sync
  // waits for its multiplication, so all but the current stage; wgmma keeps one multiplication in
  // flight while the next is issued, so the stage it reads is not reloaded until one step later.
  static constexpr int kStages = Wg_ ? 5 : 4;
  static constexpr int kPrefetch = Wg_ ? kStages - 2 : kStages - 1;
  static constexpr int kWarpsM = BM / WM, kWarpsN = BN / WN;
  static constexpr int kThreads = 32 * kWarpsM * kWarpsN;
  static constexpr int kMT = WM / 16, kNT = WN / 8;
  static constexpr int kRowStep = kThreads / 4;  // rows covered by one pass of 16-byte chunks
  static constexpr int kARows = BM / kRowStep, kBRows = BN / kRowStep;
  static constexpr int kStageBytes = (BM + BN) * kBK;
  static constexpr int kPipeBytes = kStages * kStageBytes;
  // int32s per row of the epilogue tile, padded by 8: the accumulator stores (8 rows x 32 bytes
  // per warp) land in 4 rows per 128-byte wavefront without bank conflicts.
  static constexpr int kEpiStride = BN + 8;
  static constexpr int kEpiBytes = BM * kEpiStride * 4;
  // wgmma's swizzle works on absolute shared addresses: the stages start 512-byte aligned.
  static constexpr int kAlign = Wg_ ? 512 : 0;
  static constexpr int kSmem = (kPipeBytes > kEpiBytes ? kPipeBytes : kEpiBytes) + kAlign;
  static_assert(BM % kRowStep == 0 && BN % kRowStep == 0 && kNT % 2 == 0 && BN % 16 == 0);
  static_assert(!Wg_ || (WM == 16 && WN == BN && BM % 64 == 0 && (BN == 64 || BN == 128 || BN == 256)));
};

using Big = Cfg<128, 128, 64, 32, 2>;   // config 0
using Small = Cfg<64, 64, 32, 32, 4>;   // config 1: few pixels
using Narrow = Cfg<128, 64, 64, 32, 3>; // config 2: 64 output channels
using WgBig = Cfg<128, 128, 16, 128, 2, true>;  // config 3: two warpgroups
using WgNarrow = Cfg<128, 64, 16, 64, 2, true>; // config 4
using WgSmall = Cfg<64, 128, 16, 128, 3, true>; // config 5: one warpgroup
using WgTiny = Cfg<64, 64, 16, 64, 4, true>;    // config 6
using WgWide = Cfg<64, 256, 16, 256, 2, true>;  // config 7: 128 accumulators a thread, for M > 128

// Byte offset of 16-byte chunk `chunk` (0..3) of row `row` in a stage's 64-byte-row tile.
__device__ __forceinline__ int swz(int row, int chunk) { return row * kBK + ((chunk ^ ((row >> 1) & 3)) << 4); }

// Column of int32 `col` in a row of the epilogue tile: its 16-byte group g moves to g ^ ((g / 8) % 4),
// so that the eight threads of a 16-byte read phase (one row, 16-channel chunks 0..7, the same
// group of each) hit eight distinct bank groups; the accumulator stores only permute.
__device__ __forceinline__ int epi_col(int col) {
  const int g = col >> 2;
  return ((g ^ ((g >> 3) & 3)) << 2) | (col & 3);
}

// cp_async16 reads through L2 only (.cg): going through L1 (.ca) for the 3x3 windows' re-reads
// measured 5-10% slower.

__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], uint32_t addr) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr));
}

__device__ __forceinline__ void mma_s8(int (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k32.row.col.s32.s8.s8.s32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%0,%1,%2,%3};\n"
      : "+r"(c[0]), "+r"(c[1]), "+r"(c[2]), "+r"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// What the epilogue writes, and the residual it reads (compile-time: no per-value branches).
enum Out { kAcc = 0, kInt8 = 1, kHalf = 2 };
enum Res { kNoZ = 0, kZInt8 = 1, kZHalf = 2 };

// Exact int32 -> float without a conversion instruction, for |v| <= 2^22: v added to the bits of
// 1.5 * 2^23 is that float plus v (one unit per step there), from which 1.5 * 2^23 is subtracted.
template <bool kSmall>
__device__ __forceinline__ float acc_to_float(int v) {
  if constexpr (kSmall) return __int_as_float(v + 0x4B400000) - 12582912.0f;
  else return static_cast<float>(v);
}

// Four int8 (a lowest) to floats, exactly: each byte, offset to unsigned (^ 0x80), becomes the low
// byte of 1.5 * 2^23's bits (a permute), i.e. the float 1.5 * 2^23 + z + 128.
__device__ __forceinline__ void s8x4_to_float(int word, float* out) {
  const uint32_t u = static_cast<uint32_t>(word) ^ 0x80808080u;
#pragma unroll
  for (int k = 0; k < 4; ++k) out[k] = __uint_as_float(__byte_perm(u, 0x4B400000u, 0x7650u + k)) - 12583040.0f;
}

// A float already clamped to [-128, 127] rounded half to even by adding 1.5 * 2^23 (an FADD,
// round to nearest even): the low byte of the sum's bits is the int8 (two's complement).
__device__ __forceinline__ uint32_t round_s8_bits(float f) { return __float_as_uint(f + 12582912.0f); }

// The low bytes of four words, a lowest, in one word.
__device__ __forceinline__ uint32_t pack_low_bytes(uint32_t a, uint32_t b, uint32_t c, uint32_t d) {
  return __byte_perm(__byte_perm(a, b, 0x0040u), __byte_perm(c, d, 0x0040u), 0x5410u);
}

template <class C, int kOut, int kZ>
__global__ void __launch_bounds__(C::kThreads, C::kMinBlocks)
    igemm_s8_kernel(const IgemmS8Params p, const FastDiv div_hw, const FastDiv div_ow) {
  extern __shared__ __align__(128) uint8_t smem_raw[];
  uint8_t* smem = smem_raw;
  if constexpr (C::kAlign > 0) smem += (C::kAlign - (smem_u32(smem_raw) & (C::kAlign - 1))) & (C::kAlign - 1);
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int warp_m = warp / C::kWarpsN, warp_n = warp % C::kWarpsN;
  const int rows = p.n * p.oh * p.ow;
  const int K = p.kh * p.kw * p.c;
  const int m0 = blockIdx.y * C::BM, n0 = blockIdx.x * C::BN;
  const int j = tid & 3;  // this thread's 16-byte chunk of every row it copies

  // The A (window) rows this thread copies: image base offset and the window's top-left corner.
  int64_t a_base[C::kARows];
  int a_iy[C::kARows], a_ix[C::kARows];
#pragma unroll
  for (int i = 0; i < C::kARows; ++i) {
    const int pix = m0 + tid / 4 + i * C::kRowStep;
    if (pix < rows) {
      const int img = static_cast<int>(div_hw.div(pix)), rem = pix - img * static_cast<int>(div_hw.d);
      const int oy = static_cast<int>(div_ow.div(rem)), ox = rem - oy * p.ow;
      a_base[i] = static_cast<int64_t>(img) * p.h * p.w_in * p.c;
      a_iy[i] = oy * p.stride_h - p.pad_h;
      a_ix[i] = ox * p.stride_w - p.pad_w;
    } else {
      a_base[i] = 0;
      a_iy[i] = INT_MIN / 2;  // never inside X
      a_ix[i] = 0;
    }
  }
  // The epilogue's chunks: 16 channels of one pixel per thread and step. kThreads is a multiple of
  // kChunks, so a thread's channel chunk is the same in every step.
  constexpr int kChunks = C::BN / 16;
  constexpr int kEpiSteps = C::BM * kChunks / C::kThreads;
  static_assert(C::BM * kChunks % C::kThreads == 0 && C::kThreads % kChunks == 0);
  // Residual: its tile is fetched into L2 now, while the main loop runs; the epilogue then reads it
  // from L2 instead of waiting on DRAM once per step (the residual convs are 1x1 ones with a short
  // main loop, where that wait dominated).
  if constexpr (kZ != kNoZ) {
#pragma unroll
    for (int step = 0; step < kEpiSteps; ++step) {
      const int idx = tid + step * C::kThreads;
      const int pix = m0 + idx / kChunks, ch0 = n0 + (idx % kChunks) * 16;
      if (pix >= rows || ch0 >= p.m) continue;
      const int64_t off = static_cast<int64_t>(pix) * p.m + ch0;
      const void* addr = kZ == kZInt8 ? static_cast<const void*>(p.z + off) : static_cast<const void*>(p.z_h + off);
      asm volatile("prefetch.global.L2 [%0];\n" ::"l"(addr));
    }
  }
  const int8_t* b_row[C::kBRows];
  bool b_ok[C::kBRows];
#pragma unroll
  for (int i = 0; i < C::kBRows; ++i) {
    const int mm = n0 + tid / 4 + i * C::kRowStep;
    b_ok[i] = mm < p.m;
    b_row[i] = p.w + static_cast<int64_t>(b_ok[i] ? mm : 0) * K;
  }
  // The reduction position of this thread's chunk in the next stage to load (kg < 64 and c >= 16:
  // at most three steps, no division).
  int kg = 16 * j;
  int kc = kg, kx = 0, ky = 0;
  while (kc >= p.c) {
    kc -= p.c;
    if (++kx == p.kw) {
      kx = 0;
      ++ky;
    }
  }

  auto load_stage = [&](int stage) {
    uint8_t* sa = smem + stage * C::kStageBytes;
    uint8_t* sb = sa + C::BM * kBK;
    const bool kin = kg < K;
#pragma unroll
    for (int i = 0; i < C::kARows; ++i) {
      const int r = tid / 4 + i * C::kRowStep;
      const int iy = a_iy[i] + ky, ix = a_ix[i] + kx;
      const bool ok = kin && static_cast<unsigned>(iy) < static_cast<unsigned>(p.h) &&
                      static_cast<unsigned>(ix) < static_cast<unsigned>(p.w_in);
      const int8_t* src = ok ? p.x + a_base[i] + (static_cast<int64_t>(iy) * p.w_in + ix) * p.c + kc : p.x;
      cp_async16(smem_u32(sa + swz(r, j)), src, ok ? 16 : 0);
    }
#pragma unroll
    for (int i = 0; i < C::kBRows; ++i) {
      const int r = tid / 4 + i * C::kRowStep;
      const bool ok = kin && b_ok[i];
      cp_async16(smem_u32(sb + swz(r, j)), ok ? b_row[i] + kg : p.w, ok ? 16 : 0);
    }
    // Next stage: 64 bytes further along (ky, kx, c).
    kg += kBK;
    kc += kBK;
    while (kc >= p.c) {
      kc -= p.c;
      if (++kx == p.kw) {
        kx = 0;
        ++ky;
      }
    }
  };

  int acc[C::kMT][C::kNT][4];
#pragma unroll
  for (int a = 0; a < C::kMT; ++a)
#pragma unroll
    for (int b = 0; b < C::kNT; ++b)
#pragma unroll
      for (int e = 0; e < 4; ++e) acc[a][b][e] = 0;

  const int KT = (K + kBK - 1) / kBK;
#pragma unroll
  for (int s = 0; s < C::kPrefetch; ++s) {
    if (s < KT) load_stage(s);
    cp_async_commit();
  }
  if constexpr (C::kWg) {
    int* d = &acc[0][0][0];
    const int wg = warp / 4;
    for (int kt = 0; kt < KT; ++kt) {
      cp_async_wait<C::kPrefetch - 1>();
      wgmma::fence_async_shared();  // this thread's cp.async writes, visible to wgmma
      __syncthreads();              // stage kt landed for every thread; stage kt-2 is no longer read
      const uint32_t sa = smem_u32(smem + (kt % C::kStages) * C::kStageBytes);
      const uint32_t a = sa + wg * 64 * kBK, b = sa + C::BM * kBK;
      wgmma::fence();
#pragma unroll
      for (int ks = 0; ks < 2; ++ks) {  // two k32 steps per 64-byte stage
        const uint64_t da = wgmma::desc_k64(a + 32 * ks), db = wgmma::desc_k64(b + 32 * ks);
        if constexpr (C::BN == 256) wgmma::wgmma_m64n256k32_s8(d, da, db, 1);
        else if constexpr (C::BN == 128) wgmma::wgmma_m64n128k32_s8(d, da, db, 1);
        else wgmma::wgmma_m64n64k32_s8(d, da, db, 1);
      }
      wgmma::commit();
      // The copies into stage kt-2's buffer overlap the multiplications: every thread waited for
      // its warpgroup's wgmma of kt-2 (wait<1> below, one step ago) before the barrier above.
      if (kt + C::kPrefetch < KT) load_stage((kt + C::kPrefetch) % C::kStages);
      cp_async_commit();
      wgmma::wait<1>();  // kt-1's multiplication done; kt's may still run
    }
    wgmma::wait<0>();
#pragma unroll
    for (int i = 0; i < C::kMT * C::kNT * 4; ++i) wgmma::fence_operand(d[i]);
  } else {
    for (int kt = 0; kt < KT; ++kt) {
      cp_async_wait<C::kPrefetch - 1>();
      __syncthreads();  // stage kt landed for every thread; stage kt-1 is no longer read
      if (kt + C::kPrefetch < KT) load_stage((kt + C::kPrefetch) % C::kStages);
      cp_async_commit();
      const uint8_t* sa = smem + (kt % C::kStages) * C::kStageBytes;
      const uint8_t* sb = sa + C::BM * kBK;
#pragma unroll
      for (int ks = 0; ks < 2; ++ks) {  // two k32 steps per 64-byte stage
        uint32_t af[C::kMT][4];
        uint32_t bf[C::kNT][2];
#pragma unroll
        for (int mt = 0; mt < C::kMT; ++mt) {
          // Matrices: rows 0-7 / 8-15 of the m16 tile x bytes 0-15 / 16-31 of the k32 step.
          const int row = warp_m * C::WM + mt * 16 + (lane & 7) + ((lane >> 3) & 1) * 8;
          ldmatrix_x4(af[mt], smem_u32(sa + swz(row, ks * 2 + (lane >> 4))));
        }
#pragma unroll
        for (int np = 0; np < C::kNT / 2; ++np) {
          // Matrices: channels 0-7 k 0-15, 0-7 k 16-31, 8-15 k 0-15, 8-15 k 16-31.
          const int row = warp_n * C::WN + np * 16 + (lane & 7) + (lane >> 4) * 8;
          uint32_t r[4];
          ldmatrix_x4(r, smem_u32(sb + swz(row, ks * 2 + ((lane >> 3) & 1))));
          bf[2 * np][0] = r[0];
          bf[2 * np][1] = r[1];
          bf[2 * np + 1][0] = r[2];
          bf[2 * np + 1][1] = r[3];
        }
#pragma unroll
        for (int mt = 0; mt < C::kMT; ++mt)
#pragma unroll
          for (int nt = 0; nt < C::kNT; ++nt) mma_s8(acc[mt][nt], af[mt], bf[nt][0], bf[nt][1]);
      }
    }
  }
  cp_async_wait<0>();
  __syncthreads();  // the pipeline's shared memory becomes the epilogue tile

  // Accumulators -> shared tile [BM][kEpiStride] (c0,c1: row g, columns 2t, 2t+1; c2,c3: row g+8).
  int* tile = reinterpret_cast<int*>(smem);
  const int g = lane >> 2, t = lane & 3;
  if constexpr (C::kWg) {
    // warp_n = 0 and WM = 16: epi_col(nt * 8 + 2t) is a compile-time offset plus one of two per-thread
    // ones (t / 2, XORed with bit 2 of nt), so every store is a base register plus an immediate.
    int* const row = tile + (warp_m * 16 + g) * C::kEpiStride;
    int* const base[2] = {row + epi_col(2 * t), row + epi_col(32 + 2 * t) - 32};
#pragma unroll
    for (int nt = 0; nt < C::kNT; ++nt) {
      // 16-byte group 2nt + t/2 XOR s = (nt / 4) % 4: (2nt ^ (s & 2)) + (t/2 ^ (s & 1)), the second
      // term in base[s & 1].
      const int s = (nt >> 2) & 3, fixed = ((2 * nt) ^ (s & 2)) * 4;
      int* const at = base[(nt >> 2) & 1] + fixed;
      *reinterpret_cast<int2*>(at) = make_int2(acc[0][nt][0], acc[0][nt][1]);
      *reinterpret_cast<int2*>(at + 8 * C::kEpiStride) = make_int2(acc[0][nt][2], acc[0][nt][3]);
    }
  } else {
#pragma unroll
    for (int mt = 0; mt < C::kMT; ++mt)
#pragma unroll
      for (int nt = 0; nt < C::kNT; ++nt) {
        const int r = warp_m * C::WM + mt * 16 + g, col = warp_n * C::WN + nt * 8 + 2 * t;
        *reinterpret_cast<int2*>(tile + r * C::kEpiStride + epi_col(col)) = make_int2(acc[mt][nt][0], acc[mt][nt][1]);
        *reinterpret_cast<int2*>(tile + (r + 8) * C::kEpiStride + epi_col(col)) =
            make_int2(acc[mt][nt][2], acc[mt][nt][3]);
      }
  }
  __syncthreads();

  // 16 channels of one pixel per thread and step: coalesced 16-byte loads (Z) and stores (Y). A
  // thread's channel chunk cc is the same in every step (kThreads is a multiple of kChunks) and its
  // row advances by kStepRows, so every address below is a per-thread base plus a step offset.
  constexpr int kStepRows = C::kThreads / kChunks;
  const int r0 = tid / kChunks, cc = tid % kChunks;
  const int ch0 = n0 + cc * 16;
  const bool ch_ok = ch0 < p.m;
  const int* lds[4];
#pragma unroll
  for (int q = 0; q < 4; ++q) lds[q] = tile + r0 * C::kEpiStride + epi_col(cc * 16 + 4 * q);
  const int64_t first = static_cast<int64_t>(m0 + r0) * p.m + ch0, step_stride = static_cast<int64_t>(kStepRows) * p.m;
  // The residual of every step is loaded first: kEpiSteps loads in flight per thread, not one.
  int4 zraw[kZ != kNoZ ? kEpiSteps : 1][2];
  if constexpr (kZ != kNoZ) {
#pragma unroll
    for (int step = 0; step < kEpiSteps; ++step) {
      zraw[step][0] = zraw[step][1] = make_int4(0, 0, 0, 0);
      if (m0 + r0 + step * kStepRows >= rows || !ch_ok) continue;
      const int64_t off = first + step * step_stride;
      if constexpr (kZ == kZInt8) {
        zraw[step][0] = __ldg(reinterpret_cast<const int4*>(p.z + off));
      } else {
        zraw[step][0] = __ldg(reinterpret_cast<const int4*>(p.z_h + off));
        zraw[step][1] = __ldg(reinterpret_cast<const int4*>(p.z_h + off) + 1);
      }
    }
  }
  // Its alpha and bias are loaded once: 16 floats each at ch0 (a multiple of 16 into a cudaMalloc'd
  // buffer; p.m % 16 == 0 where the epilogue is fused). For int8 outputs they and z_scale come
  // pre-divided by y_scale (below).
  float al[16], bi[16];
  if constexpr (kOut != kAcc) {
#pragma unroll
    for (int q = 0; q < 4; ++q) {
      const float4 a4 = ch_ok ? __ldg(reinterpret_cast<const float4*>(p.alpha + ch0) + q) : make_float4(0, 0, 0, 0);
      const float4 b4 = p.bias && ch_ok ? __ldg(reinterpret_cast<const float4*>(p.bias + ch0) + q)
                                        : make_float4(0, 0, 0, 0);
      al[4 * q] = a4.x;
      al[4 * q + 1] = a4.y;
      al[4 * q + 2] = a4.z;
      al[4 * q + 3] = a4.w;
      bi[4 * q] = b4.x;
      bi[4 * q + 1] = b4.y;
      bi[4 * q + 2] = b4.z;
      bi[4 * q + 3] = b4.w;
    }
  }
  // The int8 epilogue, per value: one FMA (two with a residual), a clamp and the rounding:
  // (v * alpha + bias + z * z_scale) / y_scale with 1 / y_scale folded into the factors. It rounds
  // like q_epilogue (half to even, saturate) but for values within float rounding of a .5
  // boundary, where it may land one step away. Relu is the clamp's lower bound. (A NaN would
  // become that bound, not 0: the layers fuse this epilogue only where its factors are finite.)
  // No conversion instruction (a quarter-rate pipe): sums known to stay within 2^22 (p.acc_small)
  // become floats by exponent bias (acc_to_float), int8 residuals by byte permutes
  // (s8x4_to_float), and the clamped result is rounded by adding 1.5 * 2^23 (the low byte of its
  // bits is then the int8). On the H200 that alone changed nothing measurable (the kernel is
  // bound by its instruction count and latency, docs/int8-cuda.md), at about the same count.
  float z_mul = p.z_scale;
  if constexpr (kOut == kInt8) {
    const float inv_y_scale = 1.0f / p.y_scale;  // one division per thread
#pragma unroll
    for (int e = 0; e < 16; ++e) {
      al[e] *= inv_y_scale;
      bi[e] *= inv_y_scale;
    }
    z_mul *= inv_y_scale;
  }
  const float q_lo = p.relu ? 0.f : -128.f;
  auto epilogue = [&](auto small) {
    constexpr bool kSmall = decltype(small)::value;
#pragma unroll
    for (int step = 0; step < kEpiSteps; ++step) {
      if (m0 + r0 + step * kStepRows >= rows || !ch_ok) continue;
      int v[16];
#pragma unroll
      for (int q = 0; q < 4; ++q) {
        const int4 s = *reinterpret_cast<const int4*>(lds[q] + step * kStepRows * C::kEpiStride);
        v[4 * q] = s.x;
        v[4 * q + 1] = s.y;
        v[4 * q + 2] = s.z;
        v[4 * q + 3] = s.w;
      }
      if constexpr (kOut != kAcc) {
        // p.m % 16 == 0: all 16 channels exist; y, z rows 16-byte aligned.
        const int64_t off = first + step * step_stride;
        float zf[16];
        if constexpr (kZ == kZInt8) {
          const int4 zw = zraw[step][0];
          s8x4_to_float(zw.x, zf);
          s8x4_to_float(zw.y, zf + 4);
          s8x4_to_float(zw.z, zf + 8);
          s8x4_to_float(zw.w, zf + 12);
        } else if constexpr (kZ == kZHalf) {
          alignas(16) __half zb[16];
          reinterpret_cast<int4*>(zb)[0] = zraw[step][0];
          reinterpret_cast<int4*>(zb)[1] = zraw[step][1];
#pragma unroll
          for (int e = 0; e < 16; ++e) zf[e] = __half2float(zb[e]);
        }
        constexpr bool has_z = kZ != kNoZ;
        if constexpr (kOut == kInt8) {
          uint32_t q[16];
#pragma unroll
          for (int e = 0; e < 16; ++e) {
            float f = fmaf(acc_to_float<kSmall>(v[e]), al[e], bi[e]);
            if constexpr (has_z) f = fmaf(zf[e], z_mul, f);
            q[e] = round_s8_bits(fminf(fmaxf(f, q_lo), 127.f));
          }
          *reinterpret_cast<uint4*>(p.y + off) =
              make_uint4(pack_low_bytes(q[0], q[1], q[2], q[3]), pack_low_bytes(q[4], q[5], q[6], q[7]),
                         pack_low_bytes(q[8], q[9], q[10], q[11]), pack_low_bytes(q[12], q[13], q[14], q[15]));
        } else {
          alignas(16) __half2 out[8];
#pragma unroll
          for (int e = 0; e < 16; e += 2) {
            // The same float operations, in the same order, as q_epilogue.
            float f[2];
#pragma unroll
            for (int h = 0; h < 2; ++h) {
              f[h] = acc_to_float<kSmall>(v[e + h]) * al[e + h];
              if (p.bias) f[h] += bi[e + h];
              if constexpr (has_z) f[h] += zf[e + h] * z_mul;
              if (p.relu) f[h] = fmaxf(f[h], 0.f);
            }
            out[e / 2] = __floats2half2_rn(f[0], f[1]);  // as q_epilogue's from_f<__half>
          }
          reinterpret_cast<int4*>(p.y_h + off)[0] = reinterpret_cast<const int4*>(out)[0];
          reinterpret_cast<int4*>(p.y_h + off)[1] = reinterpret_cast<const int4*>(out)[1];
        }
      } else {
        int32_t* dst = p.acc + static_cast<int64_t>(m0 + r0 + step * kStepRows) * p.acc_stride + ch0;
        if (ch0 + 16 <= p.m) {  // acc_stride % 4 == 0: 16-byte aligned
#pragma unroll
          for (int q = 0; q < 4; ++q)
            reinterpret_cast<int4*>(dst)[q] = make_int4(v[4 * q], v[4 * q + 1], v[4 * q + 2], v[4 * q + 3]);
        } else {
#pragma unroll
          for (int e = 0; e < 16; ++e)  // unrolled: v stays in registers
            if (ch0 + e < p.m) dst[e] = v[e];
        }
      }
    }
  };
  // A uniform branch around the whole loop: no per-value select between the two conversions.
  if (kOut != kAcc && p.acc_small) epilogue(std::true_type{});
  else epilogue(std::false_type{});
}

template <class C>
dim3 grid_of(int64_t rows, int64_t m) {
  return dim3(static_cast<unsigned>((m + C::BN - 1) / C::BN), static_cast<unsigned>((rows + C::BM - 1) / C::BM));
}

// Over 48 KiB of dynamic shared memory needs the opt-in, once per device (igemm_s8_prepare).
template <class C>
cudaError_t prepare() {
  for (auto* k : {igemm_s8_kernel<C, kAcc, kNoZ>, igemm_s8_kernel<C, kInt8, kNoZ>, igemm_s8_kernel<C, kInt8, kZInt8>,
                  igemm_s8_kernel<C, kInt8, kZHalf>, igemm_s8_kernel<C, kHalf, kNoZ>, igemm_s8_kernel<C, kHalf, kZInt8>,
                  igemm_s8_kernel<C, kHalf, kZHalf>}) {
    cudaError_t e = cudaFuncSetAttribute(k, cudaFuncAttributeMaxDynamicSharedMemorySize, C::kSmem);
    if (e != cudaSuccess) return e;
  }
  return cudaSuccess;
}

// Dynamic shared memory of one launch: a reduction of KT < kStages stages only ever touches stages
// 0..KT-1 (loads are issued for kt < KT, stage kt % kStages), so a short one (a 1x1 convolution over
// 64 channels: one stage) asks for less and more CTAs fit on an SM.
template <class C>
int smem_bytes(const IgemmS8Params& p) {
  const int kt = (p.kh * p.kw * p.c + kBK - 1) / kBK;
  const int pipe = (kt < C::kStages ? kt : C::kStages) * C::kStageBytes;
  return (pipe > C::kEpiBytes ? pipe : C::kEpiBytes) + C::kAlign;
}

template <class C, int kOut>
void launch_out(const IgemmS8Params& p, dim3 grid, FastDiv hw, FastDiv ow, cudaStream_t stream) {
  const int smem = smem_bytes<C>(p);
  if (p.z) igemm_s8_kernel<C, kOut, kZInt8><<<grid, C::kThreads, smem, stream>>>(p, hw, ow);
  else if (p.z_h) igemm_s8_kernel<C, kOut, kZHalf><<<grid, C::kThreads, smem, stream>>>(p, hw, ow);
  else igemm_s8_kernel<C, kOut, kNoZ><<<grid, C::kThreads, smem, stream>>>(p, hw, ow);
}

template <class C>
cudaError_t launch(const IgemmS8Params& p, int out, cudaStream_t stream) {
  const int64_t rows = static_cast<int64_t>(p.n) * p.oh * p.ow;
  const dim3 grid = grid_of<C>(rows, p.m);
  const FastDiv hw = FastDiv::of(static_cast<uint32_t>(p.oh * p.ow)), ow = FastDiv::of(static_cast<uint32_t>(p.ow));
  if (out == kInt8) launch_out<C, kInt8>(p, grid, hw, ow, stream);
  else if (out == kHalf) launch_out<C, kHalf>(p, grid, hw, ow, stream);
  else igemm_s8_kernel<C, kAcc, kNoZ><<<grid, C::kThreads, smem_bytes<C>(p), stream>>>(p, hw, ow);  // Z: the epilogue kernel
  return cudaGetLastError();
}

template <class C>
bool fits(int64_t rows, int64_t m) {
  return (rows + C::BM - 1) / C::BM <= 65535 && (m + C::BN - 1) / C::BN <= 65535;
}

// The first TMA configuration (qconv_tma.cu's tiles follow it).
constexpr int kTmaFirst = 8;
static_assert(kTmaFirst + kIgemmTmaTiles == kIgemmConfigs);

// f(C{}) for the configuration's Cfg (config already checked to be in range, below kTmaFirst).
template <class F>
auto with_config(int config, F&& f) {
  switch (config) {
    case 0: return f(Big{});
    case 1: return f(Small{});
    case 2: return f(Narrow{});
    case 3: return f(WgBig{});
    case 4: return f(WgNarrow{});
    case 5: return f(WgSmall{});
    case 6: return f(WgTiny{});
    case 7: return f(WgWide{});
    default: return f(WgBig{});  // not reached: the TMA tiles go to qconv_tma.cu
  }
}

}  // namespace

const char* igemm_s8_config_name(int config) {
  static const char* const kNames[kIgemmConfigs] = {"128x128",  "64x64",    "128x64",  "wg128x128",  "wg128x64",
                                                    "wg64x128", "wg64x64", "wg64x256", "tma128x128", "tma128x64",
                                                    "tma64x256", "tma64x128"};
  return config >= 0 && config < kIgemmConfigs ? kNames[config] : "";
}

bool igemm_s8_wgmma_config(int config) { return config >= 3 && config < kIgemmConfigs; }

bool igemm_s8_wgmma_available() { return sm90a_kernels_available(); }

bool igemm_s8_supports(int64_t n, int64_t h, int64_t w, int64_t c, int64_t m, int64_t kh, int64_t kw, int64_t oh,
                       int64_t ow, int config, int64_t stride_h, int64_t stride_w, int64_t pad_h, int64_t pad_w) {
  if (config < 0 || config >= kIgemmConfigs) return false;
  for (int64_t v : {n, h, w, c, m, kh, kw, oh, ow})
    if (v <= 0 || v > INT32_MAX) return false;
  if (c % 16 != 0) return false;
  const int64_t rows = n * oh * ow;
  if (rows > INT32_MAX || kh * kw * c > INT32_MAX - 2 * kBK || oh * ow > INT32_MAX) return false;
  if (igemm_s8_wgmma_config(config) && !igemm_s8_wgmma_available()) return false;
  if (config >= kTmaFirst)
    return igemm_s8_tma_supports(config - kTmaFirst, n, h, w, c, m, oh, ow, stride_h, stride_w, pad_h, pad_w);
  if (config == 7 && m <= 128) return false;  // a 256-channel tile half empty or worse
  return with_config(config, [&](auto c) { return fits<decltype(c)>(rows, m); });
}

cudaError_t igemm_s8_prepare(int config) {
  if (config < 0 || config >= kIgemmConfigs) return cudaErrorInvalidValue;
  if (igemm_s8_wgmma_config(config) && !igemm_s8_wgmma_available()) return cudaErrorNoKernelImageForDevice;
  if (config >= kTmaFirst) return igemm_s8_tma_prepare(config - kTmaFirst);
  return with_config(config, [](auto c) { return prepare<decltype(c)>(); });
}

cudaError_t igemm_s8_conv(const IgemmS8Params& p, int config, cudaStream_t stream) {
  if (!igemm_s8_supports(p.n, p.h, p.w_in, p.c, p.m, p.kh, p.kw, p.oh, p.ow, config, p.stride_h, p.stride_w, p.pad_h,
                         p.pad_w))
    return cudaErrorInvalidValue;
  if ((p.y && p.y_h) || (p.z && p.z_h)) return cudaErrorInvalidValue;
  const int out = p.y ? kInt8 : p.y_h ? kHalf : kAcc;
  if (out != kAcc && (!igemm_s8_fusable(p.m) || !p.alpha)) return cudaErrorInvalidValue;
  if (out == kAcc && (!p.acc || p.acc_stride % 4 != 0 || p.acc_stride < p.m)) return cudaErrorInvalidValue;
  if (config >= kTmaFirst) return igemm_s8_tma_conv(p, config - kTmaFirst, out, stream);
  return with_config(config, [&](auto c) { return launch<decltype(c)>(p, out, stream); });
}

}  // namespace kiln::cuda::kernels
