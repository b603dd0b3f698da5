// kiln.Attention, FlashAttention-2 style forward kernel (float16/bfloat16, head dim 32/64/128).
// A CTA of W warps (4 or 8: the "flash64"/"flash128" tactics) takes 16 W query rows of one
// (batch, head); each warp owns 16 rows. The warp's Q fragments are loaded once (ldmatrix) and
// stay in registers; K/V tiles of 64 keys stream through a ring of KS (2, or 4 for d <= 64: the
// "s4" tactics) shared-memory buffers (cp.async, KS - 1 tiles ahead), shared by all W warps. S = Q K^T (mma.sync m16n8k16, float accumulation) stays in
// registers; scale, mask and the online softmax run there in the log2 domain (log2 e folded into
// the scale, exp2 on the SFU; a row's values are spread over the 4 lanes of a quad: shuffles
// reduce max and sum). P is rounded to T in registers and used directly as the A operand of
// O += P V (the m16n8 accumulator layout of two adjacent key tiles is the m16n8k16 A layout), V
// read with ldmatrix.trans. O stays in registers until the end, then goes through shared memory
// for 16-byte stores into the strided output.
// Short sequences (ViT's 197) waste little: warps whose 16 rows all lie past Sq only help load
// the tiles; the last key tile computes only its 16-key chunks that hold keys, and only it tests
// keys against Sk. The mask of a tile is read into registers before the tile's wait (its
// latency hidden behind the copy and S = Q K^T), not per score after the product.
// Semantics as attention.cu: keys past Sk are -inf (their V rows zero-filled), rows whose scores
// are all -inf give NaN, or 0 with nan_to_zero.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cmath>
#include <cstdint>
#include <type_traits>

#include "backends/cuda/layers/attention_kernels.hpp"
#include "backends/cuda/layers/cp_async.cuh"
#include "backends/cuda/layers/device_types.cuh"

namespace kiln::cuda {
namespace {

using kernels::to_f;

constexpr int kFaBN = 64;  // keys per K/V tile
constexpr float kLog2e = 1.4426950408889634f;

// The mask kinds, a template parameter. Masks the same for every query row (ms[2] == 0, e.g.
// BERT's [B,1,1,S]): additive (T) or bool with a fill value, one row per key tile staged in shared
// memory as float. Others: read per score from global memory, additive or bool at run time.
enum FaMask : int { kFaNoMask = 0, kFaAddRow = 1, kFaFillRow = 2, kFaGenericMask = 3 };

template <int D, int W, int KS>
struct FaLayout {
  static constexpr int ld = D + 8;  // row pitch (elements): 16-byte rows on distinct banks for ldmatrix
  static constexpr int bm = 16 * W;  // query rows per CTA
  static constexpr int tile = kFaBN * ld;
  // Q (bm rows), then K[KS], then V[KS] (elements of T), then the row masks [2][64] (float).
  static constexpr int q_off = 0, k_off = bm * ld, v_off = k_off + KS * tile, elems = v_off + KS * tile;
  static constexpr int bytes(int elem_size) { return elems * elem_size + 2 * kFaBN * 4; }
};

// CTAs per SM the register allocation aims at. d <= 64 needs about 165 registers: 4 warps run 3
// CTAs (12 warps; 4 stages: 2 CTAs, their shared memory); 8 warps are held to 128 registers (a
// few spills) for 2 CTAs (16 warps).
template <int D, int W, int KS>
constexpr int fa_min_blocks() {
  return D <= 64 ? (W == 4 && KS == 2 ? 3 : 2) : 1;
}

using kernels::cp_async16;
using kernels::cp_async_commit;
using kernels::cp_async_wait;
using kernels::smem_u32;

// 2^x (ex2.approx: -inf gives 0).
__device__ __forceinline__ float fast_exp2(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
  return y;
}

__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], const void* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_u32(p)));
}
__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t (&r)[4], const void* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_u32(p)));
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

// Issues the copy of `rows` (<= R) rows of D elements at base + r * stride into an R-row tile (NT
// threads); the rest of the tile is zero-filled.
template <typename T, int D, int R, int NT>
__device__ __forceinline__ void load_tile_async(T* tile, const T* base, int64_t stride, int rows) {
  constexpr int kPerRow = D * static_cast<int>(sizeof(T)) / 16;
  constexpr int kVec = 16 / static_cast<int>(sizeof(T));
  constexpr int kLd = D + 8;
  static_assert(R * kPerRow % NT == 0);
#pragma unroll
  for (int it = 0; it < R * kPerRow / NT; ++it) {
    const int e = threadIdx.x + it * NT;
    const int r = e / kPerRow, c = (e % kPerRow) * kVec;
    const bool ok = r < rows;
    cp_async16(smem_u32(tile + r * kLd + c), ok ? base + r * stride + c : base, ok ? 16 : 0);
  }
}

// The mask of key j0 + i (i < 64) for a mask shared by all query rows (kFaAddRow: log2 e times
// the additive mask; kFaFillRow: 1 where the score becomes the fill, else 0). Keys past Sk read 0
// (they are masked by the tail path).
template <typename T, int MK>
__device__ __forceinline__ float row_mask_value(const AttentionArgs& a, const unsigned char* mrow, int64_t key) {
  if (key >= a.sk) return 0.f;
  if constexpr (MK == kFaAddRow) return to_f(reinterpret_cast<const T*>(mrow)[key * a.ms[3]]) * kLog2e;
  else return mrow[key * a.ms[3]] ? 1.f : 0.f;
}

// A score (log2 domain) with a per-element mask read from global memory (kFaGenericMask).
template <typename T>
__device__ __forceinline__ float generic_masked(const AttentionArgs& a, const unsigned char* mrow, int64_t key,
                                                float z, float fill2) {
  if (a.mask_is_fill) return mrow[key * a.ms[3]] ? fill2 : z;
  return z + to_f(reinterpret_cast<const T*>(mrow)[key * a.ms[3]]) * kLog2e;
}

template <typename T, int D, int W, int KS, int MK>
__global__ void __launch_bounds__(W * 32, (fa_min_blocks<D, W, KS>()))
    attention_flash(AttentionArgs a, int64_t qblocks) {
  using L = FaLayout<D, W, KS>;
  static_assert(KS == 2 || KS == 4);
  constexpr int kThreads = W * 32;
  constexpr int kDT = D / 8;   // output n-tiles (8 columns each)
  constexpr int kDK = D / 16;  // k-steps of S = Q K^T
  constexpr int kNT = kFaBN / 8;
  extern __shared__ __align__(128) unsigned char smem_raw[];
  T* smem = reinterpret_cast<T*>(smem_raw);
  T* qs = smem + L::q_off;

  const int64_t blk = blockIdx.x;
  const int64_t bh = blk / qblocks, b = bh / a.heads, h = bh % a.heads;
  const int64_t i0 = (blk % qblocks) * L::bm;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int g = lane >> 2, tig = lane & 3;
  const T* qb = static_cast<const T*>(a.q) + a.q_off + b * a.qs[0] + h * a.qs[1];
  const T* kb = static_cast<const T*>(a.k) + a.k_off + b * a.ks[0] + h * a.ks[1];
  const T* vb = static_cast<const T*>(a.v) + a.v_off + b * a.vs[0] + h * a.vs[1];
  const int ntiles = static_cast<int>((a.sk + kFaBN - 1) / kFaBN);
  // Warps whose rows all lie past Sq only help with the copies (uniform per warp).
  const bool active = i0 + warp * 16 < a.sq;

  load_tile_async<T, D, L::bm, kThreads>(qs, qb + i0 * a.qs[2], a.qs[2],
                                         static_cast<int>(min(static_cast<int64_t>(L::bm), a.sq - i0)));
  // The first KS - 1 K/V tiles, one commit group each (empty past the last tile: the wait below
  // counts groups).
  auto load_kv = [&](int tile) {
    if (tile < ntiles) {
      const int64_t j = static_cast<int64_t>(tile) * kFaBN;
      const int n = static_cast<int>(min(static_cast<int64_t>(kFaBN), a.sk - j));
      const int buf = tile & (KS - 1);
      load_tile_async<T, D, kFaBN, kThreads>(smem + L::k_off + buf * L::tile, kb + j * a.ks[2], a.ks[2], n);
      load_tile_async<T, D, kFaBN, kThreads>(smem + L::v_off + buf * L::tile, vb + j * a.vs[2], a.vs[2], n);
    }
    cp_async_commit();
  };
#pragma unroll
  for (int p = 0; p < KS - 1; ++p) load_kv(p);

  // The thread's two rows: g and g + 8 of the warp's 16.
  const int64_t row0 = i0 + warp * 16 + g, row1 = row0 + 8;
  const unsigned char* mrow[2] = {nullptr, nullptr};
  if constexpr (MK != kFaNoMask) {
    const int64_t rows[2] = {row0 < a.sq ? row0 : 0, row1 < a.sq ? row1 : 0};
    const int64_t esz = a.mask_is_fill ? 1 : static_cast<int64_t>(sizeof(T));
#pragma unroll
    for (int r = 0; r < 2; ++r)
      mrow[r] = static_cast<const unsigned char*>(a.mask) + (b * a.ms[0] + h * a.ms[1] + rows[r] * a.ms[2]) * esz;
  }
  const float scale2 = a.scale * kLog2e;      // scores in the log2 domain
  const float fill2 = a.mask_fill * kLog2e;  // the bool mask's fill, likewise

  uint32_t qf[kDK][4];
  float o[kDT][4];
#pragma unroll
  for (int j = 0; j < kDT; ++j) o[j][0] = o[j][1] = o[j][2] = o[j][3] = 0.f;
  // m: running row max (log2 domain); l: this lane's partial row sums.
  float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.f, 0.f};
  // Row masks: thread k < 64 stages key j0 + k of each tile, read one tile ahead.
  float* mrow_s = reinterpret_cast<float*>(smem_raw + L::elems * sizeof(T));
  constexpr bool kRowMask = MK == kFaAddRow || MK == kFaFillRow;
  if constexpr (kRowMask)
    if (threadIdx.x < kFaBN) mrow_s[threadIdx.x] = row_mask_value<T, MK>(a, mrow[0], threadIdx.x);

  for (int t = 0; t < ntiles; ++t) {
    const int64_t j0 = static_cast<int64_t>(t) * kFaBN;
    const int nk = static_cast<int>(min(static_cast<int64_t>(kFaBN), a.sk - j0));  // keys in this tile
    load_kv(t + KS - 1);  // into the buffer consumed by tile t - 1
    float mnext = 0.f;  // the next tile's row mask, in flight during this tile
    if constexpr (kRowMask)
      if (t + 1 < ntiles && threadIdx.x < kFaBN) mnext = row_mask_value<T, MK>(a, mrow[0], j0 + kFaBN + threadIdx.x);
    cp_async_wait<KS - 1>();  // tile t's group (KS - 1 newer ones may still be in flight)
    __syncthreads();

    if (active) {
      if (t == 0) {
#pragma unroll
        for (int kk = 0; kk < kDK; ++kk)
          ldmatrix_x4(qf[kk], qs + (warp * 16 + (lane & 15)) * L::ld + kk * 16 + (lane >> 4) * 8);
      }
      const T* kt = smem + L::k_off + (t & (KS - 1)) * L::tile;
      const T* vt = smem + L::v_off + (t & (KS - 1)) * L::tile;
      const float* mt = mrow_s + (t & 1) * kFaBN;

      // One key tile; kTail: the last, partial one (nk < 64): only its 16-key chunks that hold keys
      // are computed, and keys past Sk are -inf.
      auto step = [&](auto tail_tag) {
        constexpr bool kTail = decltype(tail_tag)::value;
        const int chunks = kTail ? (nk + 15) / 16 : kFaBN / 16;
        // S = Q K^T: 16 rows x 64 keys per warp; one ldmatrix.x4 gives B for two key tiles.
        float s[kNT][4];
#pragma unroll
        for (int j = 0; j < kNT; ++j) s[j][0] = s[j][1] = s[j][2] = s[j][3] = 0.f;
#pragma unroll
        for (int np = 0; np < kNT / 2; ++np) {
          if (kTail && np >= chunks) continue;
#pragma unroll
          for (int kk = 0; kk < kDK; ++kk) {
            uint32_t kf[4];
            ldmatrix_x4(kf, kt + (np * 16 + (lane & 7) + ((lane >> 4) << 3)) * L::ld + kk * 16 + ((lane >> 3) & 1) * 8);
            mma16816<T>(s[2 * np], qf[kk], kf[0], kf[1]);
            mma16816<T>(s[2 * np + 1], qf[kk], kf[2], kf[3]);
          }
        }

        // Scale, mask, online softmax (log2 domain). s[j][e]: row g (e < 2) or g + 8, key
        // j0 + 8 j + 2 tig + (e & 1).
        float tmax[2] = {-INFINITY, -INFINITY};
#pragma unroll
        for (int j = 0; j < kNT; ++j) {
#pragma unroll
          for (int e = 0; e < 4; ++e) {
            const int r = e >> 1, key = 8 * j + 2 * tig + (e & 1);  // key - j0
            float z = s[j][e] * scale2;
            if constexpr (MK == kFaAddRow) z += mt[key];
            if constexpr (MK == kFaFillRow) z = mt[key] != 0.f ? fill2 : z;
            if constexpr (kTail) {
              if (key >= nk) z = -INFINITY;
              else if constexpr (MK == kFaGenericMask) z = generic_masked<T>(a, mrow[r], j0 + key, z, fill2);
            } else if constexpr (MK == kFaGenericMask) {
              z = generic_masked<T>(a, mrow[r], j0 + key, z, fill2);
            }
            s[j][e] = z;
            tmax[r] = fmaxf(tmax[r], z);
          }
        }
        float mref[2];
#pragma unroll
        for (int r = 0; r < 2; ++r) {
          tmax[r] = fmaxf(tmax[r], __shfl_xor_sync(0xffffffffu, tmax[r], 1));
          tmax[r] = fmaxf(tmax[r], __shfl_xor_sync(0xffffffffu, tmax[r], 2));
          const float mnew = fmaxf(m[r], tmax[r]);
          // A row whose scores are all -inf so far adds nothing (and must not compute -inf - -inf).
          const float alpha = mnew == -INFINITY ? 1.f : fast_exp2(m[r] - mnew);
          mref[r] = mnew == -INFINITY ? 0.f : mnew;  // subtracted before exp2: a finite fill stays finite
          m[r] = mnew;
          l[r] *= alpha;
#pragma unroll
          for (int j = 0; j < kDT; ++j) o[j][2 * r] *= alpha, o[j][2 * r + 1] *= alpha;
        }
        // P (rounded to T) as A fragments: key step kk covers key tiles 2 kk and 2 kk + 1.
        uint32_t pf[kFaBN / 16][4];
#pragma unroll
        for (int j = 0; j < kNT; ++j) {
          float p[4];
#pragma unroll
          for (int e = 0; e < 4; ++e) {
            p[e] = fast_exp2(s[j][e] - mref[e >> 1]);  // -inf: 0
            l[e >> 1] += p[e];
          }
          pf[j / 2][(j & 1) * 2 + 0] = pack2<T>(p[0], p[1]);
          pf[j / 2][(j & 1) * 2 + 1] = pack2<T>(p[2], p[3]);
        }

        // O += P V: one ldmatrix.x4.trans gives B for two 8-column output tiles.
#pragma unroll
        for (int kk = 0; kk < kFaBN / 16; ++kk) {
          if (kTail && kk >= chunks) continue;
#pragma unroll
          for (int dp = 0; dp < kDT / 2; ++dp) {
            uint32_t vf[4];
            ldmatrix_x4_trans(vf,
                              vt + (kk * 16 + (lane & 7) + ((lane >> 3) & 1) * 8) * L::ld + dp * 16 + (lane >> 4) * 8);
            mma16816<T>(o[2 * dp], pf[kk], vf[0], vf[1]);
            mma16816<T>(o[2 * dp + 1], pf[kk], vf[2], vf[3]);
          }
        }
      };
      if (nk == kFaBN) step(std::false_type{});
      else step(std::true_type{});
    }
    if constexpr (kRowMask)
      if (t + 1 < ntiles && threadIdx.x < kFaBN) mrow_s[((t + 1) & 1) * kFaBN + threadIdx.x] = mnext;
    __syncthreads();  // every warp is done with this buffer before it is refilled
  }
  if (!active) return;

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

template <typename T, int D, int W, int KS, int MK>
cudaError_t launch(const AttentionArgs& a, cudaStream_t stream) {
  using L = FaLayout<D, W, KS>;
  constexpr int bytes = L::bytes(static_cast<int>(sizeof(T)));
  // Over 48 KiB of dynamic shared memory needs an opt-in, once per kernel.
  static const cudaError_t opt_in =
      cudaFuncSetAttribute(attention_flash<T, D, W, KS, MK>, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes);
  if (opt_in != cudaSuccess) return opt_in;
  const int64_t qblocks = (a.sq + L::bm - 1) / L::bm;
  const int64_t blocks = a.batch * a.heads * qblocks;
  if (blocks <= 0) return cudaSuccess;
  if (blocks > 0x7fffffff) return cudaErrorInvalidConfiguration;
  // The query blocks of one head are adjacent: they share its K/V tiles in L2.
  attention_flash<T, D, W, KS, MK><<<static_cast<unsigned>(blocks), W * 32, bytes, stream>>>(a, qblocks);
  return cudaGetLastError();
}

template <typename T, int D, int W, int KS>
cudaError_t launch_masked(const AttentionArgs& a, cudaStream_t stream) {
  if (!a.mask) return launch<T, D, W, KS, kFaNoMask>(a, stream);
  if (a.ms[2] != 0) return launch<T, D, W, KS, kFaGenericMask>(a, stream);
  if (a.mask_is_fill) return launch<T, D, W, KS, kFaFillRow>(a, stream);
  return launch<T, D, W, KS, kFaAddRow>(a, stream);
}

// 4 stages only for d <= 64 (the short-sequence models; fewer kernels to compile).
template <typename T, int W>
cudaError_t launch_rows(const AttentionArgs& a, cudaStream_t stream) {
  const bool deep = a.flash_stages == 4;
  if (a.d == 32) return deep ? launch_masked<T, 32, W, 4>(a, stream) : launch_masked<T, 32, W, 2>(a, stream);
  if (a.d == 64) return deep ? launch_masked<T, 64, W, 4>(a, stream) : launch_masked<T, 64, W, 2>(a, stream);
  return launch_masked<T, 128, W, 2>(a, stream);
}

template <typename T>
cudaError_t launch_typed(const AttentionArgs& a, cudaStream_t stream) {
  if (attention_flash_rows(a) == 128) return launch_rows<T, 8>(a, stream);
  return launch_rows<T, 4>(a, stream);
}

}  // namespace

int attention_flash_rows(const AttentionArgs& a) {
  if (a.flash_rows == 64 || a.flash_rows == 128) return a.flash_rows;
  // Untimed: 128-row blocks share each K/V tile over twice the rows, once they still give every SM
  // a few CTAs (132 SMs).
  const int64_t blocks128 = a.batch * a.heads * ((a.sq + 127) / 128);
  return blocks128 >= 4 * 132 ? 128 : 64;
}

bool attention_flash_eligible(DType t, const AttentionArgs& a) {
  if (a.no_flash || a.sk <= 0) return false;
  if (a.flash_rows != 0 && a.flash_rows != 64 && a.flash_rows != 128) return false;
  if (a.flash_stages != 0 && a.flash_stages != 2 && !(a.flash_stages == 4 && a.d <= 64)) return false;
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
