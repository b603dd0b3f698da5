// cuBLASLt plumbing shared by the float (matmul.cpp), INT8 (qgemm_lt.cpp) and FP8 (fp8_matmul.cpp)
// GEMM layers: descriptors owned together, and the one handle used for build-time queries.
#pragma once

#include <cublasLt.h>

#include <mutex>

#include "backends/cuda/cuda_check.hpp"

namespace kiln::cuda {

// One GEMM's descriptors (operation and the A, B, C/D layouts), destroyed together.
struct LtDescriptors {
  cublasLtMatmulDesc_t op = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;
  cublasLtMatrixLayout_t d = nullptr;  // D's layout when it differs from C's (FP8 output); else null
  LtDescriptors() = default;
  LtDescriptors(const LtDescriptors&) = delete;
  LtDescriptors& operator=(const LtDescriptors&) = delete;
  ~LtDescriptors() {
    if (op) cublasLtMatmulDescDestroy(op);
    if (a) cublasLtMatrixLayoutDestroy(a);
    if (b) cublasLtMatrixLayoutDestroy(b);
    if (c) cublasLtMatrixLayoutDestroy(c);
    if (d) cublasLtMatrixLayoutDestroy(d);
  }
};

// The process's cuBLASLt handle for build-time heuristics and tactic listing (layers run with their
// context's handle).
inline Expected<cublasLtHandle_t> lt_query_handle() {
  static std::once_flag once;
  static cublasLtHandle_t handle = nullptr;
  static cublasStatus_t status = CUBLAS_STATUS_SUCCESS;
  std::call_once(once, [] { status = cublasLtCreate(&handle); });
  KILN_RETURN_IF_ERROR(check(status, "cublasLtCreate"));
  return handle;
}

}  // namespace kiln::cuda
