// kiln.Attention, FlashAttention-2 style forward kernel (float16/bfloat16, head dim 32/64/128).
// A CTA of 4 warps takes 64 query rows of one (batch, head); each warp owns 16 rows. The warp's Q
// fragments are loaded once (ldmatrix) and stay in registers; K/V tiles of 64 keys stream through
// double-buffered shared memory (cp.async). S = Q K^T (mma.sync m16n8k16, float accumulation)
// stays in registers; scale, mask and the online softmax run there (a row's values are spread
// over the 4 lanes of a quad: shuffles reduce max and sum). P is rounded to T in registers and
// used directly as the A operand of O += P V (the m16n8 accumulator layout of two adjacent key
// tiles is the m16n8k16 A layout), V read with ldmatrix.trans. O stays in registers until the end,
// then goes through shared memory for 16-byte stores into the strided output.
// Semantics as attention.cu: keys past Sk are -inf (their V rows zero-filled), rows whose scores
// are all -inf give NaN, or 0 with nan_to_zero.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cmath>
#include <cstdint>
#include <type_traits>

#include "backends/cuda/layers/attention_kernels.hpp"
#include "backends/cuda/layers/device_types.cuh"

namespace kiln::cuda {
namespace {

using kernels::to_f;

constexpr int kFaWarps = 4, kFaThreads = kFaWarps * 32, kFaBM = 64, kFaBN = 64;
constexpr float kLog2e = 1.4426950408889634f;

template <int D>
struct FaLayout {
  static constexpr int ld = D + 8;  // row pitch (elements): 16-byte rows on distinct banks for ldmatrix
  static constexpr int tile = kFaBM * ld;
  // Q, then K[2], then V[2] (elements of T).
  static constexpr int q_off = 0, k_off = tile, v_off = 3 * tile, elems = 5 * tile;
};

__device__ __forceinline__ uint32_t smem_addr(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

// 16 bytes global -> shared; bytes past src_bytes (0 or 16) are zero-filled.
__device__ __forceinline__ void cp_async16(void* dst, const void* src, int src_bytes) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem_addr(dst)), "l"(src), "r"(src_bytes));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory");
}

// 2^x (ex2.approx: -inf gives 0).
__device__ __forceinline__ float fast_exp2(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
  return y;
}

__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], const void* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_addr(p)));
}
__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t (&r)[4], const void* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_addr(p)));
}

// c += a * b, m16n8k16, float accumulators.
template <typename T>
__device__ __forceinline__ void mma16816(float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  if constexpr (std::is_same_v<T, __half>) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
        "{%0,%1,%2,%3};\n"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  } else {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
        "{%0,%1,%2,%3};\n"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  }
}

// Two floats as a packed pair of T (x in the low half: the lower column of a fragment).
template <typename T>
__device__ __forceinline__ uint32_t pack2(float x, float y) {
  if constexpr (std::is_same_v<T, __half>) {
    __half2 h = __floats2half2_rn(x, y);
    return *reinterpret_cast<uint32_t*>(&h);
  } else {
    __nv_bfloat162 h = __floats2bfloat162_rn(x, y);
    return *reinterpret_cast<uint32_t*>(&h);
  }
}

// Issues the copy of `rows` (<= 64) rows of D elements at base + r * stride into a 64-row tile;
// the rest of the tile is zero-filled.
template <typename T, int D>
__device__ __forceinline__ void load_tile_async(T* tile, const T* base, int64_t stride, int rows) {
  constexpr int kPerRow = D * static_cast<int>(sizeof(T)) / 16;
  constexpr int kVec = 16 / static_cast<int>(sizeof(T));
  static_assert(kFaBM * kPerRow % kFaThreads == 0);
#pragma unroll
  for (int it = 0; it < kFaBM * kPerRow / kFaThreads; ++it) {
    const int e = threadIdx.x + it * kFaThreads;
    const int r = e / kPerRow, c = (e % kPerRow) * kVec;
    const bool ok = r < rows;
    cp_async16(tile + r * FaLayout<D>::ld + c, ok ? base + r * stride + c : base, ok ? 16 : 0);
  }
}

// Score of key j (< Sk) in the mask row: scaled and masked.
template <typename T>
__device__ __forceinline__ float masked(const AttentionArgs& a, const unsigned char* mrow, int64_t j, float z) {
  if (!mrow) return z;
  if (a.mask_is_fill) return mrow[j * a.ms[3]] ? a.mask_fill : z;
  return z + to_f(reinterpret_cast<const T*>(mrow)[j * a.ms[3]]);
}

template <typename T, int D>
__global__ void __launch_bounds__(kFaThreads, D <= 64 ? 3 : 1) attention_flash(AttentionArgs a, int64_t qblocks) {
  using L = FaLayout<D>;
  constexpr int kDT = D / 8;   // output n-tiles (8 columns each)
  constexpr int kDK = D / 16;  // k-steps of S = Q K^T
  constexpr int kNT = kFaBN / 8;
  extern __shared__ __align__(128) unsigned char smem_raw[];
  T* smem = reinterpret_cast<T*>(smem_raw);
  T* qs = smem + L::q_off;

  const int64_t blk = blockIdx.x;
  const int64_t bh = blk / qblocks, b = bh / a.heads, h = bh % a.heads;
  const int64_t i0 = (blk % qblocks) * kFaBM;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int g = lane >> 2, tig = lane & 3;
  const T* qb = static_cast<const T*>(a.q) + a.q_off + b * a.qs[0] + h * a.qs[1];
  const T* kb = static_cast<const T*>(a.k) + a.k_off + b * a.ks[0] + h * a.ks[1];
  const T* vb = static_cast<const T*>(a.v) + a.v_off + b * a.vs[0] + h * a.vs[1];
  const int ntiles = static_cast<int>((a.sk + kFaBN - 1) / kFaBN);

  load_tile_async<T, D>(qs, qb + i0 * a.qs[2], a.qs[2], static_cast<int>(min(static_cast<int64_t>(kFaBM), a.sq - i0)));
  {
    const int n0 = static_cast<int>(min(static_cast<int64_t>(kFaBN), a.sk));
    load_tile_async<T, D>(smem + L::k_off, kb, a.ks[2], n0);
    load_tile_async<T, D>(smem + L::v_off, vb, a.vs[2], n0);
  }
  cp_async_commit();

  // The thread's two rows: g and g + 8 of the warp's 16.
  const int64_t row0 = i0 + warp * 16 + g, row1 = row0 + 8;
  const unsigned char* mrow[2] = {nullptr, nullptr};
  if (a.mask) {
    const int64_t rows[2] = {row0 < a.sq ? row0 : 0, row1 < a.sq ? row1 : 0};
    const int64_t esz = a.mask_is_fill ? 1 : static_cast<int64_t>(sizeof(T));
#pragma unroll
    for (int r = 0; r < 2; ++r)
      mrow[r] = static_cast<const unsigned char*>(a.mask) + (b * a.ms[0] + h * a.ms[1] + rows[r] * a.ms[2]) * esz;
  }

  uint32_t qf[kDK][4];
  float o[kDT][4];
#pragma unroll
  for (int j = 0; j < kDT; ++j) o[j][0] = o[j][1] = o[j][2] = o[j][3] = 0.f;
  float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.f, 0.f};  // l: this lane's partial row sums

  for (int t = 0; t < ntiles; ++t) {
    const int64_t j0 = static_cast<int64_t>(t) * kFaBN;
    if (t + 1 < ntiles) {  // prefetch the next K/V tiles into the other buffer
      const int64_t j1 = j0 + kFaBN;
      const int n1 = static_cast<int>(min(static_cast<int64_t>(kFaBN), a.sk - j1));
      const int buf = (t + 1) & 1;
      load_tile_async<T, D>(smem + L::k_off + buf * L::tile, kb + j1 * a.ks[2], a.ks[2], n1);
      load_tile_async<T, D>(smem + L::v_off + buf * L::tile, vb + j1 * a.vs[2], a.vs[2], n1);
      cp_async_commit();
      cp_async_wait<1>();
    } else {
      cp_async_wait<0>();
    }
    __syncthreads();
    if (t == 0) {
#pragma unroll
      for (int kk = 0; kk < kDK; ++kk)
        ldmatrix_x4(qf[kk], qs + (warp * 16 + (lane & 15)) * L::ld + kk * 16 + (lane >> 4) * 8);
    }
    const T* kt = smem + L::k_off + (t & 1) * L::tile;
    const T* vt = smem + L::v_off + (t & 1) * L::tile;

    // S = Q K^T: 16 rows x 64 keys per warp; one ldmatrix.x4 gives B for two key tiles.
    float s[kNT][4];
#pragma unroll
    for (int j = 0; j < kNT; ++j) s[j][0] = s[j][1] = s[j][2] = s[j][3] = 0.f;
#pragma unroll
    for (int np = 0; np < kNT / 2; ++np) {
#pragma unroll
      for (int kk = 0; kk < kDK; ++kk) {
        uint32_t kf[4];
        ldmatrix_x4(kf, kt + (np * 16 + (lane & 7) + ((lane >> 4) << 3)) * L::ld + kk * 16 + ((lane >> 3) & 1) * 8);
        mma16816<T>(s[2 * np], qf[kk], kf[0], kf[1]);
        mma16816<T>(s[2 * np + 1], qf[kk], kf[2], kf[3]);
      }
    }

    // Scale, mask (keys past Sk: -inf), online softmax. s[j][e]: row g (e < 2) or g + 8, key
    // j0 + 8 j + 2 tig + (e & 1).
    float tmax[2] = {-INFINITY, -INFINITY};
#pragma unroll
    for (int j = 0; j < kNT; ++j) {
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int r = e >> 1;
        const int64_t key = j0 + 8 * j + 2 * tig + (e & 1);
        float z = -INFINITY;
        if (key < a.sk) z = masked<T>(a, mrow[r], key, s[j][e] * a.scale);
        s[j][e] = z;
        tmax[r] = fmaxf(tmax[r], z);
      }
    }
    float alpha[2], mref[2];
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      tmax[r] = fmaxf(tmax[r], __shfl_xor_sync(0xffffffffu, tmax[r], 1));
      tmax[r] = fmaxf(tmax[r], __shfl_xor_sync(0xffffffffu, tmax[r], 2));
      const float mnew = fmaxf(m[r], tmax[r]);
      // A row whose scores are all -inf so far adds nothing (and must not compute -inf - -inf).
      alpha[r] = mnew == -INFINITY ? 1.f : fast_exp2((m[r] - mnew) * kLog2e);
      mref[r] = mnew == -INFINITY ? 0.f : mnew;  // subtracted before scaling: a finite fill stays finite
      m[r] = mnew;
      l[r] *= alpha[r];
    }
#pragma unroll
    for (int j = 0; j < kDT; ++j) {
      o[j][0] *= alpha[0], o[j][1] *= alpha[0];
      o[j][2] *= alpha[1], o[j][3] *= alpha[1];
    }
    // P (rounded to T) as A fragments: key step kk covers key tiles 2 kk and 2 kk + 1.
    uint32_t pf[kFaBN / 16][4];
#pragma unroll
    for (int j = 0; j < kNT; ++j) {
      float p[4];
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        p[e] = fast_exp2((s[j][e] - mref[e >> 1]) * kLog2e);  // -inf: 0
        l[e >> 1] += p[e];
      }
      pf[j / 2][(j & 1) * 2 + 0] = pack2<T>(p[0], p[1]);
      pf[j / 2][(j & 1) * 2 + 1] = pack2<T>(p[2], p[3]);
    }

    // O += P V: one ldmatrix.x4.trans gives B for two 8-column output tiles.
#pragma unroll
    for (int kk = 0; kk < kFaBN / 16; ++kk) {
#pragma unroll
      for (int dp = 0; dp < kDT / 2; ++dp) {
        uint32_t vf[4];
        ldmatrix_x4_trans(vf, vt + (kk * 16 + (lane & 7) + ((lane >> 3) & 1) * 8) * L::ld + dp * 16 + (lane >> 4) * 8);
        mma16816<T>(o[2 * dp], pf[kk], vf[0], vf[1]);
        mma16816<T>(o[2 * dp + 1], pf[kk], vf[2], vf[3]);
      }
    }
    __syncthreads();  // every warp is done with this buffer before it is refilled
  }

  // Row sums over the quad, then 1/l; all -inf rows: NaN, or 0 with the guard.
  float inv[2];
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    l[r] += __shfl_xor_sync(0xffffffffu, l[r], 1);
    l[r] += __shfl_xor_sync(0xffffffffu, l[r], 2);
    inv[r] = l[r] > 0.f ? 1.f / l[r] : (a.nan_to_zero ? 0.f : __int_as_float(0x7fc00000));
  }
  // Stage the warp's 16 rows in its own (consumed) Q rows, then 16-byte stores.
  T* ow = qs + warp * 16 * L::ld;
#pragma unroll
  for (int j = 0; j < kDT; ++j) {
    *reinterpret_cast<uint32_t*>(ow + g * L::ld + 8 * j + 2 * tig) = pack2<T>(o[j][0] * inv[0], o[j][1] * inv[0]);
    *reinterpret_cast<uint32_t*>(ow + (g + 8) * L::ld + 8 * j + 2 * tig) =
        pack2<T>(o[j][2] * inv[1], o[j][3] * inv[1]);
  }
  __syncwarp();
  constexpr int kPerRow = D * static_cast<int>(sizeof(T)) / 16, kVec = 16 / static_cast<int>(sizeof(T));
  T* yb = static_cast<T*>(a.y) + b * a.ys[0] + h * a.ys[1];
  static_assert(16 * kPerRow % 32 == 0);
#pragma unroll
  for (int it = 0; it < 16 * kPerRow / 32; ++it) {
    const int e = lane + it * 32;
    const int r = e / kPerRow, c = (e % kPerRow) * kVec;
    const int64_t row = i0 + warp * 16 + r;
    if (row < a.sq)
      *reinterpret_cast<uint4*>(yb + row * a.ys[2] + c) = *reinterpret_cast<const uint4*>(ow + r * L::ld + c);
  }
}

template <typename T>
bool eligible(const AttentionArgs& a) {
  if (!(a.d == a.dv && (a.d == 32 || a.d == 64 || a.d == 128))) return false;
  if (a.qs[3] != 1 || a.ks[3] != 1 || a.vs[3] != 1 || a.ys[3] != 1) return false;
  // cp.async / 16-byte stores of rows: offsets, row strides and pointers aligned to 8 elements.
  constexpr int64_t kVec = 16 / sizeof(T);
  const int64_t offs[] = {a.q_off, a.k_off, a.v_off, a.qs[0], a.qs[1], a.qs[2], a.ks[0], a.ks[1],
                          a.ks[2], a.vs[0], a.vs[1], a.vs[2], a.ys[0], a.ys[1], a.ys[2]};
  for (int64_t o : offs)
    if (o % kVec != 0) return false;
  for (const void* p : {a.q, a.k, a.v, static_cast<const void*>(a.y)})
    if (reinterpret_cast<uintptr_t>(p) % 16 != 0) return false;
  return true;
}

template <typename T, int D>
cudaError_t launch(const AttentionArgs& a, cudaStream_t stream) {
  constexpr int bytes = FaLayout<D>::elems * static_cast<int>(sizeof(T));
  // Over 48 KiB of dynamic shared memory needs an opt-in, once per kernel.
  static const cudaError_t opt_in =
      cudaFuncSetAttribute(attention_flash<T, D>, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes);
  if (opt_in != cudaSuccess) return opt_in;
  const int64_t qblocks = (a.sq + kFaBM - 1) / kFaBM;
  const int64_t blocks = a.batch * a.heads * qblocks;
  if (blocks <= 0) return cudaSuccess;
  if (blocks > 0x7fffffff) return cudaErrorInvalidConfiguration;
  // The query blocks of one head are adjacent: they share its K/V tiles in L2.
  attention_flash<T, D><<<static_cast<unsigned>(blocks), kFaThreads, bytes, stream>>>(a, qblocks);
  return cudaGetLastError();
}

template <typename T>
cudaError_t launch_typed(const AttentionArgs& a, cudaStream_t stream) {
  if (a.d == 32) return launch<T, 32>(a, stream);
  if (a.d == 64) return launch<T, 64>(a, stream);
  return launch<T, 128>(a, stream);
}

}  // namespace

bool attention_flash_eligible(DType t, const AttentionArgs& a) {
  if (a.no_flash || a.sk <= 0) return false;
  if (t == DType::kFloat16) return eligible<__half>(a);
  if (t == DType::kBFloat16) return eligible<__nv_bfloat16>(a);
  return false;
}

cudaError_t launch_attention_flash(DType t, const AttentionArgs& a, cudaStream_t stream) {
  if (!attention_flash_eligible(t, a)) return cudaErrorInvalidValue;
  if (t == DType::kFloat16) return launch_typed<__half>(a, stream);
  return launch_typed<__nv_bfloat16>(a, stream);
}

}  // namespace kiln::cuda
