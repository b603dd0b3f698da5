// CUDA, cuBLAS(Lt) and cuDNN return codes as kiln Status values (never aborts).
#pragma once

#include <cublasLt.h>
#include <cuda_runtime_api.h>
#include <cudnn.h>

#include "util/error.hpp"

namespace kiln::cuda {

inline Status check(cudaError_t e, const char* what) {
  if (e == cudaSuccess) return Status::Ok();
  return make_error(StatusCode::kRuntimeError, "{}: CUDA error {} ({})", what, cudaGetErrorName(e),
                    cudaGetErrorString(e));
}
inline Status check(cublasStatus_t e, const char* what) {
  if (e == CUBLAS_STATUS_SUCCESS) return Status::Ok();
  // cublasGetStatusName lives in libcublas; the backend links only cublasLt.
  const char* name = e == CUBLAS_STATUS_NOT_SUPPORTED     ? "not supported"
                     : e == CUBLAS_STATUS_INVALID_VALUE   ? "invalid value"
                     : e == CUBLAS_STATUS_ALLOC_FAILED    ? "allocation failed"
                     : e == CUBLAS_STATUS_EXECUTION_FAILED ? "execution failed"
                     : e == CUBLAS_STATUS_ARCH_MISMATCH   ? "architecture mismatch"
                                                          : "error";
  return make_error(StatusCode::kRuntimeError, "{}: cuBLAS status {} ({})", what, static_cast<int>(e), name);
}
inline Status check(cudnnStatus_t e, const char* what) {
  if (e == CUDNN_STATUS_SUCCESS) return Status::Ok();
  return make_error(StatusCode::kRuntimeError, "{}: cuDNN error {}", what, cudnnGetErrorString(e));
}

}  // namespace kiln::cuda

// KILN_CUDA_CHECK(cudaMalloc(&p, n)): returns a Status naming the call when it fails.
#define KILN_CUDA_CHECK(expr) KILN_RETURN_IF_ERROR(::kiln::cuda::check((expr), #expr))
// After a kernel launch: reports launch errors (bad configuration) without synchronizing.
#define KILN_CUDA_CHECK_LAUNCH(name) KILN_RETURN_IF_ERROR(::kiln::cuda::check(cudaGetLastError(), name))
