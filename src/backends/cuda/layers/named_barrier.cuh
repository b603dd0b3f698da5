// Named CTA barriers (bar.sync / bar.arrive with an id and a thread count, a multiple of 32): some
// of a CTA's warps syncing among themselves, or one group of warps signalling another without
// waiting (the warpgroups of qconv_tma.cu and halo_conv.cu). Id 0 is __syncthreads()'s.
#pragma once

namespace kiln::cuda::kernels {

__device__ __forceinline__ void named_barrier_sync(int id, int threads) {
  asm volatile("bar.sync %0, %1;\n" ::"r"(id), "r"(threads) : "memory");
}
__device__ __forceinline__ void named_barrier_arrive(int id, int threads) {
  asm volatile("bar.arrive %0, %1;\n" ::"r"(id), "r"(threads) : "memory");
}

}  // namespace kiln::cuda::kernels
