// Host interface of the row-reduction CUDA kernels: Softmax/LogSoftmax/Hardmax (softmax.cu),
// LayerNormalization (layer_norm.cu) and the Reduce* ops (reduce.cu). All accumulate in float
// (float16/bfloat16 included). Tensors are seen as (outer, len, inner) around the reduced span.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "ir/dtype.hpp"

namespace kiln::cuda {

enum class SoftmaxKind : int { kSoftmax, kLogSoftmax, kHardmax };

bool softmax_supported(DType t);  // float32, float16, bfloat16
cudaError_t launch_softmax(SoftmaxKind kind, DType t, const void* x, void* y, int64_t outer, int64_t len,
                           int64_t inner, cudaStream_t stream);

// kiln.MaskedSoftmax: rows of `len` (<= 1024) contiguous values, y = softmax(x * scale + mask).
// The mask (nullable, x's dtype) of row r starts at sum_d coord_d(r) * strides[d], with r's
// coordinates over row_dims (row-major; the rows' index space, x's dims but the last).
constexpr int kMaxMaskRank = 8;
struct MaskIndex {
  int rank = 0;
  int64_t row_dims[kMaxMaskRank] = {};
  int64_t strides[kMaxMaskRank] = {};
};
cudaError_t launch_masked_softmax(DType t, const void* x, const void* mask, const MaskIndex& mi, float scale,
                                  void* y, int64_t rows, int64_t len, cudaStream_t stream);

// y = (x - mean) / sqrt(var + eps) * scale + bias over rows of `cols` contiguous values; scale
// and bias (nullable) hold `cols` values of x's dtype. mean/inv_std (nullable) get one float per
// row.
bool layer_norm_supported(DType t);
cudaError_t launch_layer_norm(DType t, const void* x, const void* scale, const void* bias, void* y, float* mean,
                              float* inv_std, int64_t rows, int64_t cols, float eps, cudaStream_t stream);
// The same, also writing yq = e4m3(y * q_inv_scale) of the rounded y (rows * cols bytes,
// saturating) in the same pass: kiln.Fp8LayerNorm. Rows of at most 1024 values.
bool layer_norm_e4m3_supported(DType t, int64_t cols);
cudaError_t launch_layer_norm_e4m3(DType t, const void* x, const void* scale, const void* bias, void* y, void* yq,
                                   float q_inv_scale, int64_t rows, int64_t cols, float eps, cudaStream_t stream);

enum class ReduceKind : int { kSum, kMean, kMax, kMin };

// Reduces the middle dim of (outer, len, inner) into (outer, inner).
bool reduce_supported(ReduceKind kind, DType t);
cudaError_t launch_reduce(ReduceKind kind, DType t, const void* x, void* y, int64_t outer, int64_t len,
                          int64_t inner, cudaStream_t stream);

}  // namespace kiln::cuda
