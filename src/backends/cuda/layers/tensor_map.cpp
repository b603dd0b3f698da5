#include "backends/cuda/layers/tensor_map.hpp"

#include <cuda_runtime.h>

namespace kiln::cuda::kernels {
namespace {

template <typename Fn>
Fn entry_point(const char* name) {
  cudaDriverEntryPointQueryResult q{};
  void* f = nullptr;
  if (cudaGetDriverEntryPointByVersion(name, &f, 12000, cudaEnableDefault, &q) == cudaSuccess &&
      q == cudaDriverEntryPointSuccess)
    return reinterpret_cast<Fn>(f);
  cudaGetLastError();
  return nullptr;
}

}  // namespace

PFN_cuTensorMapEncodeTiled_v12000 tensor_map_encoder_tiled() {
  static const auto f = entry_point<PFN_cuTensorMapEncodeTiled_v12000>("cuTensorMapEncodeTiled");
  return f;
}

PFN_cuTensorMapEncodeIm2col_v12000 tensor_map_encoder_im2col() {
  static const auto f = entry_point<PFN_cuTensorMapEncodeIm2col_v12000>("cuTensorMapEncodeIm2col");
  return f;
}

bool encode_nhwc64_f16(CUtensorMap* map, const void* base, int64_t n, int64_t h, int64_t w, int64_t pitch, int box_w,
                       int box_h) {
  const auto encode = tensor_map_encoder_tiled();
  if (!encode || pitch < 64) return false;
  const cuuint64_t dims[4] = {64, static_cast<cuuint64_t>(w), static_cast<cuuint64_t>(h), static_cast<cuuint64_t>(n)};
  const cuuint64_t row = static_cast<cuuint64_t>(pitch) * 2;
  const cuuint64_t strides[3] = {row, row * static_cast<cuuint64_t>(w), row * static_cast<cuuint64_t>(w * h)};
  const cuuint32_t box[4] = {64, static_cast<cuuint32_t>(box_w), static_cast<cuuint32_t>(box_h), 1};
  const cuuint32_t estr[4] = {1, 1, 1, 1};
  return encode(map, CU_TENSOR_MAP_DATA_TYPE_FLOAT16, 4, const_cast<void*>(base), dims, strides, box, estr,
                CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B, CU_TENSOR_MAP_L2_PROMOTION_L2_128B,
                CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE) == CUDA_SUCCESS;
}

bool encode_rows64_f16(CUtensorMap* map, const void* base, int64_t rows, int64_t cols, int box_rows) {
  const auto encode = tensor_map_encoder_tiled();
  if (!encode || cols < 64 || cols % 8 != 0) return false;
  const cuuint64_t dims[2] = {static_cast<cuuint64_t>(cols), static_cast<cuuint64_t>(rows)};
  const cuuint64_t strides[1] = {static_cast<cuuint64_t>(cols) * 2};
  const cuuint32_t box[2] = {64, static_cast<cuuint32_t>(box_rows)};
  const cuuint32_t estr[2] = {1, 1};
  return encode(map, CU_TENSOR_MAP_DATA_TYPE_FLOAT16, 2, const_cast<void*>(base), dims, strides, box, estr,
                CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B, CU_TENSOR_MAP_L2_PROMOTION_L2_128B,
                CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE) == CUDA_SUCCESS;
}

}  // namespace kiln::cuda::kernels
