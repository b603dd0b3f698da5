// Launchers of the data-dependent ops' kernels (data_dependent.cu): NonZero, NonMaxSuppression,
// TopK. Each writes its output packed for the actual count (which only the device knows) into a
// buffer sized for the largest one, and the count to `count` (an int64 on the device; may be null,
// e.g. when the tactic timer runs the layer). Plain host functions, nothing synchronizes.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

#include "ir/dtype.hpp"

namespace kiln::cuda::kernels {

constexpr int kMaxNonZeroRank = 8;
struct NonZeroShape {
  int rank = 0;
  int64_t dims[kMaxNonZeroRank] = {};
};
// y: int64 [rank, count], the coordinates of x's non-zero elements in row-major order.
// x: any dtype of 1, 2, 4 or 8 bytes (floats compare by value: -0.0 is zero, NaN is not).
cudaError_t non_zero(DType t, const void* x, const NonZeroShape& shape, int64_t* y, int64_t* count,
                     cudaStream_t stream);

struct NmsParams {
  int64_t batches = 0, classes = 0, spatial = 0;
  bool center_point_box = false;
  DType box_t = DType::kFloat32, score_t = DType::kFloat32;
  const int64_t* max_out = nullptr;     // device scalars; null when the input is absent
  const void* iou = nullptr;
  DType iou_t = DType::kFloat32;
  const void* score_threshold = nullptr;
  DType score_threshold_t = DType::kFloat32;
};
// Workspace bytes for nms().
size_t nms_workspace_bytes(const NmsParams& p);
// y: int64 [count, 3] (batch, class, box) triples, per batch and class in order of descending
// score, as the CPU kernel (backends/cpu/non_max_suppression.cpp).
cudaError_t nms(const NmsParams& p, const void* boxes, const void* scores, int64_t* y, int64_t* count,
                void* workspace, cudaStream_t stream);

// TopK along the middle dim of [outer, n, inner]: values (dtype t) and int64 indices of the K
// largest (or smallest) per slice, sorted, ties by lower index, NaN above every number. K is read
// on the device (an int64); outputs are packed as [outer, K, inner]; K outside [0, n] writes
// nothing (the host reports it from the count). t: float32/float16/bfloat16/int32/int64.
cudaError_t top_k(DType t, const void* x, int64_t outer, int64_t n, int64_t inner, const int64_t* k, bool largest,
                  void* values, int64_t* indices, int64_t* count, cudaStream_t stream);

}  // namespace kiln::cuda::kernels
