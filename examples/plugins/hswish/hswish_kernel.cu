#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include "hswish_kernel.hpp"

namespace {

template <typename T>
__global__ void hswish_kernel(const T* __restrict__ x, T* __restrict__ y, int64_t n) {
  // Grid-stride loop: any n with a bounded grid.
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    float v = static_cast<float>(x[i]);
    y[i] = static_cast<T>(v * fminf(fmaxf(v + 3.f, 0.f), 6.f) / 6.f);
  }
}

template <typename T>
cudaError_t launch(const void* x, void* y, int64_t n, cudaStream_t stream) {
  const int threads = 256;
  int64_t blocks = (n + threads - 1) / threads;
  blocks = blocks < 1 ? 1 : (blocks > 65535 * 32 ? 65535 * 32 : blocks);
  hswish_kernel<T><<<static_cast<unsigned>(blocks), threads, 0, stream>>>(static_cast<const T*>(x),
                                                                          static_cast<T*>(y), n);
  return cudaGetLastError();
}

}  // namespace

std::string hswish_cuda(int dtype, const void* x, void* y, int64_t n, void* stream) {
  if (n == 0) return "";
  auto s = static_cast<cudaStream_t>(stream);
  cudaError_t e;
  switch (dtype) {
    case 1: e = launch<float>(x, y, n, s); break;
    case 10: e = launch<__half>(x, y, n, s); break;
    case 16: e = launch<__nv_bfloat16>(x, y, n, s); break;
    default: return "HSwish: unsupported dtype " + std::to_string(dtype);
  }
  if (e != cudaSuccess) return std::string("HSwish kernel launch failed: ") + cudaGetErrorString(e);
  return "";
}
