// Hopper warpgroup MMA (wgmma) for the int8 implicit GEMM (qconv_igemm.cu, qconv_tma.cu), the
// float16 halo-tile convolution (halo_conv.cu) and the ConvTranspose GEMM (conv_transpose_tma.cu),
// sm_90a only: elsewhere the functions trap, and the host learns that they were not built
// (sm90a.hpp), so no tactic uses them. Operands come straight from shared memory through 64-bit
// descriptors, K-major (the only layout wgmma takes for 8-bit types).
#pragma once

#include <cstdint>

namespace kiln::cuda::kernels::wgmma {

// Accumulator operand lists of the inline wgmma below: 8 (16, ...) consecutive elements of d bound
// with constraint C ("+f" float, "+r" int).
#define KILN_WGMMA_D8(C, i)                                                                                \
  C(d[(i)]), C(d[(i) + 1]), C(d[(i) + 2]), C(d[(i) + 3]), C(d[(i) + 4]), C(d[(i) + 5]), C(d[(i) + 6]), \
      C(d[(i) + 7])
// The asm operand names %0 .. %127 of a 128-register accumulator (the m64n256 products).
#define KILN_WGMMA_D128_OPERANDS                                                            \
  "%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15,"                                  \
  "%16,%17,%18,%19,%20,%21,%22,%23,%24,%25,%26,%27,%28,%29,%30,%31,"                        \
  "%32,%33,%34,%35,%36,%37,%38,%39,%40,%41,%42,%43,%44,%45,%46,%47,"                        \
  "%48,%49,%50,%51,%52,%53,%54,%55,%56,%57,%58,%59,%60,%61,%62,%63,"                        \
  "%64,%65,%66,%67,%68,%69,%70,%71,%72,%73,%74,%75,%76,%77,%78,%79,"                        \
  "%80,%81,%82,%83,%84,%85,%86,%87,%88,%89,%90,%91,%92,%93,%94,%95,"                        \
  "%96,%97,%98,%99,%100,%101,%102,%103,%104,%105,%106,%107,%108,%109,%110,%111,"            \
  "%112,%113,%114,%115,%116,%117,%118,%119,%120,%121,%122,%123,%124,%125,%126,%127"
#define KILN_WGMMA_D32(C, i) \
  KILN_WGMMA_D8(C, i), KILN_WGMMA_D8(C, (i) + 8), KILN_WGMMA_D8(C, (i) + 16), KILN_WGMMA_D8(C, (i) + 24)

// Descriptor of a K-major tile whose rows are 64 bytes, 16-byte chunks swizzled in the 64-byte
// mode (chunk ^= (row / 2) % 4, the pattern repeating every 512 bytes, so the tile's base must be
// 512-byte aligned): start address / 16 (bits 0-13), leading byte offset / 16 (bits 16-29; unused
// when the instruction's 32 K bytes stay inside one 64-byte row), stride byte offset / 16 between
// 8-row groups = 512 / 16 (bits 32-45), swizzle mode 2 = 64 bytes (bits 62-63). Stepping K by 32
// bytes inside the row is start + 32: the hardware swizzles the absolute address.
__device__ __forceinline__ uint64_t desc_k64(uint32_t smem_addr) {
  return static_cast<uint64_t>((smem_addr & 0x3FFFF) >> 4) | (static_cast<uint64_t>(1) << 16) |
         (static_cast<uint64_t>(512 >> 4) << 32) | (static_cast<uint64_t>(2) << 62);
}

// Descriptor of a K-major operand whose rows are 128 bytes (64 float16), 16-byte chunks swizzled
// in the 128-byte mode (chunk ^= row % 8, as a TMA copy with CU_TENSOR_MAP_SWIZZLE_128B writes
// them): start / 16, LBO unused (1), SBO / 16 between 8-row groups, mode 1 (bits 62-63). The
// hardware swizzles the absolute shared address, so a start one or more whole rows past a
// 1024-byte boundary (a shifted window, halo_conv.cu) needs no base offset.
__device__ __forceinline__ uint64_t desc_sw128(uint32_t addr, uint32_t sbo) {
  return static_cast<uint64_t>((addr & 0x3FFFF) >> 4) | (static_cast<uint64_t>(1) << 16) |
         (static_cast<uint64_t>(sbo >> 4) << 32) | (static_cast<uint64_t>(1) << 62);
}

// D (m64 x n128, f32) += A (m64 x k16 f16) * B (n128 x k16 f16), both K-major; accumulate 0
// overwrites D. d[4i + e]: row 16*warp + lane/4 (+8 for e >= 2), column 8i + 2*(lane%4) + e%2.
__device__ __forceinline__ void wgmma_m64n128k16_f16(float* d, uint64_t a, uint64_t b, int accumulate) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %66, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n128k16.f32.f16.f16 {"
      "%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15,%16,%17,%18,%19,%20,%21,%22,%23,%24,%25,%26,%27,%28,%29,%30,%31,%32,%33,%34,%35,%36,%37,%38,%39,%40,%41,%42,%43,%44,%45,%46,%47,%48,%49,%50,%51,%52,%53,%54,%55,%56,%57,%58,%59,%60,%61,%62,%63"
      "}, %64, %65, p, 1, 1, 0, 0;\n}\n"
      : KILN_WGMMA_D32("+f", 0), KILN_WGMMA_D32("+f", 32)
      : "l"(a), "l"(b), "r"(accumulate));
#else
  __trap();
#endif
}

// D (m64 x n256, f32) += A (m64 x k16 f16) * B (n256 x k16 f16), both K-major; d[4i + e] as above
// with i < 32.
__device__ __forceinline__ void wgmma_m64n256k16_f16(float* d, uint64_t a, uint64_t b, int accumulate) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %130, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n256k16.f32.f16.f16 {"
      KILN_WGMMA_D128_OPERANDS
      "}, %128, %129, p, 1, 1, 0, 0;\n}\n"
      : KILN_WGMMA_D32("+f", 0), KILN_WGMMA_D32("+f", 32), KILN_WGMMA_D32("+f", 64), KILN_WGMMA_D32("+f", 96)
      : "l"(a), "l"(b), "r"(accumulate));
#else
  __trap();
#endif
}

// The m64nNk16 float16 product for N = 128 or 256 (conv_transpose_tma.cu's two tile widths).
template <int N>
__device__ __forceinline__ void wgmma_m64nk16_f16(float* d, uint64_t a, uint64_t b, int accumulate) {
  static_assert(N == 128 || N == 256, "wgmma tile width");
  if constexpr (N == 128)
    wgmma_m64n128k16_f16(d, a, b, accumulate);
  else
    wgmma_m64n256k16_f16(d, a, b, accumulate);
}

__device__ __forceinline__ void fence() {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory");
#endif
}
__device__ __forceinline__ void commit() {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
#endif
}
template <int N>
__device__ __forceinline__ void wait() {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(N) : "memory");
#endif
}
// cp.async's shared-memory writes (generic proxy) made visible to wgmma's reads (async proxy).
__device__ __forceinline__ void fence_async_shared() {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
#endif
}
// Keeps the compiler from moving accesses of an accumulator register across wgmma's wait.
__device__ __forceinline__ void fence_operand(int& r) { asm volatile("" : "+r"(r)::"memory"); }
__device__ __forceinline__ void fence_operand(float& r) { asm volatile("" : "+f"(r)::"memory"); }

// D (m64 x nN, s32) += A (m64 x k32 s8, descriptor a) * B (nN x k32 s8, descriptor b); accumulate 0
// overwrites D. d[4i + e] is row 16*warp + lane/4 (+8 for e >= 2), column 8i + 2*(lane%4) + e%2:
// mma.sync's m16n8 layout, per warp of the warpgroup.
__device__ __forceinline__ void wgmma_m64n64k32_s8(int* d, uint64_t a, uint64_t b, int accumulate) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %34, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n64k32.s32.s8.s8 {"
      "%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15,"
      "%16,%17,%18,%19,%20,%21,%22,%23,%24,%25,%26,%27,%28,%29,%30,%31"
      "}, %32, %33, p;\n}\n"
      : KILN_WGMMA_D32("+r", 0)
      : "l"(a), "l"(b), "r"(accumulate));
#else
  __trap();
#endif
}

__device__ __forceinline__ void wgmma_m64n128k32_s8(int* d, uint64_t a, uint64_t b, int accumulate) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %66, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n128k32.s32.s8.s8 {"
      "%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15,"
      "%16,%17,%18,%19,%20,%21,%22,%23,%24,%25,%26,%27,%28,%29,%30,%31,"
      "%32,%33,%34,%35,%36,%37,%38,%39,%40,%41,%42,%43,%44,%45,%46,%47,"
      "%48,%49,%50,%51,%52,%53,%54,%55,%56,%57,%58,%59,%60,%61,%62,%63"
      "}, %64, %65, p;\n}\n"
      : KILN_WGMMA_D32("+r", 0), KILN_WGMMA_D32("+r", 32)
      : "l"(a), "l"(b), "r"(accumulate));
#else
  __trap();
#endif
}

__device__ __forceinline__ void wgmma_m64n256k32_s8(int* d, uint64_t a, uint64_t b, int accumulate) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %130, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n256k32.s32.s8.s8 {"
      KILN_WGMMA_D128_OPERANDS
      "}, %128, %129, p;\n}\n"
      : KILN_WGMMA_D32("+r", 0), KILN_WGMMA_D32("+r", 32), KILN_WGMMA_D32("+r", 64), KILN_WGMMA_D32("+r", 96)
      : "l"(a), "l"(b), "r"(accumulate));
#else
  __trap();
#endif
}

#undef KILN_WGMMA_D128_OPERANDS
#undef KILN_WGMMA_D32
#undef KILN_WGMMA_D8

}  // namespace kiln::cuda::kernels::wgmma
