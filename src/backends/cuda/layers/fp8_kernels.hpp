// Kernels of the FP8 GEMM layer (fp8_quantize.cu): activation quantization to float8 E4M3 and
// the bias/activation epilogue for products whose epilogue cuBLASLt does not fuse.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "ir/dtype.hpp"

namespace kiln::cuda::kernels {

// y[i] = e4m3(x[i] / scale): ties to even, saturating to +-448 (ONNX QuantizeLinear saturate=1),
// NaN stays NaN. x: float32/float16/bfloat16; y: n bytes.
cudaError_t quantize_e4m3(DType t, const void* x, void* y, float scale, int64_t n, cudaStream_t stream);

enum class Fp8Act : int { kNone = 0, kRelu = 1, kGeluErf = 2, kGeluTanh = 3 };
// In place over a row-major [rows, cols] y of dtype t: y = act(y + bias[col]); bias may be null.
cudaError_t bias_activation(DType t, void* y, const void* bias, int64_t rows, int64_t cols, Fp8Act act,
                            cudaStream_t stream);
// q = e4m3(act(y + bias[col]) * inv_scale) (saturating) over a row-major [rows, cols] y of dtype t;
// q: rows * cols bytes. The float8-output GEMM's epilogue when cuBLASLt's is not used.
cudaError_t bias_activation_e4m3(DType t, const void* y, const void* bias, void* q, int64_t rows, int64_t cols,
                                 Fp8Act act, float inv_scale, cudaStream_t stream);

}  // namespace kiln::cuda::kernels
