// Kernel entry of the direct 1x1 NHWC convolution with few output channels (narrow_conv.cu).
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "ir/dtype.hpp"

namespace kiln::cuda::kernels {

constexpr int kNarrowMaxOutputs = 8;
constexpr int kNarrowMaxInputs = 1024;
// Y (pixels, m) = act(X (pixels, c) · W (m, c)ᵀ + B [+ Z]); c a multiple of 16 bytes' worth of
// elements, X 16-byte aligned; m <= kNarrowMaxOutputs, c <= kNarrowMaxInputs.
cudaError_t narrow_conv(DType t, const void* x, const void* w, const void* b, const void* z, void* y, int64_t pixels,
                        int c, int m, bool relu, cudaStream_t stream);

}  // namespace kiln::cuda::kernels
