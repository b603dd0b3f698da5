// Launchers of kiln's own kernels for the convolution, pooling, normalization and data-movement
// layers. Plain host functions (no IR types beyond DType) so the .cu files stay light for nvcc;
// each enqueues on `stream` and returns the launch's error code (nothing synchronizes).
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

#include "ir/dtype.hpp"

namespace kiln::cuda::kernels {

// --- per-channel math over (outer, channels, inner) layouts (channel_ops.cu) ---
// y = x * a[c] + b[c]; a null means a = 1. x may equal y. t: float32/float16/bfloat16.
cudaError_t channel_affine(DType t, const void* x, void* y, const float* a, const float* b, int64_t outer,
                           int64_t channels, int64_t inner, cudaStream_t stream);
// y += bias[c] in place, bias of dtype t (a convolution's B).
cudaError_t add_channel_bias(DType t, void* y, const void* bias, int64_t outer, int64_t channels, int64_t inner,
                             cudaStream_t stream);
// y = act(y + bias[c] + z) in place, bias (of dtype t) and z (Y's shape) may be null; act is ReLU
// when `relu`, else identity (conv_epilogue.cu: kiln.FusedConv's unfused tactics).
cudaError_t conv_epilogue(DType t, void* y, const void* bias, const void* z, bool relu, int64_t outer,
                          int64_t channels, int64_t inner, cudaStream_t stream);
// BatchNormalization's inference coefficients from device parameters of any float dtype:
// a = scale / sqrt(var + eps), b = bias - mean * a.
cudaError_t batch_norm_coefficients(const void* scale, DType scale_t, const void* bias, DType bias_t,
                                    const void* mean, DType mean_t, const void* var, DType var_t, float eps,
                                    float* a, float* b, int64_t channels, cudaStream_t stream);
// InstanceNormalization: per (n, c) row of `inner` values, y = (x - mean) / sqrt(var + eps) * scale[c] + bias[c].
cudaError_t instance_norm(DType t, const void* x, void* y, const void* scale, const void* bias, DType param_t,
                          float eps, int64_t batch, int64_t channels, int64_t inner, cudaStream_t stream);

// --- pooling (pool.cu) ---
enum class PoolKind : int { kMax = 0, kAverage = 1, kLp = 2 };
// A window over up to 3 spatial dims, leading unused dims set to size 1 (kernel 1, stride 1).
struct PoolParams {
  PoolKind kind = PoolKind::kMax;
  int64_t in[3] = {1, 1, 1}, out[3] = {1, 1, 1};
  int kernel[3] = {1, 1, 1}, stride[3] = {1, 1, 1}, dilation[3] = {1, 1, 1};
  int pad_begin[3] = {0, 0, 0}, pad_end[3] = {0, 0, 0};
  bool count_include_pad = false;
  int p = 2;                 // LpPool's exponent
  bool column_major = false; // MaxPool's storage_order = 1 for Indices
};
// Direct pooling of `planes` (N * C) planes; indices (int64, may be null) as MaxPool's output 1.
// t: float32/float16/bfloat16, and int8/uint8 for max pooling.
cudaError_t pool_direct(DType t, const void* x, void* y, int64_t* indices, int64_t planes, const PoolParams& p,
                        cudaStream_t stream);
// Windowed max/average pooling of NHWC data (nhwc_pool.cu): symmetric pads, no dilation, floor
// mode (the windows nhwc_pool_window accepts). t: float32/float16/bfloat16.
struct NhwcPoolParams {
  int64_t n = 1, oh = 1, ow = 1, c = 1;
  int h = 1, w = 1, kh = 1, kw = 1, sh = 1, sw = 1, ph = 0, pw = 0;
  bool count_include_pad = false;
};
cudaError_t nhwc_pool(DType t, bool max, const void* x, void* y, const NhwcPoolParams& p, cudaStream_t stream);
// GlobalMaxPool / GlobalAveragePool: one value per plane of `size` values.
cudaError_t global_pool(DType t, bool max, const void* x, void* y, int64_t planes, int64_t size, cudaStream_t stream);

// --- data movement (copy.cu, transpose.cu), by element size ---
// Copies `rows` rows of `width` bytes; rows start every `src_pitch` / `dst_pitch` bytes.
cudaError_t copy_2d(void* dst, int64_t dst_pitch, const void* src, int64_t src_pitch, int64_t width, int64_t rows,
                    cudaStream_t stream);

// Concat (split = false) / Split (split = true) of `rows` rows in one launch: each row of `whole`
// is part 0's row (widths[0] bytes), then part 1's, ... (n <= kMaxRowParts; a part of width 0 is
// skipped). cudaErrorNotSupported, with nothing launched, when the parts are too many or their
// widths and addresses are not multiples of 4 bytes: copy_2d per part then.
constexpr int kMaxRowParts = 8;
cudaError_t concat_rows(void* whole, void* const* parts, const int64_t* widths, int n, int64_t rows, bool split,
                        cudaStream_t stream);

constexpr int kMaxRank = 8;
// y[o] = x[sum_i coord_i(o) * in_strides[i]] for o over out_dims (row-major), any rank <= 8.
struct StridedParams {
  int rank = 0;
  int64_t out_dims[kMaxRank] = {};
  int64_t in_strides[kMaxRank] = {};  // in elements; may be 0 (broadcast) or negative (reversed)
  int64_t in_offset = 0;              // elements added to every source index
};
// elem_size 1, 2, 4, 8 or 16 (16: x and y 16-byte aligned).
cudaError_t strided_copy(size_t elem_size, const void* x, void* y, const StridedParams& p, cudaStream_t stream);
// x (batch, planes, size) -> y (batch, size, planes) for 1..kMaxInterleavePlanes planes (an NCHW
// image to NHWC), elem_size 1, 2, 4 or 8.
inline constexpr int64_t kMaxInterleavePlanes = 4;
cudaError_t interleave_planes(size_t elem_size, const void* x, void* y, int64_t batch, int64_t planes, int64_t size,
                              cudaStream_t stream);
// x (batch, rows, cols) -> y (batch, cols, rows), through shared-memory tiles.
cudaError_t batched_transpose(size_t elem_size, const void* x, void* y, int64_t batch, int64_t rows, int64_t cols,
                              cudaStream_t stream);

// --- per-axis index maps (index_kernels.cu): Slice, Pad, Expand, Tile, nearest Resize ---
// y[o] = x[sum_i maps[map_offset[i] + coord_i(o)]], where each map entry is a source element
// offset (index * input stride); an entry < 0 on any axis writes *fill (zero when fill is null).
struct AxisMapParams {
  int rank = 0;
  int64_t out_dims[kMaxRank] = {};
  int64_t map_offset[kMaxRank] = {};
};
cudaError_t axis_map_gather(size_t elem_size, const void* x, void* y, const int64_t* maps, const void* fill,
                            const AxisMapParams& p, cudaStream_t stream);

// Gather along an axis: x (outer, axis_dim, inner), indices (count), y (outer, count, inner).
// Negative indices count from the end; out-of-range ones write zeros (a kernel cannot fail).
cudaError_t gather(size_t elem_size, const void* x, void* y, const void* indices, bool indices_int64, int64_t count,
                   int64_t outer, int64_t axis_dim, int64_t inner, cudaStream_t stream);

// Separable weighted resampling (linear/cubic Resize) of up to 3 axes: for each resized axis r,
// `taps` source element offsets (index * input stride) and weights per output index, at
// offset[r] in the tables; other axes map output coordinate c to c * in_stride.
struct ResampleParams {
  int rank = 0;
  int64_t out_dims[kMaxRank] = {};
  int64_t in_strides[kMaxRank] = {};
  int resized[kMaxRank] = {};  // -1, or the resized axis' slot 0..2
  int taps = 2;
  int64_t table_offset[3] = {};
};
cudaError_t resample(DType t, const void* x, void* y, const int64_t* tap_offsets, const float* tap_weights,
                     const ResampleParams& p, cudaStream_t stream);

}  // namespace kiln::cuda::kernels
