// cuBLASLt int8 GEMM (qgemm_lt.hpp).
#include "backends/cuda/layers/lt_util.hpp"
#include "backends/cuda/layers/qgemm_lt.hpp"

#include <algorithm>
#include <mutex>

namespace kiln::cuda {
namespace {

constexpr size_t kMaxWorkspace = 32u << 20;
constexpr int kCandidates = 8;
constexpr const char* kPrefix = "lt_int8:";


std::string algo_name(const cublasLtMatmulAlgo_t& algo) {
  std::string hex = kPrefix;
  const auto* p = reinterpret_cast<const unsigned char*>(&algo);
  for (size_t i = 0; i < sizeof(algo); ++i) hex += fmt::format("{:02x}", p[i]);
  return hex;
}

bool parse_algo(const std::string& tactic, cublasLtMatmulAlgo_t& algo) {
  const std::string prefix = kPrefix;
  if (tactic.size() != prefix.size() + 2 * sizeof(algo) || tactic.rfind(prefix, 0) != 0) return false;
  auto* p = reinterpret_cast<unsigned char*>(&algo);
  for (size_t i = 0; i < sizeof(algo); ++i) {
    const std::string byte = tactic.substr(prefix.size() + 2 * i, 2);
    if (byte.find_first_not_of("0123456789abcdefABCDEF") != std::string::npos) return false;
    p[i] = static_cast<unsigned char>(std::stoul(byte, nullptr, 16));
  }
  return true;
}

}  // namespace

Int8Gemm::~Int8Gemm() {
  if (op_) cublasLtMatmulDescDestroy(op_);
  if (a_) cublasLtMatrixLayoutDestroy(a_);
  if (b_) cublasLtMatrixLayoutDestroy(b_);
  if (d_) cublasLtMatrixLayoutDestroy(d_);
}

Status Int8Gemm::make_descs(const Int8GemmShape& s) {
  if (s.k % 4 != 0 || s.n % 4 != 0 || s.rows > INT32_MAX || s.n > INT32_MAX || s.k > INT32_MAX)
    return unsupported("int8 GEMM {}x{}x{}: k and n must be multiples of 4", s.rows, s.n, s.k);
  KILN_CUDA_CHECK(cublasLtMatmulDescCreate(&op_, CUBLAS_COMPUTE_32I, CUDA_R_32I));
  const cublasOperation_t t = CUBLAS_OP_T, nt = CUBLAS_OP_N;
  KILN_CUDA_CHECK(cublasLtMatmulDescSetAttribute(op_, CUBLASLT_MATMUL_DESC_TRANSA, &t, sizeof(t)));
  KILN_CUDA_CHECK(cublasLtMatmulDescSetAttribute(op_, CUBLASLT_MATMUL_DESC_TRANSB, &nt, sizeof(nt)));
  auto u = [](int64_t v) { return static_cast<uint64_t>(v); };
  KILN_CUDA_CHECK(cublasLtMatrixLayoutCreate(&a_, CUDA_R_8I, u(s.k), u(s.n), s.k));     // W: k × n, ld k
  KILN_CUDA_CHECK(cublasLtMatrixLayoutCreate(&b_, CUDA_R_8I, u(s.k), u(s.rows), s.k));  // X: k × rows
  KILN_CUDA_CHECK(cublasLtMatrixLayoutCreate(&d_, CUDA_R_32I, u(s.n), u(s.rows), s.n));  // D: n × rows
  return Status::Ok();
}

std::vector<std::string> Int8Gemm::tactics(const Int8GemmShape& s) {
  std::vector<std::string> out;
  Int8Gemm g;
  auto h = lt_query_handle();
  if (!h.ok() || !g.make_descs(s).ok()) return out;
  cublasLtMatmulPreference_t pref = nullptr;
  if (cublasLtMatmulPreferenceCreate(&pref) != CUBLAS_STATUS_SUCCESS) return out;
  size_t ws = kMaxWorkspace;
  std::vector<cublasLtMatmulHeuristicResult_t> results(kCandidates);
  int found = 0;
  if (cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof(ws)) !=
          CUBLAS_STATUS_SUCCESS ||
      cublasLtMatmulAlgoGetHeuristic(*h, g.op_, g.a_, g.b_, g.d_, g.d_, pref, kCandidates, results.data(), &found) !=
          CUBLAS_STATUS_SUCCESS)
    found = 0;
  cublasLtMatmulPreferenceDestroy(pref);
  for (int i = 0; i < found; ++i) {
    std::string name = algo_name(results[static_cast<size_t>(i)].algo);
    if (std::find(out.begin(), out.end(), name) == out.end()) out.push_back(name);
  }
  return out;
}

Status Int8Gemm::init(const Int8GemmShape& s, const std::string& tactic) {
  if (!parse_algo(tactic, algo_)) return invalid_model("unknown int8 GEMM tactic '{}'", tactic);
  KILN_RETURN_IF_ERROR(make_descs(s));
  KILN_ASSIGN_OR_RETURN(cublasLtHandle_t h, lt_query_handle());
  cublasLtMatmulHeuristicResult_t r{};
  KILN_CUDA_CHECK(cublasLtMatmulAlgoCheck(h, op_, a_, b_, d_, d_, &algo_, &r));
  if (r.workspaceSize > kMaxWorkspace) return unsupported("int8 GEMM tactic needs {} bytes of workspace", r.workspaceSize);
  workspace_ = r.workspaceSize;
  return Status::Ok();
}

Status Int8Gemm::run(cublasLtHandle_t h, const int8_t* x, const int8_t* w, int32_t* acc, void* workspace,
                     cudaStream_t stream) const {
  const int32_t one = 1, zero = 0;
  KILN_CUDA_CHECK(cublasLtMatmul(h, op_, &one, w, a_, x, b_, &zero, acc, d_, acc, d_, &algo_, workspace, workspace_,
                                 stream));
  return Status::Ok();
}

}  // namespace kiln::cuda
