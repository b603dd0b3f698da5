// Kernel entry of the Hopper GEMM for a float16 NHWC ConvTranspose whose kernel equals its stride
// (conv_transpose_tma.cu): Y[n, kh*h + a, kw*w + b, o] = X[n, h, w, :] . W[:, a, b, o] + B[o].
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace kiln::cuda::kernels {

struct UpGemmParams {
  int64_t n = 1, h = 1, w = 1, c = 64;  // X (N, H, W, C)
  int64_t kh = 2, kw = 2, m = 64;       // the kernel (= stride) and the output channels
  int64_t tile_cols = 256;              // a tile's product columns: 128 or 256
};

// The kernel's shared memory (offsets from its 1024-byte-aligned base): the stage ring (X's
// 64-channel slice, and Wt's unless resident), Wt's whole column tile when resident (loaded once
// per CTA), the two warpgroups' staging tiles, every product column's bias, then the barriers.
struct UpGemmSmem {
  uint32_t stage_bytes = 0, stages = 0, resident_w = 0, staging = 0, bias = 0, barriers = 0;
  bool resident = false;
  size_t bytes = 0;  // with the alignment slack
};

// What a launch needs beyond the params, worked out once per layer.
struct UpGemmLaunch {
  unsigned grid = 0;  // persistent: at most one CTA per SM
  int col_tiles = 0;
  int64_t tiles = 0;
  int box_w = 0, box_rows = 0;  // a warpgroup's 64 pixels as box_rows input rows of box_w pixels
  UpGemmSmem layout;
};

// Whether the kernel takes this shape: C and M multiples of 64, kh*kw*M <= 4096, W a multiple or
// a divisor of 64 (a warpgroup's 64 pixels are whole input rows or one row's part), and a tile
// width of 128 or 256.
bool up_gemm_fits(const UpGemmParams& p);
// Checks `p` and lets the kernel use its shared memory on the current device (an sm_90 GPU with
// sm_90a code: sm90a.hpp).
cudaError_t up_gemm_setup(const UpGemmParams& p, UpGemmLaunch* launch);
// Y as above; wt is W transposed to (kh*kw*M, C), B (M) may be null. X, Wt and Y 16-byte aligned.
cudaError_t up_gemm(const void* x, const void* wt, const void* b, void* y, const UpGemmParams& p,
                    const UpGemmLaunch& launch, cudaStream_t stream);

}  // namespace kiln::cuda::kernels
