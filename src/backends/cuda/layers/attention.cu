// kiln.Attention kernels. The preferred one, a FlashAttention-2 style kernel, is in
// attention_flash.cu; these two cover the rest (float32, other head dims, unaligned views). Both
// keep, per query row, the running max m, the running sum l of exp(score - m) and the output
// accumulator, rescaled when m grows (online softmax), so the [Sq, Sk] scores never reach global
// memory.
//  - tensor-core (float16/bfloat16, head dim D in {32, 64, 128}): a CTA of 4 warps takes 64 query
//    rows of one (batch, head); Q/K/V tiles of 64 rows in shared memory, S = Q K^T and O += P V
//    with WMMA 16x16x16 (float accumulation); each warp owns 16 query rows, two lanes per row for
//    the softmax step. The output accumulator lives in shared memory as float (rescaled by the
//    lanes, reloaded into the accumulator fragments for each P V product).
//  - simple (any float dtype, d, dv <= 128, any strides): one thread per query row, K/V tiles of
//    32 keys in shared memory as float.
// Keys past Sk are masked to -inf and their K/V rows zero-filled (P * V must not see garbage).
#include <mma.h>

#include <cmath>
#include <type_traits>

#include "backends/cuda/layers/attention_kernels.hpp"
#include "backends/cuda/layers/device_types.cuh"

namespace kiln::cuda {
namespace {

using kernels::from_f;
using kernels::to_f;

// The mask row of query row (b, h, i) as bytes (elements of T, or bool with mask_is_fill).
template <typename T>
__device__ __forceinline__ const unsigned char* mask_row(const AttentionArgs& a, int64_t b, int64_t h, int64_t i) {
  if (!a.mask) return nullptr;
  const int64_t e = b * a.ms[0] + h * a.ms[1] + i * a.ms[2];
  return static_cast<const unsigned char*>(a.mask) + e * (a.mask_is_fill ? 1 : static_cast<int64_t>(sizeof(T)));
}

// Score z of key j with the mask applied.
template <typename T>
__device__ __forceinline__ float apply_mask(const AttentionArgs& a, const unsigned char* mrow, int64_t j, float z) {
  if (!mrow) return z;
  if (a.mask_is_fill) return mrow[j * a.ms[3]] ? a.mask_fill : z;
  return z + to_f(reinterpret_cast<const T*>(mrow)[j * a.ms[3]]);
}

// ---------------------------------------------------------------------------------------------
// Simple kernel.

constexpr int kSimpleThreads = 128, kSimpleKeys = 32;

template <typename T, int DMAX>
__global__ void __launch_bounds__(kSimpleThreads) attention_simple(AttentionArgs a) {
  __shared__ float ks[kSimpleKeys][DMAX];
  __shared__ float vs[kSimpleKeys][DMAX];
  const int64_t bh = blockIdx.x, b = bh / a.heads, h = bh % a.heads;
  const int64_t i = static_cast<int64_t>(blockIdx.y) * kSimpleThreads + threadIdx.x;
  const bool valid = i < a.sq;
  const T* q = static_cast<const T*>(a.q) + a.q_off + b * a.qs[0] + h * a.qs[1] + (valid ? i : 0) * a.qs[2];
  const T* kb = static_cast<const T*>(a.k) + a.k_off + b * a.ks[0] + h * a.ks[1];
  const T* vb = static_cast<const T*>(a.v) + a.v_off + b * a.vs[0] + h * a.vs[1];
  const unsigned char* mrow = mask_row<T>(a, b, h, valid ? i : 0);
  float qr[DMAX], o[DMAX];
#pragma unroll
  for (int c = 0; c < DMAX; ++c) {
    qr[c] = valid && c < a.d ? to_f(q[c * a.qs[3]]) : 0.f;
    o[c] = 0.f;
  }
  float m = -INFINITY, l = 0.f;
  for (int64_t j0 = 0; j0 < a.sk; j0 += kSimpleKeys) {
    const int n = static_cast<int>(min(static_cast<int64_t>(kSimpleKeys), a.sk - j0));
    __syncthreads();  // the previous tile is consumed
    for (int e = threadIdx.x; e < kSimpleKeys * DMAX; e += kSimpleThreads) {
      const int j = e / DMAX, c = e % DMAX;
      ks[j][c] = j < n && c < a.d ? to_f(kb[(j0 + j) * a.ks[2] + c * a.ks[3]]) : 0.f;
      vs[j][c] = j < n && c < a.dv ? to_f(vb[(j0 + j) * a.vs[2] + c * a.vs[3]]) : 0.f;
    }
    __syncthreads();
    if (!valid) continue;
    float s[kSimpleKeys];
    float tmax = -INFINITY;
#pragma unroll
    for (int j = 0; j < kSimpleKeys; ++j) {
      float acc = 0.f;
#pragma unroll
      for (int c = 0; c < DMAX; ++c) acc += qr[c] * ks[j][c];
      float z = -INFINITY;
      if (j < n) {
        z = apply_mask<T>(a, mrow, j0 + j, acc * a.scale);
      }
      s[j] = z;
      tmax = fmaxf(tmax, z);
    }
    const float mnew = fmaxf(m, tmax);
    if (mnew == -INFINITY) continue;  // every score so far is -inf: nothing to add
    const float alpha = __expf(m - mnew);  // m == -inf: 0
    l *= alpha;
#pragma unroll
    for (int c = 0; c < DMAX; ++c) o[c] *= alpha;
#pragma unroll
    for (int j = 0; j < kSimpleKeys; ++j) {
      const float p = __expf(s[j] - mnew);  // -inf (past Sk): 0
      l += p;
#pragma unroll
      for (int c = 0; c < DMAX; ++c) o[c] += p * vs[j][c];
    }
    m = mnew;
  }
  if (!valid) return;
  // All scores -inf: softmax is 0/0 = NaN; HF's IsNaN/Where guard (nan_to_zero) makes it 0.
  const float inv = l > 0.f ? 1.f / l : (a.nan_to_zero ? 0.f : __int_as_float(0x7fc00000));
  T* y = static_cast<T*>(a.y) + b * a.ys[0] + h * a.ys[1] + i * a.ys[2];
#pragma unroll
  for (int c = 0; c < DMAX; ++c)
    if (c < a.dv) y[c * a.ys[3]] = from_f<T>(o[c] * inv);
}

// ---------------------------------------------------------------------------------------------
// Tensor-core kernel.

constexpr int kTcWarps = 4, kTcThreads = kTcWarps * 32, kBM = 64, kBN = 64;

template <typename T, int D>
struct TcLayout {
  static constexpr int ldt = D + 8;    // Q/K/V tile rows (T); padding staggers the banks
  static constexpr int lds = kBN + 4;  // per-warp scores (float)
  static constexpr int ldp = kBN + 8;  // per-warp probabilities (T)
  static constexpr int ldo = D + 4;    // per-warp output accumulator (float)
  static constexpr size_t q_off = 0;
  static constexpr size_t k_off = q_off + sizeof(T) * kBM * ldt;
  static constexpr size_t v_off = k_off + sizeof(T) * kBN * ldt;
  static constexpr size_t s_off = v_off + sizeof(T) * kBN * ldt;
  static constexpr size_t p_off = s_off + sizeof(float) * kTcWarps * 16 * lds;
  static constexpr size_t o_off = p_off + sizeof(T) * kTcWarps * 16 * ldp;
  static constexpr size_t bytes = o_off + sizeof(float) * kTcWarps * 16 * ldo;
  // WMMA pointers must be 32-byte aligned: every region and per-warp block start is.
  static_assert(k_off % 128 == 0 && s_off % 128 == 0 && p_off % 128 == 0 && o_off % 128 == 0);
  static_assert((16 * lds * 4) % 32 == 0 && (16 * ldp * sizeof(T)) % 32 == 0 && (16 * ldo * 4) % 32 == 0);
};

// Copies `rows` (<= 64) rows of D contiguous elements, each at base + r * stride, into a tile of
// 64 rows (ld elements apart), 16 bytes at a time; rows past `rows` become zeros.
template <typename T, int D>
__device__ __forceinline__ void load_tile(T* tile, int ld, const T* base, int64_t stride, int rows) {
  constexpr int kVec = 16 / sizeof(T), kPerRow = D / kVec;
  for (int e = threadIdx.x; e < 64 * kPerRow; e += kTcThreads) {
    const int r = e / kPerRow, c = (e % kPerRow) * kVec;
    uint4 val = make_uint4(0, 0, 0, 0);
    if (r < rows) val = *reinterpret_cast<const uint4*>(base + r * stride + c);
    *reinterpret_cast<uint4*>(tile + r * ld + c) = val;
  }
}

template <typename T, int D>
__global__ void __launch_bounds__(kTcThreads) attention_tc(AttentionArgs a) {
  namespace wmma = nvcuda::wmma;
  using L = TcLayout<T, D>;
  extern __shared__ __align__(128) unsigned char smem[];
  T* qs = reinterpret_cast<T*>(smem + L::q_off);
  T* kt = reinterpret_cast<T*>(smem + L::k_off);
  T* vt = reinterpret_cast<T*>(smem + L::v_off);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  float* sw = reinterpret_cast<float*>(smem + L::s_off) + warp * 16 * L::lds;
  T* pw = reinterpret_cast<T*>(smem + L::p_off) + warp * 16 * L::ldp;
  float* ow = reinterpret_cast<float*>(smem + L::o_off) + warp * 16 * L::ldo;

  const int64_t bh = blockIdx.x, b = bh / a.heads, h = bh % a.heads;
  const int64_t i0 = static_cast<int64_t>(blockIdx.y) * kBM;
  const T* qb = static_cast<const T*>(a.q) + a.q_off + b * a.qs[0] + h * a.qs[1];
  const T* kb = static_cast<const T*>(a.k) + a.k_off + b * a.ks[0] + h * a.ks[1];
  const T* vb = static_cast<const T*>(a.v) + a.v_off + b * a.vs[0] + h * a.vs[1];

  load_tile<T, D>(qs, L::ldt, qb + i0 * a.qs[2], a.qs[2], static_cast<int>(min(static_cast<int64_t>(kBM), a.sq - i0)));
  for (int e = lane; e < 16 * L::ldo; e += 32) ow[e] = 0.f;
  __syncthreads();
  wmma::fragment<wmma::matrix_a, 16, 16, 16, T, wmma::row_major> qf[D / 16];
#pragma unroll
  for (int kk = 0; kk < D / 16; ++kk) wmma::load_matrix_sync(qf[kk], qs + warp * 16 * L::ldt + kk * 16, L::ldt);

  // The softmax step: lane owns row r of the warp's 16 and the columns hh, hh+2, ... (two lanes a row).
  const int r = lane >> 1, hh = lane & 1;
  const int64_t row = i0 + warp * 16 + r;
  const bool row_valid = row < a.sq;
  const unsigned char* mrow = row_valid ? mask_row<T>(a, b, h, row) : nullptr;
  float m = -INFINITY, l = 0.f;

  for (int64_t j0 = 0; j0 < a.sk; j0 += kBN) {
    const int n = static_cast<int>(min(static_cast<int64_t>(kBN), a.sk - j0));
    __syncthreads();  // every warp is done with the previous K/V tiles
    load_tile<T, D>(kt, L::ldt, kb + j0 * a.ks[2], a.ks[2], n);
    load_tile<T, D>(vt, L::ldt, vb + j0 * a.vs[2], a.vs[2], n);
    __syncthreads();

    // S = Q K^T for the warp's 16 rows and the tile's 64 keys (K row-major = K^T column-major).
#pragma unroll
    for (int nb = 0; nb < kBN / 16; ++nb) {
      wmma::fragment<wmma::accumulator, 16, 16, 16, float> sf;
      wmma::fill_fragment(sf, 0.f);
#pragma unroll
      for (int kk = 0; kk < D / 16; ++kk) {
        wmma::fragment<wmma::matrix_b, 16, 16, 16, T, wmma::col_major> kf;
        wmma::load_matrix_sync(kf, kt + nb * 16 * L::ldt + kk * 16, L::ldt);
        wmma::mma_sync(sf, qf[kk], kf, sf);
      }
      wmma::store_matrix_sync(sw + nb * 16, sf, L::lds, wmma::mem_row_major);
    }
    __syncwarp();

    float z[kBN / 2];
    float tmax = -INFINITY;
#pragma unroll
    for (int t = 0; t < kBN / 2; ++t) {
      const int j = 2 * t + hh;
      float v = -INFINITY;
      if (j < n) {
        v = apply_mask<T>(a, mrow, j0 + j, sw[r * L::lds + j] * a.scale);
      }
      z[t] = v;
      tmax = fmaxf(tmax, v);
    }
    tmax = fmaxf(tmax, __shfl_xor_sync(0xffffffffu, tmax, 1));
    const float mnew = fmaxf(m, tmax);
    // A row whose scores are all -inf so far adds nothing (and must not make exp(-inf + inf)).
    const float alpha = mnew == -INFINITY ? 1.f : __expf(m - mnew);
    float psum = 0.f;
#pragma unroll
    for (int t = 0; t < kBN / 2; ++t) {
      const float p = mnew == -INFINITY ? 0.f : __expf(z[t] - mnew);
      psum += p;
      pw[r * L::ldp + 2 * t + hh] = from_f<T>(p);
    }
    psum += __shfl_xor_sync(0xffffffffu, psum, 1);
    l = l * alpha + psum;
    m = mnew;
#pragma unroll 8
    for (int c = hh; c < D; c += 2) ow[r * L::ldo + c] *= alpha;
    __syncwarp();

    // O = O * alpha + P V.
#pragma unroll
    for (int nb = 0; nb < D / 16; ++nb) {
      wmma::fragment<wmma::accumulator, 16, 16, 16, float> of;
      wmma::load_matrix_sync(of, ow + nb * 16, L::ldo, wmma::mem_row_major);
#pragma unroll
      for (int kk = 0; kk < kBN / 16; ++kk) {
        wmma::fragment<wmma::matrix_a, 16, 16, 16, T, wmma::row_major> pf;
        wmma::fragment<wmma::matrix_b, 16, 16, 16, T, wmma::row_major> vf;
        wmma::load_matrix_sync(pf, pw + kk * 16, L::ldp);
        wmma::load_matrix_sync(vf, vt + kk * 16 * L::ldt + nb * 16, L::ldt);
        wmma::mma_sync(of, pf, vf, of);
      }
      wmma::store_matrix_sync(ow + nb * 16, of, L::ldo, wmma::mem_row_major);
    }
    __syncwarp();
  }

  if (!row_valid) return;
  const float inv = l > 0.f ? 1.f / l : (a.nan_to_zero ? 0.f : __int_as_float(0x7fc00000));
  T* y = static_cast<T*>(a.y) + b * a.ys[0] + h * a.ys[1] + row * a.ys[2];
  for (int c = hh; c < D; c += 2) y[c] = from_f<T>(ow[r * L::ldo + c] * inv);
}

// ---------------------------------------------------------------------------------------------
// Dispatch.

template <typename T>
bool tc_eligible(const AttentionArgs& a) {
  if (!(a.d == a.dv && (a.d == 32 || a.d == 64 || a.d == 128))) return false;
  if (a.qs[3] != 1 || a.ks[3] != 1 || a.vs[3] != 1 || a.ys[3] != 1) return false;
  // 16-byte loads of rows: offsets, row strides and pointers aligned to 8 elements.
  constexpr int64_t kVec = 16 / sizeof(T);
  const int64_t offs[] = {a.q_off, a.k_off, a.v_off, a.qs[0], a.qs[1], a.qs[2], a.ks[0], a.ks[1], a.ks[2],
                          a.vs[0], a.vs[1], a.vs[2]};
  for (int64_t o : offs)
    if (o % kVec != 0) return false;
  for (const void* p : {a.q, a.k, a.v})
    if (reinterpret_cast<uintptr_t>(p) % 16 != 0) return false;
  return true;
}

template <typename T, int D>
cudaError_t launch_tc(const AttentionArgs& a, dim3 grid, cudaStream_t stream) {
  constexpr size_t bytes = TcLayout<T, D>::bytes;
  // Over 48 KiB of dynamic shared memory needs an opt-in, once per kernel.
  static const cudaError_t opt_in =
      cudaFuncSetAttribute(attention_tc<T, D>, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(bytes));
  if (opt_in != cudaSuccess) return opt_in;
  attention_tc<T, D><<<grid, kTcThreads, bytes, stream>>>(a);
  return cudaGetLastError();
}

template <typename T>
cudaError_t launch_typed(const AttentionArgs& a, cudaStream_t stream) {
  const int64_t bh = a.batch * a.heads;
  if (bh <= 0 || a.sq <= 0) return cudaSuccess;
  if (bh > 0x7fffffff) return cudaErrorInvalidConfiguration;
  if constexpr (!std::is_same_v<T, float>) {
    if (attention_flash_eligible(std::is_same_v<T, __half> ? DType::kFloat16 : DType::kBFloat16, a))
      return launch_attention_flash(std::is_same_v<T, __half> ? DType::kFloat16 : DType::kBFloat16, a, stream);
    if (tc_eligible<T>(a)) {
      const int64_t qblocks = (a.sq + kBM - 1) / kBM;
      if (qblocks > 65535) return cudaErrorInvalidConfiguration;
      dim3 grid(static_cast<unsigned>(bh), static_cast<unsigned>(qblocks));
      if (a.d == 32) return launch_tc<T, 32>(a, grid, stream);
      if (a.d == 64) return launch_tc<T, 64>(a, grid, stream);
      return launch_tc<T, 128>(a, grid, stream);
    }
  }
  const int64_t qblocks = (a.sq + kSimpleThreads - 1) / kSimpleThreads;
  if (qblocks > 65535) return cudaErrorInvalidConfiguration;
  dim3 grid(static_cast<unsigned>(bh), static_cast<unsigned>(qblocks));
  if (a.d <= 64 && a.dv <= 64) attention_simple<T, 64><<<grid, kSimpleThreads, 0, stream>>>(a);
  else attention_simple<T, 128><<<grid, kSimpleThreads, 0, stream>>>(a);
  return cudaGetLastError();
}

}  // namespace

bool attention_supported(DType t, int d, int dv) {
  return (t == DType::kFloat32 || t == DType::kFloat16 || t == DType::kBFloat16) && d >= 1 && dv >= 1 &&
         d <= kAttentionMaxHeadDim && dv <= kAttentionMaxHeadDim;
}

const char* attention_kernel_name(DType t, const AttentionArgs& a) {
  if (attention_flash_eligible(t, a)) return "flash";
  if (t == DType::kFloat16 && tc_eligible<__half>(a)) return "tensor-core";
  if (t == DType::kBFloat16 && tc_eligible<__nv_bfloat16>(a)) return "tensor-core";
  return "simple";
}

cudaError_t launch_attention(DType t, const AttentionArgs& a, cudaStream_t stream) {
  if (!attention_supported(t, a.d, a.dv)) return cudaErrorInvalidValue;
  switch (t) {
    case DType::kFloat32: return launch_typed<float>(a, stream);
    case DType::kFloat16: return launch_typed<__half>(a, stream);
    case DType::kBFloat16: return launch_typed<__nv_bfloat16>(a, stream);
    default: return cudaErrorInvalidValue;
  }
}

}  // namespace kiln::cuda
