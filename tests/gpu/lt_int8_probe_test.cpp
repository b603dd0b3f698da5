// What cuBLASLt's int8 GEMMs give on this GPU, next to its FP16 GEMM of the same shape: the question
// behind INT8 convolutions as GEMMs (a 1x1 NHWC convolution is one: rows = pixels, n = output
// channels, k = input channels). For each shape, every algorithm cuBLASLt's heuristic offers is
// timed; the best time of each kind is printed (int8 -> int32, int8 -> int8 with a per-channel
// float scale, fp16 -> fp16). Printed for the record, not asserted, except that each timed GEMM
// launches without error.
#include <cublasLt.h>
#include <cuda_fp16.h>

#include <algorithm>
#include <iostream>
#include <vector>

#include "backends/cuda/layers/lt_util.hpp"
#include "gpu_test_util.hpp"

namespace kiln::test {
namespace {

using cuda::LtDescriptors;

struct Kind {
  const char* name;
  cudaDataType_t ab, d, scale;
  cublasComputeType_t compute;
  bool alpha_vector;  // per-row (output channel) alpha on the device
};

// D (n x rows, column-major) = W^T (n x k) . X (k x rows): the TN layout int8 kernels need.
double best_ms(const Kind& kind, int64_t rows, int64_t n, int64_t k, void* w, void* x, void* d, void* alpha,
               void* ws, size_t ws_bytes, int* algos) {
  LtDescriptors desc;
  if (cublasLtMatmulDescCreate(&desc.op, kind.compute, kind.scale) != CUBLAS_STATUS_SUCCESS) return -1;
  const cublasOperation_t t = CUBLAS_OP_T, nt = CUBLAS_OP_N;
  cublasLtMatmulDescSetAttribute(desc.op, CUBLASLT_MATMUL_DESC_TRANSA, &t, sizeof(t));
  cublasLtMatmulDescSetAttribute(desc.op, CUBLASLT_MATMUL_DESC_TRANSB, &nt, sizeof(nt));
  if (kind.alpha_vector) {
    const cublasLtPointerMode_t mode = CUBLASLT_POINTER_MODE_ALPHA_DEVICE_VECTOR_BETA_ZERO;
    if (cublasLtMatmulDescSetAttribute(desc.op, CUBLASLT_MATMUL_DESC_POINTER_MODE, &mode, sizeof(mode)) !=
        CUBLAS_STATUS_SUCCESS)
      return -1;
  }
  if (!cuda::lt_layout(&desc.a, kind.ab, k, n, k).ok() || !cuda::lt_layout(&desc.b, kind.ab, k, rows, k).ok() ||
      !cuda::lt_layout(&desc.c, kind.d, n, rows, n).ok())
    return -1;
  auto heur = cuda::lt_heuristics(desc, ws_bytes, 8);
  if (!heur.ok() || heur->empty()) return -1;
  *algos = static_cast<int>(heur->size());
  auto h = cuda::lt_query_handle();
  if (!h.ok()) return -1;
  const float one_f = 1.f, zero_f = 0.f;
  const int32_t one_i = 1, zero_i = 0;
  const bool int_scale = kind.scale == CUDA_R_32I;
  const void* a = kind.alpha_vector ? alpha : int_scale ? static_cast<const void*>(&one_i) : &one_f;
  const void* b = int_scale ? static_cast<const void*>(&zero_i) : &zero_f;
  cudaEvent_t e0, e1;
  cudaEventCreate(&e0);
  cudaEventCreate(&e1);
  double best = -1;
  for (const auto& r : *heur) {
    auto run = [&] { return cublasLtMatmul(*h, desc.op, a, w, desc.a, x, desc.b, b, d, desc.c, d, desc.c, &r.algo, ws,
                                           ws_bytes, nullptr); };
    if (run() != CUBLAS_STATUS_SUCCESS) continue;
    for (int i = 0; i < 3; ++i) run();
    cudaEventRecord(e0);
    constexpr int kReps = 20;
    for (int i = 0; i < kReps; ++i) run();
    cudaEventRecord(e1);
    cudaEventSynchronize(e1);
    float ms = 0;
    cudaEventElapsedTime(&ms, e0, e1);
    const double per = ms / kReps;
    if (best < 0 || per < best) best = per;
  }
  cudaEventDestroy(e0);
  cudaEventDestroy(e1);
  EXPECT_EQ(cudaGetLastError(), cudaSuccess) << kind.name;
  return best;
}

TEST(CudaLtInt8Probe, TimingInt8VsFp16Gemms) {
  KILN_REQUIRE_GPU();
  struct Shape { const char* what; int64_t rows, n, k; };
  const Shape shapes[] = {
      {"1x1 64->256 56x56 b256", 256 * 56 * 56, 256, 64},     {"1x1 256->64 56x56 b256", 256 * 56 * 56, 64, 256},
      {"1x1 512->128 28x28 b256", 256 * 28 * 28, 128, 512},   {"1x1 1024->256 14x14 b256", 256 * 14 * 14, 256, 1024},
      {"1x1 256->1024 14x14 b256", 256 * 14 * 14, 1024, 256}, {"3x3 256->256 14x14 b256 (im2col)", 256 * 14 * 14, 256, 2304},
      {"square 8192", 8192, 8192, 8192}};
  const Kind kinds[] = {{"int8->int32", CUDA_R_8I, CUDA_R_32I, CUDA_R_32I, CUBLAS_COMPUTE_32I, false},
                        {"int8->int8 (alpha per channel)", CUDA_R_8I, CUDA_R_8I, CUDA_R_32F, CUBLAS_COMPUTE_32I, true},
                        {"fp16->fp16", CUDA_R_16F, CUDA_R_16F, CUDA_R_32F, CUBLAS_COMPUTE_32F, false}};
  size_t most = 0;
  for (const Shape& s : shapes) most = std::max(most, static_cast<size_t>(std::max(s.rows, s.n) * s.k * 2));
  size_t out_most = 0;
  for (const Shape& s : shapes) out_most = std::max(out_most, static_cast<size_t>(s.rows * s.n * 4));
  void *w = nullptr, *x = nullptr, *d = nullptr, *alpha = nullptr, *ws = nullptr;
  const size_t ws_bytes = 32u << 20;
  ASSERT_EQ(cudaMalloc(&w, most), cudaSuccess);
  ASSERT_EQ(cudaMalloc(&x, most), cudaSuccess);
  ASSERT_EQ(cudaMalloc(&d, out_most), cudaSuccess);
  ASSERT_EQ(cudaMalloc(&alpha, 8192 * sizeof(float)), cudaSuccess);
  ASSERT_EQ(cudaMalloc(&ws, ws_bytes), cudaSuccess);
  cudaMemset(w, 1, most);  // timing only: the values do not matter, finite ones keep the float kinds honest
  cudaMemset(x, 1, most);
  std::vector<float> ones(8192, 1e-3f);
  cudaMemcpy(alpha, ones.data(), ones.size() * sizeof(float), cudaMemcpyHostToDevice);
  for (const Shape& s : shapes) {
    std::string line = fmt::format("GEMM {} ({}x{}x{}):", s.what, s.rows, s.n, s.k);
    const double ops = 2.0 * static_cast<double>(s.rows) * s.n * s.k;
    for (const Kind& kind : kinds) {
      int algos = 0;
      const double ms = best_ms(kind, s.rows, s.n, s.k, w, x, d, alpha, ws, ws_bytes, &algos);
      if (ms < 0) line += fmt::format(" {} not offered;", kind.name);
      else line += fmt::format(" {} {:.4f} ms = {:.0f} TOPS ({} algos);", kind.name, ms, ops / ms / 1e9, algos);
    }
    std::cout << line << "\n";
  }
  for (void* p : {w, x, d, alpha, ws}) cudaFree(p);
}

}  // namespace
}  // namespace kiln::test
