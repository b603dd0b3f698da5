// Kernel entry of the Hopper halo-tile 3x3 convolution (halo_conv.cu): float16 NHWC, stride 1,
// pads 1, 64 output and 64 input channels.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace kiln::cuda::kernels {

// The weights stay in shared memory (72 KiB) next to two halo stages (23 KiB each) and an output
// tile (16 KiB) per warpgroup.
inline constexpr int kHaloConvInChannels = 64;
inline constexpr int kHaloConvOutChannels = 64;

inline constexpr int kHaloConvMaxHead = 8;

struct HaloConvParams {
  int n = 1, h = 1, w = 1, c = 64;  // X (N, H, W, C), Y (N, H, W, 64)
  bool relu = false;
  int head = 0;  // > 0: a 1x1 head of that many outputs is applied to Y, which is not written
};

// What a launch needs beyond the params, worked out once per layer (not per inference).
struct HaloConvLaunch {
  unsigned grid = 0;
  int tiles_x = 0, tiles_y = 0;
  int64_t tiles = 0;
  size_t smem = 0;
};
// Checks `p`, lets the kernel use its shared memory on the current device and sizes the
// persistent grid (an sm_90 GPU with sm_90a code: sm90a.hpp).
cudaError_t halo_conv_setup(const HaloConvParams& p, HaloConvLaunch* launch);
// Y = act(conv3x3(X, W) + B + Z); W is (64, 3, 3, C); B (64) and Z (packed, Y's dims) may be null.
// With p.head = K: `y` receives H (N, H, W, K) = Y' . HWᵀ + HB instead, Y' being Y rounded to
// float16; HW is (K, 64), HB (K) may be null.
// X, W, Z and Y 16-byte aligned (the TMA's requirement; cudaErrorMisalignedAddress otherwise).
cudaError_t halo_conv(const void* x, const void* w, const void* b, const void* z, void* y, const HaloConvParams& p,
                      const HaloConvLaunch& launch, cudaStream_t stream, const void* head_w = nullptr,
                      const void* head_b = nullptr);

}  // namespace kiln::cuda::kernels
