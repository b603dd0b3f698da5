// cuBLASLt plumbing shared by the float (matmul.cpp), INT8 (qgemm_lt.cpp) and FP8 (fp8_matmul.cpp)
// GEMM layers: descriptors owned together, and the one handle used for build-time queries.
#pragma once

#include <cublasLt.h>

#include <cctype>
#include <mutex>
#include <string>
#include <vector>

#include "backends/cuda/cuda_check.hpp"
#include "ir/dtype.hpp"

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

// cuBLASLt's type for a float32/float16/bfloat16 tensor.
inline Expected<cudaDataType_t> lt_float_type(DType t) {
  switch (t) {
    case DType::kFloat32: return CUDA_R_32F;
    case DType::kFloat16: return CUDA_R_16F;
    case DType::kBFloat16: return CUDA_R_16BF;
    default: return unsupported("cuBLASLt matmul does not take {}", dtype_name(t));
  }
}

// A column-major matrix layout, strided-batched when batch > 1 (stride 0 repeats one matrix).
inline Status lt_layout(cublasLtMatrixLayout_t* l, cudaDataType_t t, int64_t rows, int64_t cols, int64_t ld,
                        int64_t batch = 1, int64_t stride = 0) {
  KILN_CUDA_CHECK(cublasLtMatrixLayoutCreate(l, t, static_cast<uint64_t>(rows), static_cast<uint64_t>(cols), ld));
  if (batch > 1) {
    const int32_t count = static_cast<int32_t>(batch);
    KILN_CUDA_CHECK(cublasLtMatrixLayoutSetAttribute(*l, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &count, sizeof(count)));
    KILN_CUDA_CHECK(
        cublasLtMatrixLayoutSetAttribute(*l, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, &stride, sizeof(stride)));
  }
  return Status::Ok();
}

// Up to `count` algorithms cuBLASLt's heuristic offers for D = op(A)·op(B) (C = D's layout).
inline Expected<std::vector<cublasLtMatmulHeuristicResult_t>> lt_heuristics(const LtDescriptors& d, size_t max_workspace,
                                                                           int count) {
  KILN_ASSIGN_OR_RETURN(cublasLtHandle_t h, lt_query_handle());
  cublasLtMatmulPreference_t pref = nullptr;
  KILN_CUDA_CHECK(cublasLtMatmulPreferenceCreate(&pref));
  cublasStatus_t st = cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                                           &max_workspace, sizeof(max_workspace));
  std::vector<cublasLtMatmulHeuristicResult_t> results(static_cast<size_t>(count));
  int found = 0;
  if (st == CUBLAS_STATUS_SUCCESS)
    st = cublasLtMatmulAlgoGetHeuristic(h, d.op, d.a, d.b, d.c, d.c, pref, count, results.data(), &found);
  cublasLtMatmulPreferenceDestroy(pref);
  KILN_RETURN_IF_ERROR(check(st, "cublasLtMatmulAlgoGetHeuristic"));
  if (found == 0) return unsupported("cuBLASLt has no algorithm for this product");
  results.resize(static_cast<size_t>(found));
  return results;
}

// An algorithm as a tactic string (prefix + the algorithm's bytes in hex), and back.
inline std::string lt_algo_tactic(const std::string& prefix, const cublasLtMatmulAlgo_t& algo) {
  static const char* digits = "0123456789abcdef";
  std::string out = prefix;
  const auto* p = reinterpret_cast<const unsigned char*>(&algo);
  for (size_t i = 0; i < sizeof(algo); ++i) {
    out += digits[p[i] >> 4];
    out += digits[p[i] & 15];
  }
  return out;
}
inline bool lt_tactic_algo(const std::string& tactic, const std::string& prefix, cublasLtMatmulAlgo_t& algo) {
  if (tactic.size() != prefix.size() + 2 * sizeof(algo) || tactic.compare(0, prefix.size(), prefix) != 0) return false;
  auto* p = reinterpret_cast<unsigned char*>(&algo);
  auto nibble = [](char c) { c = static_cast<char>(std::tolower(static_cast<unsigned char>(c))); return c >= 'a' ? c - 'a' + 10 : c - '0'; };
  for (size_t i = 0; i < sizeof(algo); ++i) {
    const char hi = tactic[prefix.size() + 2 * i], lo = tactic[prefix.size() + 2 * i + 1];
    if (!std::isxdigit(static_cast<unsigned char>(hi)) || !std::isxdigit(static_cast<unsigned char>(lo))) return false;
    p[i] = static_cast<unsigned char>(nibble(hi) * 16 + nibble(lo));
  }
  return true;
}

}  // namespace kiln::cuda
