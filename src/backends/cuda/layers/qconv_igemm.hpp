// kiln's INT8 implicit-GEMM convolution (qconv_igemm.cu): tensor cores (mma.sync m16n8k32 s8, or
// Hopper's wgmma m64nNk32 s8)
// on int8 NHWC X and (M, kh, kw, C) weights, no im2col rows: each CTA gathers its window rows
// straight from X with cp.async (zero fill for the padding), in a 4- or 5-stage shared-memory pipeline.
// GEMM view: rows = n*oh*ow output pixels, columns = M output channels, reduction kh*kw*C.
// The epilogue either writes the int32 sums (the layer's own epilogue kernel then runs) or, fused,
// applies alpha[m] (x_scale * w_scale[m]), bias, an int8 residual (times z_scale) or a float16 one,
// Relu and either the requantization (round half to even, saturate) to int8 NHWC Y or the
// rounding to float16 NHWC Y, as q_epilogue does (the int8 rounding may differ by one step for
// values within float rounding of a .5 boundary: 1 / y_scale is folded into the factors).
#pragma once

#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <cstdlib>

namespace kiln::cuda::kernels {

struct IgemmS8Params {
  const int8_t* x = nullptr;  // (n, h, w, c) int8
  const int8_t* w = nullptr;  // (m, kh, kw, c) int8: row m has kh*kw*c contiguous values
  int n = 0, h = 0, w_in = 0, c = 0, m = 0, kh = 0, kw = 0, oh = 0, ow = 0;
  int stride_h = 1, stride_w = 1, pad_h = 0, pad_w = 0;
  // Unfused: acc[p * acc_stride + m] int32 (p the output pixel).
  int32_t* acc = nullptr;
  int64_t acc_stride = 0;
  // Fused: y[p * m + ch] int8 (y set) or float16 (y_h set instead); the residual of y's shape
  // (both may be null): z int8 (times z_scale), or z_h float16 (z_scale 1).
  const float* alpha = nullptr;
  const float* bias = nullptr;  // may be null
  const int8_t* z = nullptr;
  float z_scale = 1.f;
  bool relu = false;
  int8_t* y = nullptr;
  float y_scale = 1.f;
  __half* y_h = nullptr;
  const __half* z_h = nullptr;
  // Every sum is known to stay within +-2^22 (igemm_s8_sums_small): the fused epilogue converts
  // them to float with integer and FMA-pipe instructions instead of the slower I2F.
  bool acc_small = false;
};

// Whether every sum of products of int8 X (|x| <= 128) with these int8 weights (rows x k, row
// major) stays within +-2^22: 128 * max over rows of sum |w| <= 2^22.
inline bool igemm_s8_sums_small(const int8_t* w, int64_t rows, int64_t k) {
  for (int64_t r = 0; r < rows; ++r) {
    int64_t l1 = 0;
    for (int64_t i = 0; i < k; ++i) l1 += std::abs(static_cast<int>(w[r * k + i]));
    if (128 * l1 > (int64_t{1} << 22)) return false;
  }
  return true;
}

// The tile configurations (pixels x channels): 0 = 128x128 (8 warps, 64x32 each), 1 = 64x64
// (4 warps, 32x32 each), 2 = 128x64 (4 warps, 64x32 each): mma.sync, any GPU from sm_80. On an
// sm_90 GPU with code built for sm_90a, warpgroup MMA (wgmma) tiles, one warpgroup per 64 pixels:
// 3 = wg128x128, 4 = wg128x64, 5 = wg64x128, 6 = wg64x64, 7 = wg64x256 (only for M > 128); and
// the TMA tiles (qconv_tma.hpp: TMA copies, wgmma, the epilogue on the accumulator registers),
// 8 = tma128x128, 9 = tma128x64, 10 = tma64x256 (only for M > 128), 11 = tma64x128 (C a multiple
// of 64, M of 16).
constexpr int kIgemmConfigs = 12;
const char* igemm_s8_config_name(int config);  // "128x128", ..., "wg64x64"
bool igemm_s8_wgmma_config(int config);
// Whether the current device runs the wgmma tiles (sm_90 with sm_90a code in this build).
bool igemm_s8_wgmma_available();

// Whether the kernel takes this geometry: c a multiple of 16 (a 16-byte copy never straddles a
// window position), the grid within limits, every size within int32; for a wgmma tile, whether
// the current device runs it; for a TMA tile, igemm_s8_tma_supports (strides and pads too).
bool igemm_s8_supports(int64_t n, int64_t h, int64_t w, int64_t c, int64_t m, int64_t kh, int64_t kw, int64_t oh,
                       int64_t ow, int config, int64_t stride_h = 1, int64_t stride_w = 1, int64_t pad_h = 0,
                       int64_t pad_w = 0);
// Fused outputs need m a multiple of 16 (16-byte stores).
inline bool igemm_s8_fusable(int64_t m) { return m % 16 == 0; }

// Sets the kernels' shared-memory limit on the current device: once, before the first launch there
// (e.g. when the layer is made; not a stream operation, so never inside a graph capture).
cudaError_t igemm_s8_prepare(int config);
// Runs after igemm_s8_prepare(config) on this device.
cudaError_t igemm_s8_conv(const IgemmS8Params& p, int config, cudaStream_t stream);

}  // namespace kiln::cuda::kernels
