// Kernel entry of the direct small-input-channel NHWC convolution (small_channel_conv.cu).
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "ir/dtype.hpp"

namespace kiln::cuda::kernels {

struct SmallConvParams {
  int64_t n = 1, oh = 1, ow = 1;
  int h = 1, w = 1, c = 1, m = 1;  // X (N, H, W, C), Y (N, OH, OW, M)
  int kh = 1, kw = 1, sh = 1, sw = 1, ph = 0, pw = 0, dh = 1, dw = 1;
  bool relu = false;
};
// The weights (M, kh, kw, C) are staged in shared memory: (kh*kw*C + 1) * M floats must fit 48 KiB.
// M must be a multiple of 16 bytes' worth of elements; X, W, B, Z, Y 16-byte aligned (Z, Y).
cudaError_t small_channel_conv(DType t, const void* x, const void* w, const void* b, const void* z, void* y,
                               const SmallConvParams& p, cudaStream_t stream);

}  // namespace kiln::cuda::kernels
