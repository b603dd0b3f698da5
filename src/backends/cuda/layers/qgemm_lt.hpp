// The int8 GEMM of the INT8 layers through cuBLASLt: acc (rows, n) int32 = x (rows, k) int8 times
// wᵀ, w (n, k) int8, both row-major. In cuBLASLt's column-major terms D (n × rows) = op(W)·X with
// W transposed (the TN layout of the IMMA kernels), CUBLAS_COMPUTE_32I. Used by kiln.QMatMul and
// by kiln.QConv (on im2col rows). k and n must be multiples of 4.
#pragma once

#include <string>
#include <vector>

#include "backends/cuda/cuda_layer.hpp"

namespace kiln::cuda {

struct Int8GemmShape {
  int64_t rows = 0, n = 0, k = 0;
};

class Int8Gemm {
 public:
  Int8Gemm() = default;
  Int8Gemm(const Int8Gemm&) = delete;
  Int8Gemm& operator=(const Int8Gemm&) = delete;
  ~Int8Gemm();
  // The algorithms cuBLASLt's heuristic offers, as tactics "lt_int8:<algo bytes>".
  static std::vector<std::string> tactics(const Int8GemmShape& s);
  static bool is_tactic(const std::string& t) { return t.rfind("lt_int8:", 0) == 0; }
  Status init(const Int8GemmShape& s, const std::string& tactic);
  size_t workspace_bytes() const { return workspace_; }
  Status run(cublasLtHandle_t h, const int8_t* x, const int8_t* w, int32_t* acc, void* workspace,
             cudaStream_t stream) const;

 private:
  Status make_descs(const Int8GemmShape& s);
  cublasLtMatmulDesc_t op_ = nullptr;
  cublasLtMatrixLayout_t a_ = nullptr, b_ = nullptr, d_ = nullptr;
  cublasLtMatmulAlgo_t algo_{};
  size_t workspace_ = 0;
};

}  // namespace kiln::cuda
