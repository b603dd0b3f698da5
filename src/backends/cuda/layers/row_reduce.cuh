// Reductions across a group of G threads that cooperate on one row: G = 32 (one warp, several
// rows per block, shuffles only) or G = blockDim.x (one row per block, shuffles then shared
// memory). Every thread of the group gets the result. Callers keep the row loop uniform across
// the group (the block, when G > 32), since G > 32 synchronizes the block.
#pragma once

#include "backends/cuda/layers/ew_device.cuh"

namespace kiln::cuda::ew {

// Running max and sum of exp(x - max) (online softmax).
struct MaxSum {
  float m, s;
};
__device__ __forceinline__ MaxSum combine(MaxSum a, MaxSum b) {
  const float m = fmaxf(a.m, b.m);
  if (m == -INFINITY) return {m, 0.f};  // nothing finite yet (avoids -inf - -inf = NaN)
  return {m, a.s * expf(a.m - m) + b.s * expf(b.m - m)};
}

// Largest value and its first index.
struct ArgMax {
  float v;
  int64_t i;
};
__device__ __forceinline__ ArgMax combine(ArgMax a, ArgMax b) {
  return (b.v > a.v || (b.v == a.v && b.i < a.i)) ? b : a;
}

__device__ __forceinline__ float shfl_xor(float v, int o) { return __shfl_xor_sync(0xffffffffu, v, o); }
__device__ __forceinline__ int64_t shfl_xor(int64_t v, int o) {
  return static_cast<int64_t>(__shfl_xor_sync(0xffffffffu, static_cast<long long>(v), o));
}
__device__ __forceinline__ MaxSum shfl_xor(MaxSum v, int o) { return {shfl_xor(v.m, o), shfl_xor(v.s, o)}; }
__device__ __forceinline__ ArgMax shfl_xor(ArgMax v, int o) { return {shfl_xor(v.v, o), shfl_xor(v.i, o)}; }

// `smem` holds at least G / 32 values of R (unused when G == 32).
template <int G, typename R, typename Op>
__device__ __forceinline__ R group_reduce(R v, Op op, R* smem) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = op(v, shfl_xor(v, o));
  if constexpr (G > 32) {
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    __syncthreads();  // the previous call's readers are done with smem
    if (lane == 0) smem[warp] = v;
    __syncthreads();
    v = smem[0];
#pragma unroll
    for (int w = 1; w < G / 32; ++w) v = op(v, smem[w]);
  }
  return v;
}

// Rows handled by one block, this thread's row slot and its lane within the row's group.
template <int G>
struct RowGroup {
  int64_t first, step;
  int lane;
  __device__ RowGroup() {
    const int64_t per_block = G == 32 ? blockDim.x / 32 : 1;
    first = static_cast<int64_t>(blockIdx.x) * per_block + (G == 32 ? threadIdx.x / 32 : 0);
    step = static_cast<int64_t>(gridDim.x) * per_block;
    lane = G == 32 ? static_cast<int>(threadIdx.x % 32) : static_cast<int>(threadIdx.x);
  }
};

// Blocks for `rows` rows with G threads per row in blocks of `threads`.
inline unsigned row_grid(int64_t rows, int g, int threads) {
  const int64_t per_block = g == 32 ? threads / 32 : 1;
  int64_t b = (rows + per_block - 1) / per_block;
  return static_cast<unsigned>(b < 1 ? 1 : (b > (1 << 20) ? (1 << 20) : b));
}

}  // namespace kiln::cuda::ew
