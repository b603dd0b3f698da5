// kiln.QConv and kiln.QMatMul: INT8 convolution and matrix product layers made by the CUDA
// backend's qdq-fusion pass (passes/qdq_fusion.cpp) from explicit Q/DQ graphs, never by an ONNX
// model. Symmetric quantization only (zero points 0): the pass fuses nothing else.
//
//   acc = conv(X, W) / X·Wᵀ        exact integer sums (int32 accumulation)
//   v   = acc · x_scale · w_scale[m] + B[m] + Z      Z: float, or int8 · z_scale
//   v   = Relu(v)                                    when activation = "Relu"
//   Y   = v as x_scale's float dtype, or, with y_scale, saturate(round_half_even(v / y_scale)) int8
//
// Inputs: 0 X (int8), 1 x_scale (scalar), 2 W (int8 constant: QConv (M, C/group, k...), QMatMul
// (N, K), one row per output channel), 3 w_scale (M values, float), 4 B (optional, M values, the
// output's float dtype), 5 Z (optional, Y's shape: the float output dtype, or int8), 6 z_scale
// (scalar; needed iff Z is int8), 7 y_scale (optional scalar: int8 output).
// QConv has Conv's attributes and `layout`: "NCHW" (default), or "NHWC" (X, Z and Y 4-D
// (N, H, W, C), W still (M, C, kh, kw); made by the nhwc-layout pass so that consecutive INT8
// convolutions pass int8 NHWC tensors without Transposes), and `x_layout` (default: `layout`),
// X's alone: an NHWC RGB stem reads its NCHW image directly (its CUDA layer copies it space-to-
// depth anyway); both have `activation` ("" or "Relu").
#pragma once

#include "ir/graph.hpp"

namespace kiln {

// Whether the CUDA backend's INT8 kernels (cuDNN NHWC int8 convolution, cuBLASLt int8 GEMM) can
// run this float Conv / MatMul / Gemm once quantized: the fusion pass leaves other nodes alone.
// Conv: 2-D, group 1, dilation 1, symmetric pads, static shapes. MatMul/Gemm: static shapes,
// K and N multiples of 4 (cuBLASLt's IMMA layouts).
bool qconv_int8_runnable(const Node& conv);

// The fewest input channels (per group) worth an INT8 convolution: below it the implicit-GEMM
// kernels pad the channels to 16 and float16 is several times faster ...
inline constexpr int64_t kQConvMinChannels = 16;
// ... unless the window holds enough values (group 1, kh * kw * C within these bounds: an RGB 7x7
// stem's 147) and the stride s >= 2 (both dims) lets the CUDA layer copy X space-to-depth
// (s * s * C channels, padded to 16, at most kQConvSpaceToDepthMaxChannels) and run a
// ceil(k/s)-square int8 convolution of the copy (backends/cuda/layers/qconv.cpp, "s2d_igemm").
// With stride 1 only the im2col tactics could run it (a row of kh * kw * C bytes gathered per
// output pixel), which for ResNet's stem ran slower than float16, so such Convs stay float.
inline constexpr int64_t kQConvIm2colMinDepth = 64;
inline constexpr int64_t kQConvIm2colMaxDepth = 512;
inline constexpr int64_t kQConvSpaceToDepthMaxChannels = 64;
// Whether a window of `window` (kh * kw) taps over `c` channels fits one gathered row.
inline bool qconv_window_fits_rows(int64_t c, int64_t window) {
  return c * window >= kQConvIm2colMinDepth && c * window <= kQConvIm2colMaxDepth;
}
// Whether INT8 pays for a Conv with `c` input channels per group, a window of `window` taps,
// `group` groups and these strides: post-training quantization leaves other Convs float and
// qdq-fusion does not fuse them.
inline bool qconv_int8_worthwhile(int64_t c, int64_t window, int64_t group, int64_t stride_h, int64_t stride_w) {
  if (c >= kQConvMinChannels) return true;
  return group == 1 && qconv_window_fits_rows(c, window) && stride_h >= 2 && stride_w == stride_h &&
         stride_h * stride_h * c <= kQConvSpaceToDepthMaxChannels;
}
bool qmatmul_int8_runnable(int64_t k, int64_t n);

}  // namespace kiln
