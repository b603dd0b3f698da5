// Host side of the TMA kernels (tma.cuh): cuTensorMapEncode* from the driver, found through the
// runtime (kiln does not link libcuda), and the tensor maps the kernels share.
#pragma once

#include <cuda.h>
#include <cudaTypedefs.h>

#include <cstdint>

namespace kiln::cuda::kernels {

// Null when the driver has no such entry point.
PFN_cuTensorMapEncodeTiled_v12000 tensor_map_encoder_tiled();
PFN_cuTensorMapEncodeIm2col_v12000 tensor_map_encoder_im2col();

// Float16 NHWC (n, h, w, 64 channels) whose pixels are `pitch` channels apart (64: packed; more:
// a channel slice of a wider tensor), boxes of 64 channels x box_w x box_h pixels of one image,
// 128-byte swizzled (each pixel's 128 bytes one swizzle row). False when the driver refuses it.
bool encode_nhwc64_f16(CUtensorMap* map, const void* base, int64_t n, int64_t h, int64_t w, int64_t pitch, int box_w,
                       int box_h);

// A float16 row-major matrix (rows, cols), cols a multiple of 8: boxes of 64 columns x box_rows
// rows, 128-byte swizzled (each row's 64 columns one swizzle row). False when the driver refuses it.
bool encode_rows64_f16(CUtensorMap* map, const void* base, int64_t rows, int64_t cols, int box_rows);

}  // namespace kiln::cuda::kernels
