// Kernels of the INT8 layers (qdq_kernels.cu): QuantizeLinear / DequantizeLinear, the int8 NCHW ->
// padded NHWC copy that cuDNN's int8 convolution needs, and the epilogue that turns int32 sums into
// the layer's float or requantized int8 output.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "ir/dtype.hpp"

namespace kiln::cuda::kernels {

// Element i uses parameter (i / inner) % axis_len (axis_len 1: one parameter for all).
// y = saturate(round_half_even(x / scale) + zp), x float32/float16/bfloat16, scale float32/float16/
// bfloat16, y (and zp, which may be null) int8 or uint8. NaN quantizes to the zero point.
cudaError_t quantize_linear(DType xt, const void* x, DType st, const void* scale, DType yt, const void* zp, void* y,
                            int64_t n, int64_t axis_len, int64_t inner, cudaStream_t stream);
// y = (x - zp) * scale, x (and zp, may be null) int8 or uint8, y of the scale's float dtype.
cudaError_t dequantize_linear(DType xt, const void* x, DType st, const void* scale, const void* zp, void* y,
                              int64_t n, int64_t axis_len, int64_t inner, cudaStream_t stream);
// x (n, c, hw) int8 -> y (n, hw, cp) int8 with channels c..cp-1 zero.
cudaError_t nchw_to_nhwc_int8(const int8_t* x, int8_t* y, int64_t n, int64_t c, int64_t hw, int64_t cp,
                              cudaStream_t stream);

// A 2-D int8 convolution's geometry in NHWC terms (channels padded to multiples of 4).
struct QConvShape {
  int64_t n = 0, h = 0, w = 0, cp = 0, mp = 0, kh = 0, kw = 0, oh = 0, ow = 0;
  int64_t stride_h = 1, stride_w = 1, pad_h = 0, pad_w = 0;
};
// acc (n, oh, ow, mp) int32 = conv(x (n, h, w, cp), w (mp, kh, kw, cp)) with dp4a: a plain
// direct kernel, the fallback tactic when cuDNN offers no int8 algorithm.
cudaError_t qconv_direct(const int8_t* x, const int8_t* w, int32_t* acc, const QConvShape& s, cudaStream_t stream);

// col (n * oh * ow, kh * kw * cp) int8 from x (n, h, w, cp) int8, zero where the window leaves x:
// row (img, oy, ox), column (ky, kx, c), the weights' (m, ky, kx, c) order, for an int8 GEMM.
cudaError_t im2col_nhwc_int8(const int8_t* x, int8_t* col, const QConvShape& s, cudaStream_t stream);

// y (n, hs, ws, cs) int8 from x (n, h, w, c) int8 NHWC (or NCHW): y[img, Y, X, (sy * s + sx) * c + ci] =
// x[img, Y*s + sy - pad_h, X*s + sx - pad_w, ci], zero outside x and for channels s*s*c..cs-1
// (cs a multiple of 16, at most kMaxDepthChannels). qconv_repack.cu.
inline constexpr int kMaxDepthChannels = 64;
struct SpaceToDepth {
  int n = 0, h = 0, w = 0, c = 0, s = 2, pad_h = 0, pad_w = 0, hs = 0, ws = 0, cs = 0;
  bool x_nchw = false;  // x is (n, c, h, w) instead
};
cudaError_t space_to_depth_int8(const int8_t* x, int8_t* y, const SpaceToDepth& p, cudaStream_t stream);

// rows (n * oh * ow, kp) int8 from x (n, h, w, c) int8 NHWC with any c: row (img, oy, ox) holds
// the window's values in (ky, kx, c) order, kh * kw * c of them (zero where the window leaves x),
// then zeros up to kp (a multiple of 16, at most kIm2colMaxDepth). qconv_repack.cu.
inline constexpr int kIm2colMaxDepth = 512;
struct Im2colRows {
  int n = 0, h = 0, w = 0, c = 0, kh = 0, kw = 0, oh = 0, ow = 0;
  int stride_h = 1, stride_w = 1, pad_h = 0, pad_w = 0, kp = 0;
};
cudaError_t im2col_rows_int8(const int8_t* x, int8_t* rows, const Im2colRows& g, cudaStream_t stream);

// acc (rows, n) int32 = x (rows, k) int8 times wᵀ, w (n, k) int8; k a multiple of 4, x and w
// 4-byte aligned. The fallback tactic of kiln.QMatMul.
cudaError_t qmatmul_direct(const int8_t* x, const int8_t* w, int32_t* acc, int64_t rows, int64_t n, int64_t k,
                           cudaStream_t stream);

// v = acc[(img * spatial + s) * acc_stride + c] * alpha[c] + bias[c] + z, Relu, stored to y at
// (img, c, s) (NCHW, `nchw`) or (img, s, c): as y_dtype (float), or int8 = saturate(round(v / y_scale)).
// z (may be null) has y's layout: float of y's dtype, or int8 times z_scale.
struct QEpilogueParams {
  const int32_t* acc = nullptr;
  const float* acc_f32 = nullptr;  // used instead of acc when set: the sums as float32 (cuDNN's)
  int64_t acc_stride = 0;
  int64_t images = 0, spatial = 0, channels = 0;
  bool nchw = false;
  const float* alpha = nullptr;  // x_scale * w_scale[c]
  const float* bias = nullptr;   // may be null
  const void* z = nullptr;
  DType z_dtype = DType::kUndefined;
  float z_scale = 1.f;
  bool relu = false;
  void* y = nullptr;
  DType y_dtype = DType::kUndefined;
  float y_scale = 1.f;
};
cudaError_t q_epilogue(const QEpilogueParams& p, cudaStream_t stream);

}  // namespace kiln::cuda::kernels
