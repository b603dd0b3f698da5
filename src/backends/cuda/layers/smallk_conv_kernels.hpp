// Kernel entry of the tensor-core small-reduction NHWC convolution (smallk_conv.cu).
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "ir/dtype.hpp"

namespace kiln::cuda::kernels {

// The reduction (kh * kw * C) one m16n8k16 product covers, and the output channel counts built.
inline constexpr int kSmallkMaxReduction = 16;
inline constexpr int kSmallkOutputs[] = {16, 32, 64};

struct SmallkConvParams {
  int n = 1, oh = 1, ow = 1;
  int h = 1, w = 1, c = 1, m = 16;  // X (N, H, W, C), Y (N, OH, OW, M)
  int kh = 1, kw = 1, sh = 1, sw = 1, ph = 0, pw = 0, dh = 1, dw = 1;
  bool relu = false;
};

// What a launch needs beyond the params, worked out once per layer.
struct SmallkConvLaunch {
  unsigned grid = 0;
};
cudaError_t smallk_conv_setup(DType t, const SmallkConvParams& p, SmallkConvLaunch* launch);
// Y = act(conv(X, W) + B), float16 or bfloat16; W is (M, kh, kw, C), B (M) may be null. M one of
// kSmallkOutputs, kh * kw * C <= kSmallkMaxReduction, N * OH * OW < 2^31; Y 16-byte aligned.
cudaError_t smallk_conv(DType t, const void* x, const void* w, const void* b, void* y, const SmallkConvParams& p,
                        const SmallkConvLaunch& launch, cudaStream_t stream);

}  // namespace kiln::cuda::kernels
