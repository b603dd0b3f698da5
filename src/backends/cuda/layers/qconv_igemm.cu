// INT8 implicit-GEMM convolution (qconv_igemm.hpp). A CTA computes a BM (output pixels) x BN
// (output channels) tile; its warps a WM x WN tile each, with mma.sync m16n8k32 (s8 x s8 -> s32).
// Per stage a 64-byte slice of the reduction (ky, kx, c order, the weights' order) is copied into
// shared memory with 16-byte cp.async (src-size 0 where the window leaves X: zero fill); rows are
// 64 bytes, their four 16-byte chunks XOR-swizzled by (row / 2) % 4 so that ldmatrix's eight row
// reads of one chunk hit eight distinct bank groups. c % 16 == 0 keeps each chunk inside one
// window position, so a thread tracks (ky, kx, c) incrementally with no division in the loop.
#include <climits>

#include "backends/cuda/layers/qconv_igemm.hpp"

namespace kiln::cuda::kernels {
namespace {

constexpr int kBK = 64;  // reduction bytes per stage
constexpr int kStages = 4;

template <int BM_, int BN_, int WM_, int WN_, int MinBlocks_>
struct Cfg {
  static constexpr int BM = BM_, BN = BN_, WM = WM_, WN = WN_, kMinBlocks = MinBlocks_;
  static constexpr int kWarpsM = BM / WM, kWarpsN = BN / WN;
  static constexpr int kThreads = 32 * kWarpsM * kWarpsN;
  static constexpr int kMT = WM / 16, kNT = WN / 8;
  static constexpr int kRowStep = kThreads / 4;  // rows covered by one pass of 16-byte chunks
  static constexpr int kARows = BM / kRowStep, kBRows = BN / kRowStep;
  static constexpr int kStageBytes = (BM + BN) * kBK;
  static constexpr int kPipeBytes = kStages * kStageBytes;
  static constexpr int kEpiStride = BN + 4;  // int32s per row of the epilogue tile (padded)
  static constexpr int kEpiBytes = BM * kEpiStride * 4;
  static constexpr int kSmem = kPipeBytes > kEpiBytes ? kPipeBytes : kEpiBytes;
  static_assert(BM % kRowStep == 0 && BN % kRowStep == 0 && kNT % 2 == 0 && BN % 16 == 0);
};

using Big = Cfg<128, 128, 64, 32, 2>;   // config 0
using Small = Cfg<64, 64, 32, 32, 4>;   // config 1: few pixels
using Narrow = Cfg<128, 64, 64, 32, 3>; // config 2: 64 output channels

__device__ __forceinline__ uint32_t smem_addr(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

// Byte offset of 16-byte chunk `chunk` (0..3) of row `row` in a stage's 64-byte-row tile.
__device__ __forceinline__ int swz(int row, int chunk) { return row * kBK + ((chunk ^ ((row >> 1) & 3)) << 4); }

__device__ __forceinline__ void cp_async16(uint32_t dst, const void* src, bool valid) {
  const int bytes = valid ? 16 : 0;  // 0: nothing read, 16 zero bytes written
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src), "r"(bytes));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
}

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

// As q_epilogue's requantization (qdq_kernels.cu): round half to even, saturate, NaN -> 0.
__device__ __forceinline__ int8_t requantize(float v) {
  float r = isnan(v) ? 0.f : rintf(v);
  r = fminf(fmaxf(r + 0.f, -128.f), 127.f);
  return static_cast<int8_t>(r);
}

// v / s for the requantization without the IEEE division: nvcc's division calls a slow-path
// subroutine for small and zero dividends (after a Relu, about half the values), which made every
// int8-output igemm ~2.5x slower than its float16-output twin (ResNet-50 batch 256: the 1x1
// 64->256 56x56 conv 0.98 ms writing int8 vs 0.36 ms writing float16). A reciprocal product with
// one FMA correction step gives the correctly rounded quotient but in rare last-bit cases (so the
// same int8 but for values a hair from a .5 boundary); inf and NaN as the division gives them.
__device__ __forceinline__ float div_by_scale(float v, float s, float inv_s) {
  const float q = v * inv_s;
  const float c = fmaf(fmaf(-q, s, v), inv_s, q);
  return isnan(c) ? q : c;  // v or q infinite: the residual is NaN, q is the answer
}

// What the epilogue writes.
enum Out { kAcc = 0, kInt8 = 1, kHalf = 2 };

template <class C, int kOut>
__global__ void __launch_bounds__(C::kThreads, C::kMinBlocks) igemm_s8_kernel(const IgemmS8Params p) {
  extern __shared__ __align__(128) uint8_t smem[];
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
      const int hw = p.oh * p.ow;
      const int img = pix / hw, rem = pix - img * hw;
      const int oy = rem / p.ow, ox = rem - oy * p.ow;
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
  if constexpr (kOut != kAcc) {
    if (p.z || p.z_h) {
#pragma unroll
      for (int step = 0; step < kEpiSteps; ++step) {
        const int idx = tid + step * C::kThreads;
        const int pix = m0 + idx / kChunks, ch0 = n0 + (idx % kChunks) * 16;
        if (pix >= rows || ch0 >= p.m) continue;
        const int64_t off = static_cast<int64_t>(pix) * p.m + ch0;
        const void* addr = p.z ? static_cast<const void*>(p.z + off) : static_cast<const void*>(p.z_h + off);
        asm volatile("prefetch.global.L2 [%0];\n" ::"l"(addr));
      }
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
  // The reduction position of this thread's chunk in the next stage to load.
  int kg = 16 * j;
  int kc = kg % p.c, kx, ky;
  {
    const int kr = kg / p.c;
    kx = kr % p.kw;
    ky = kr / p.kw;
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
      cp_async16(smem_addr(sa + swz(r, j)), src, ok);
    }
#pragma unroll
    for (int i = 0; i < C::kBRows; ++i) {
      const int r = tid / 4 + i * C::kRowStep;
      const bool ok = kin && b_ok[i];
      cp_async16(smem_addr(sb + swz(r, j)), ok ? b_row[i] + kg : p.w, ok);
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
  for (int s = 0; s < kStages - 1; ++s) {
    if (s < KT) load_stage(s);
    cp_async_commit();
  }
  for (int kt = 0; kt < KT; ++kt) {
    cp_async_wait<kStages - 2>();
    __syncthreads();  // stage kt landed for every thread; stage kt-1 is no longer read
    if (kt + kStages - 1 < KT) load_stage((kt + kStages - 1) % kStages);
    cp_async_commit();
    const uint8_t* sa = smem + (kt % kStages) * C::kStageBytes;
    const uint8_t* sb = sa + C::BM * kBK;
#pragma unroll
    for (int ks = 0; ks < 2; ++ks) {  // two k32 steps per 64-byte stage
      uint32_t af[C::kMT][4];
      uint32_t bf[C::kNT][2];
#pragma unroll
      for (int mt = 0; mt < C::kMT; ++mt) {
        // Matrices: rows 0-7 / 8-15 of the m16 tile x bytes 0-15 / 16-31 of the k32 step.
        const int row = warp_m * C::WM + mt * 16 + (lane & 7) + ((lane >> 3) & 1) * 8;
        ldmatrix_x4(af[mt], smem_addr(sa + swz(row, ks * 2 + (lane >> 4))));
      }
#pragma unroll
      for (int np = 0; np < C::kNT / 2; ++np) {
        // Matrices: channels 0-7 k 0-15, 0-7 k 16-31, 8-15 k 0-15, 8-15 k 16-31.
        const int row = warp_n * C::WN + np * 16 + (lane & 7) + (lane >> 4) * 8;
        uint32_t r[4];
        ldmatrix_x4(r, smem_addr(sb + swz(row, ks * 2 + ((lane >> 3) & 1))));
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
  cp_async_wait<0>();
  __syncthreads();  // the pipeline's shared memory becomes the epilogue tile

  // Accumulators -> shared tile [BM][kEpiStride] (c0,c1: row g, columns 2t, 2t+1; c2,c3: row g+8).
  int* tile = reinterpret_cast<int*>(smem);
  const int g = lane >> 2, t = lane & 3;
#pragma unroll
  for (int mt = 0; mt < C::kMT; ++mt)
#pragma unroll
    for (int nt = 0; nt < C::kNT; ++nt) {
      const int r = warp_m * C::WM + mt * 16 + g, col = warp_n * C::WN + nt * 8 + 2 * t;
      *reinterpret_cast<int2*>(tile + r * C::kEpiStride + col) = make_int2(acc[mt][nt][0], acc[mt][nt][1]);
      *reinterpret_cast<int2*>(tile + (r + 8) * C::kEpiStride + col) = make_int2(acc[mt][nt][2], acc[mt][nt][3]);
    }
  __syncthreads();

  // 16 channels of one pixel per thread and step: coalesced 16-byte loads (Z) and stores (Y).
  // The residual of every step is loaded first: kEpiSteps loads in flight per thread, not one.
  int4 zraw[kOut != kAcc ? kEpiSteps : 1][2];
  if constexpr (kOut != kAcc) {
#pragma unroll
    for (int step = 0; step < kEpiSteps; ++step) {
      const int idx = tid + step * C::kThreads;
      const int pix = m0 + idx / kChunks, ch0 = n0 + (idx % kChunks) * 16;
      zraw[step][0] = zraw[step][1] = make_int4(0, 0, 0, 0);
      if (pix >= rows || ch0 >= p.m) continue;
      const int64_t off = static_cast<int64_t>(pix) * p.m + ch0;
      if (p.z) {
        zraw[step][0] = __ldg(reinterpret_cast<const int4*>(p.z + off));
      } else if (p.z_h) {
        zraw[step][0] = __ldg(reinterpret_cast<const int4*>(p.z_h + off));
        zraw[step][1] = __ldg(reinterpret_cast<const int4*>(p.z_h + off) + 1);
      }
    }
  }
  const float inv_y_scale = 1.0f / p.y_scale;  // one division per thread
  // A thread's 16-channel chunk is the same in every step (kThreads is a multiple of kChunks), so
  // its alpha and bias are loaded once: 16 floats each at ch0 (a multiple of 16 into a cudaMalloc'd
  // buffer; p.m % 16 == 0 where the epilogue is fused).
  float al[16], bi[16];
  if constexpr (kOut != kAcc) {
    const int ch0 = n0 + (tid % kChunks) * 16;
#pragma unroll
    for (int q = 0; q < 4; ++q) {
      const float4 a4 = ch0 < p.m ? __ldg(reinterpret_cast<const float4*>(p.alpha + ch0) + q) : make_float4(0, 0, 0, 0);
      const float4 b4 = p.bias && ch0 < p.m ? __ldg(reinterpret_cast<const float4*>(p.bias + ch0) + q)
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
#pragma unroll
  for (int step = 0; step < kEpiSteps; ++step) {
    const int idx = tid + step * C::kThreads;
    const int r = idx / kChunks, cc = idx % kChunks;
    const int pix = m0 + r, ch0 = n0 + cc * 16;
    if (pix >= rows || ch0 >= p.m) continue;
    int v[16];
    const int4* src = reinterpret_cast<const int4*>(tile + r * C::kEpiStride + cc * 16);
#pragma unroll
    for (int q = 0; q < 4; ++q) {
      const int4 s = src[q];
      v[4 * q] = s.x;
      v[4 * q + 1] = s.y;
      v[4 * q + 2] = s.z;
      v[4 * q + 3] = s.w;
    }
    if constexpr (kOut != kAcc) {
      // p.m % 16 == 0: all 16 channels exist; y, z rows 16-byte aligned.
      const int64_t off = static_cast<int64_t>(pix) * p.m + ch0;
      float zf[16];
      if (p.z) {
        alignas(16) int8_t zb[16];
        *reinterpret_cast<int4*>(zb) = zraw[step][0];
#pragma unroll
        for (int e = 0; e < 16; ++e) zf[e] = static_cast<float>(zb[e]);
      } else if (p.z_h) {
        alignas(16) __half zb[16];
        reinterpret_cast<int4*>(zb)[0] = zraw[step][0];
        reinterpret_cast<int4*>(zb)[1] = zraw[step][1];
#pragma unroll
        for (int e = 0; e < 16; ++e) zf[e] = __half2float(zb[e]);
      }
      const bool has_z = p.z != nullptr || p.z_h != nullptr;
      float r[16];
#pragma unroll
      for (int e = 0; e < 16; ++e) {
        // The same float operations, in the same order, as q_epilogue.
        float f = static_cast<float>(v[e]) * al[e];
        if (p.bias) f += bi[e];
        if (has_z) f += zf[e] * p.z_scale;
        if (p.relu) f = fmaxf(f, 0.f);
        r[e] = f;
      }
      if constexpr (kOut == kInt8) {
        alignas(16) int8_t out[16];
#pragma unroll
        for (int e = 0; e < 16; ++e) out[e] = requantize(div_by_scale(r[e], p.y_scale, inv_y_scale));
        *reinterpret_cast<int4*>(p.y + off) = *reinterpret_cast<const int4*>(out);
      } else {
        alignas(16) __half out[16];
#pragma unroll
        for (int e = 0; e < 16; ++e) out[e] = __float2half_rn(r[e]);  // as q_epilogue's from_f<__half>
        reinterpret_cast<int4*>(p.y_h + off)[0] = reinterpret_cast<const int4*>(out)[0];
        reinterpret_cast<int4*>(p.y_h + off)[1] = reinterpret_cast<const int4*>(out)[1];
      }
    } else {
      int32_t* dst = p.acc + static_cast<int64_t>(pix) * p.acc_stride + ch0;
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
}

template <class C>
dim3 grid_of(int64_t rows, int64_t m) {
  return dim3(static_cast<unsigned>((m + C::BN - 1) / C::BN), static_cast<unsigned>((rows + C::BM - 1) / C::BM));
}

// Over 48 KiB of dynamic shared memory needs the opt-in, once per device (igemm_s8_prepare).
template <class C>
cudaError_t prepare() {
  for (auto* k : {igemm_s8_kernel<C, kAcc>, igemm_s8_kernel<C, kInt8>, igemm_s8_kernel<C, kHalf>}) {
    cudaError_t e = cudaFuncSetAttribute(k, cudaFuncAttributeMaxDynamicSharedMemorySize, C::kSmem);
    if (e != cudaSuccess) return e;
  }
  return cudaSuccess;
}

template <class C>
cudaError_t launch(const IgemmS8Params& p, int out, cudaStream_t stream) {
  const int64_t rows = static_cast<int64_t>(p.n) * p.oh * p.ow;
  const dim3 grid = grid_of<C>(rows, p.m);
  if (out == kInt8) igemm_s8_kernel<C, kInt8><<<grid, C::kThreads, C::kSmem, stream>>>(p);
  else if (out == kHalf) igemm_s8_kernel<C, kHalf><<<grid, C::kThreads, C::kSmem, stream>>>(p);
  else igemm_s8_kernel<C, kAcc><<<grid, C::kThreads, C::kSmem, stream>>>(p);
  return cudaGetLastError();
}

template <class C>
bool fits(int64_t rows, int64_t m) {
  return (rows + C::BM - 1) / C::BM <= 65535 && (m + C::BN - 1) / C::BN <= 65535;
}

}  // namespace

const char* igemm_s8_config_name(int config) {
  return config == 0 ? "128x128" : config == 1 ? "64x64" : "128x64";
}

bool igemm_s8_supports(int64_t n, int64_t h, int64_t w, int64_t c, int64_t m, int64_t kh, int64_t kw, int64_t oh,
                       int64_t ow, int config) {
  if (config < 0 || config >= kIgemmConfigs) return false;
  for (int64_t v : {n, h, w, c, m, kh, kw, oh, ow})
    if (v <= 0 || v > INT32_MAX) return false;
  if (c % 16 != 0) return false;
  const int64_t rows = n * oh * ow;
  if (rows > INT32_MAX || kh * kw * c > INT32_MAX - 2 * kBK || oh * ow > INT32_MAX) return false;
  return config == 0 ? fits<Big>(rows, m) : config == 1 ? fits<Small>(rows, m) : fits<Narrow>(rows, m);
}

cudaError_t igemm_s8_prepare(int config) {
  if (config < 0 || config >= kIgemmConfigs) return cudaErrorInvalidValue;
  return config == 0 ? prepare<Big>() : config == 1 ? prepare<Small>() : prepare<Narrow>();
}

cudaError_t igemm_s8_conv(const IgemmS8Params& p, int config, cudaStream_t stream) {
  if (!igemm_s8_supports(p.n, p.h, p.w_in, p.c, p.m, p.kh, p.kw, p.oh, p.ow, config)) return cudaErrorInvalidValue;
  if ((p.y && p.y_h) || (p.z && p.z_h)) return cudaErrorInvalidValue;
  const int out = p.y ? kInt8 : p.y_h ? kHalf : kAcc;
  if (out != kAcc && (!igemm_s8_fusable(p.m) || !p.alpha)) return cudaErrorInvalidValue;
  if (out == kAcc && (!p.acc || p.acc_stride % 4 != 0 || p.acc_stride < p.m)) return cudaErrorInvalidValue;
  if (config == 0) return launch<Big>(p, out, stream);
  if (config == 1) return launch<Small>(p, out, stream);
  return launch<Narrow>(p, out, stream);
}

}  // namespace kiln::cuda::kernels
