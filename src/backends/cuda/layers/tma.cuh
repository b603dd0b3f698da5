// Tensor Memory Accelerator (TMA) copies and the mbarriers that track them, sm_90a: the int8
// implicit GEMM's tiles (qconv_tma.cu), the float16 halo-tile convolution (halo_conv.cu) and the
// ConvTranspose GEMM (conv_transpose_tma.cu).
// Built for other GPUs too (release builds), they compile to nothing there: the kernels using
// them trap, and the host never launches those (sm90a.hpp).
#pragma once

#include <cuda.h>

#include <cstdint>

namespace kiln::cuda::kernels {

#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
#define KILN_TMA_ASM(...) asm volatile(__VA_ARGS__)
#else
#define KILN_TMA_ASM(...) \
  do {                    \
  } while (0)
#endif

__device__ __forceinline__ void mbar_init(uint32_t bar, int count) {
  KILN_TMA_ASM("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(bar), "r"(count));
}
// The barriers' initialization made visible to the async proxy (TMA) before any copy uses them.
__device__ __forceinline__ void mbar_init_fence() {
  KILN_TMA_ASM("fence.mbarrier_init.release.cluster;\n" ::: "memory");
}
// One arrival that also announces `bytes` of copies the barrier's phase waits for.
__device__ __forceinline__ void mbar_expect_tx(uint32_t bar, int bytes) {
  KILN_TMA_ASM("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(bar), "r"(bytes) : "memory");
}
__device__ __forceinline__ void mbar_arrive(uint32_t bar) {
  KILN_TMA_ASM("mbarrier.arrive.shared::cta.b64 _, [%0];\n" ::"r"(bar) : "memory");
}
// Waits until the barrier's phase of this parity (0, 1, 0, ... for its successive phases) completes.
__device__ __forceinline__ void mbar_wait(uint32_t bar, uint32_t parity) {
  KILN_TMA_ASM(
      "{\n.reg .pred p;\n"
      "WAIT_%=:\n"
      "mbarrier.try_wait.parity.shared::cta.b64 p, [%0], %1;\n"
      "@!p bra WAIT_%=;\n}\n" ::"r"(bar),
      "r"(parity)
      : "memory");
}

__device__ __forceinline__ void tma_prefetch_map(const CUtensorMap* map) {
  KILN_TMA_ASM("prefetch.tensormap [%0];\n" ::"l"(reinterpret_cast<uint64_t>(map)) : "memory");
}
// A box of the map at the coordinates (innermost first; negative and past-the-end parts come in
// as zeros) into shared memory, completing `bar`'s expected bytes.
__device__ __forceinline__ void tma_load_2d(uint32_t dst, const CUtensorMap* map, int c0, int c1, uint32_t bar) {
  KILN_TMA_ASM(
      "cp.async.bulk.tensor.2d.shared::cluster.global.tile.mbarrier::complete_tx::bytes [%0], [%1, {%2, %3}], "
      "[%4];\n" ::
          "r"(dst),
      "l"(reinterpret_cast<uint64_t>(map)), "r"(c0), "r"(c1), "r"(bar)
      : "memory");
}
__device__ __forceinline__ void tma_load_4d(uint32_t dst, const CUtensorMap* map, int c0, int c1, int c2, int c3,
                                            uint32_t bar) {
  KILN_TMA_ASM(
      "cp.async.bulk.tensor.4d.shared::cluster.global.tile.mbarrier::complete_tx::bytes [%0], [%1, {%2, %3, %4, "
      "%5}], [%6];\n" ::"r"(dst),
      "l"(reinterpret_cast<uint64_t>(map)), "r"(c0), "r"(c1), "r"(c2), "r"(c3), "r"(bar)
      : "memory");
}
// An im2col box of an NHWC map: `c`'s channels of consecutive window origins from (w, h, n) on,
// each at the window offset (off_w, off_h) (qconv_tma.cu).
__device__ __forceinline__ void tma_load_im2col(uint32_t dst, const CUtensorMap* map, int c, int w, int h, int n,
                                                uint16_t off_w, uint16_t off_h, uint32_t bar) {
  KILN_TMA_ASM(
      "cp.async.bulk.tensor.4d.shared::cluster.global.im2col.mbarrier::complete_tx::bytes [%0], [%1, {%2, %3, %4, "
      "%5}], [%6], {%7, %8};\n" ::"r"(dst),
      "l"(reinterpret_cast<uint64_t>(map)), "r"(c), "r"(w), "r"(h), "r"(n), "r"(bar), "h"(off_w), "h"(off_h)
      : "memory");
}
// Shared memory -> the map's box at the coordinates (parts past the tensor's end are not written).
__device__ __forceinline__ void tma_store_2d(const CUtensorMap* map, int c0, int c1, uint32_t src) {
  KILN_TMA_ASM("cp.async.bulk.tensor.2d.global.shared::cta.bulk_group [%0, {%1, %2}], [%3];\n" ::"l"(
                   reinterpret_cast<uint64_t>(map)),
               "r"(c0), "r"(c1), "r"(src)
               : "memory");
}
__device__ __forceinline__ void tma_store_4d(const CUtensorMap* map, int c0, int c1, int c2, int c3, uint32_t src) {
  KILN_TMA_ASM("cp.async.bulk.tensor.4d.global.shared::cta.bulk_group [%0, {%1, %2, %3, %4}], [%5];\n" ::"l"(
                   reinterpret_cast<uint64_t>(map)),
               "r"(c0), "r"(c1), "r"(c2), "r"(c3), "r"(src)
               : "memory");
}
__device__ __forceinline__ void tma_store_5d(const CUtensorMap* map, int c0, int c1, int c2, int c3, int c4,
                                             uint32_t src) {
  KILN_TMA_ASM("cp.async.bulk.tensor.5d.global.shared::cta.bulk_group [%0, {%1, %2, %3, %4, %5}], [%6];\n" ::"l"(
                   reinterpret_cast<uint64_t>(map)),
               "r"(c0), "r"(c1), "r"(c2), "r"(c3), "r"(c4), "r"(src)
               : "memory");
}
// Closes this thread's group of stores issued since the last commit.
__device__ __forceinline__ void tma_store_commit() { KILN_TMA_ASM("cp.async.bulk.commit_group;\n" ::: "memory"); }
// Waits until this thread's committed stores have read their shared memory (it may be rewritten).
__device__ __forceinline__ void tma_store_wait_read() {
  KILN_TMA_ASM("cp.async.bulk.wait_group.read 0;\n" ::: "memory");
}
// Every store issued: committed, and waited for until the shared tile has been read (before the CTA ends).
__device__ __forceinline__ void tma_store_wait() {
  tma_store_commit();
  tma_store_wait_read();
}

#undef KILN_TMA_ASM

}  // namespace kiln::cuda::kernels
