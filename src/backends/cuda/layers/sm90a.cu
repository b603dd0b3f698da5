// sm90a.hpp: one device symbol per build says whether its device code has the sm_90a kernels.
#include "backends/cuda/layers/sm90a.hpp"

#include <cuda_runtime.h>

#include <atomic>

namespace kiln::cuda::kernels {

#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
__device__ int kSm90aBuilt = 1;
#else
__device__ int kSm90aBuilt = 0;
#endif

bool sm90a_kernels_available() {
  int device = 0;
  if (cudaGetDevice(&device) != cudaSuccess || device < 0 || device >= 64) {
    cudaGetLastError();
    return false;
  }
  static std::atomic<int> known[64];  // 0 unknown, 1 no, 2 yes (a race only repeats the question)
  int k = known[device].load();
  if (k == 0) {
    int major = 0, minor = 0, built = 0;
    const bool ok = cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device) == cudaSuccess &&
                    cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device) == cudaSuccess &&
                    major == 9 && minor == 0 && cudaMemcpyFromSymbol(&built, kSm90aBuilt, sizeof built) == cudaSuccess;
    cudaGetLastError();  // no device code for this GPU: not an error here
    k = ok && built == 1 ? 2 : 1;
    known[device].store(k);
  }
  return k == 2;
}

}  // namespace kiln::cuda::kernels
