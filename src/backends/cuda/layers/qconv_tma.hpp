// The TMA tiles of kiln's int8 implicit-GEMM convolution ("igemm_s8:tma128x128", ...;
// qconv_tma.cu), Hopper only: the Tensor Memory Accelerator gathers the window rows (its im2col
// mode: no per-thread index math or addresses), one thread issues every copy, two warpgroups
// multiply with wgmma, and the epilogue runs on the accumulator registers, staging int8 or float16
// results in shared memory for TMA stores (one per warpgroup and 128-byte column strip). qconv_igemm.cu dispatches to it; the parameters are
// igemm_s8's.
#pragma once

#include <cstdint>

#include "backends/cuda/layers/qconv_igemm.hpp"

namespace kiln::cuda::kernels {

// The TMA tiles, by index (pixels x channels): 0 = 128x128, 1 = 128x64 (two warpgroups),
// 2 = 64x256, 3 = 64x128 (one warpgroup).
constexpr int kIgemmTmaTiles = 4;

// Whether TMA tile `tile` takes this geometry: c a multiple of 64 (a reduction stage is 64
// channels of one window position), m a multiple of 16 (TMA row strides are multiples of 16
// bytes; above 128 for the 256-channel tile), strides 1..8, the im2col box's corner offsets
// (tma_corners) within [-128, 127], the grid within limits; the device runs wgmma.
bool igemm_s8_tma_supports(int tile, int64_t n, int64_t h, int64_t w, int64_t c, int64_t m, int64_t oh, int64_t ow,
                           int64_t stride_h, int64_t stride_w, int64_t pad_h, int64_t pad_w);
cudaError_t igemm_s8_tma_prepare(int tile);
// out: 0 int32 sums, 1 int8, 2 float16 (qconv_igemm.cu's Out).
cudaError_t igemm_s8_tma_conv(const IgemmS8Params& p, int tile, int out, cudaStream_t stream);

}  // namespace kiln::cuda::kernels
