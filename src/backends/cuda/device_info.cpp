#include "backends/cuda/device_info.hpp"

#include "backends/cuda/cuda_check.hpp"

namespace kiln::cuda {

Status device_available() {
  int count = 0;
  cudaError_t e = cudaGetDeviceCount(&count);
  if (e != cudaSuccess)
    return make_error(StatusCode::kUnsupported, "no usable CUDA device ({}: {})", cudaGetErrorName(e),
                      cudaGetErrorString(e));
  if (count == 0) return make_error(StatusCode::kUnsupported, "no CUDA device found");
  return Status::Ok();
}

Expected<PlanTarget> current_target() {
  KILN_RETURN_IF_ERROR(device_available());
  int dev = 0;
  KILN_CUDA_CHECK(cudaGetDevice(&dev));
  cudaDeviceProp prop{};
  KILN_CUDA_CHECK(cudaGetDeviceProperties(&prop, dev));
  PlanTarget t;
  t.backend = "cuda";
  t.compute_capability = prop.major * 10 + prop.minor;
  t.device_name = prop.name;
  KILN_CUDA_CHECK(cudaRuntimeGetVersion(&t.cuda_runtime_version));
  t.cudnn_version = static_cast<int>(cudnnGetVersion());
  t.cublas_version = static_cast<int>(cublasLtGetVersion());
  return t;
}

}  // namespace kiln::cuda
