// kiln.QMatMul (ops/qdq_layers.hpp) on CUDA: int32 sums of X (rows, K) int8 times Wᵀ (W (N, K) int8)
// through cuBLASLt's integer GEMM (CUBLAS_COMPUTE_32I; column-major D (N × rows) = op(W)·X with
// W transposed: the TN layout the IMMA kernels want), then the epilogue kernel (scales, bias,
// residual, Relu, requantization). Tactics, timed by the builder: each cuBLASLt algorithm its
// heuristic offers ("lt_int8:<algo bytes>"), and "direct" (a dp4a kernel of kiln's own).
#include <mutex>

#include "backends/cuda/layers/qlayer_util.hpp"
#include "ops/qdq_layers.hpp"

namespace kiln::cuda {
namespace {

constexpr size_t kMaxWorkspace = 32u << 20;
constexpr int kCandidates = 8;

struct QGemm {
  int64_t rows = 0, n = 0, k = 0;
};

std::optional<QGemm> qgemm_shape(const Node& n) {
  auto x = static_dims(n.inputs[0]);
  auto w = static_dims(n.has_input(2) ? n.inputs[2] : nullptr);
  if (!x || !w || x->empty() || w->size() != 2 || x->back() != (*w)[1]) return std::nullopt;
  QGemm g{dims_numel(*x) / std::max<int64_t>(1, x->back()), (*w)[0], (*w)[1]};
  if (!qmatmul_int8_runnable(g.k, g.n) || g.rows > INT32_MAX || g.n > INT32_MAX || g.k > INT32_MAX)
    return std::nullopt;
  return g;
}

struct LtDescs {
  cublasLtMatmulDesc_t op = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, d = nullptr;
  LtDescs() = default;
  LtDescs(const LtDescs&) = delete;
  LtDescs& operator=(const LtDescs&) = delete;
  ~LtDescs() {
    if (op) cublasLtMatmulDescDestroy(op);
    if (a) cublasLtMatrixLayoutDestroy(a);
    if (b) cublasLtMatrixLayoutDestroy(b);
    if (d) cublasLtMatrixLayoutDestroy(d);
  }
  Status init(const QGemm& g) {
    KILN_CUDA_CHECK(cublasLtMatmulDescCreate(&op, CUBLAS_COMPUTE_32I, CUDA_R_32I));
    const cublasOperation_t t = CUBLAS_OP_T, nt = CUBLAS_OP_N;
    KILN_CUDA_CHECK(cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_TRANSA, &t, sizeof(t)));
    KILN_CUDA_CHECK(cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_TRANSB, &nt, sizeof(nt)));
    auto u = [](int64_t v) { return static_cast<uint64_t>(v); };
    KILN_CUDA_CHECK(cublasLtMatrixLayoutCreate(&a, CUDA_R_8I, u(g.k), u(g.n), g.k));     // W: K × N, ld K
    KILN_CUDA_CHECK(cublasLtMatrixLayoutCreate(&b, CUDA_R_8I, u(g.k), u(g.rows), g.k));  // X: K × rows
    KILN_CUDA_CHECK(cublasLtMatrixLayoutCreate(&d, CUDA_R_32I, u(g.n), u(g.rows), g.n));  // D: N × rows
    return Status::Ok();
  }
};

Expected<cublasLtHandle_t> query_handle() {
  static std::once_flag once;
  static cublasLtHandle_t handle = nullptr;
  static cublasStatus_t status = CUBLAS_STATUS_SUCCESS;
  std::call_once(once, [] { status = cublasLtCreate(&handle); });
  KILN_RETURN_IF_ERROR(check(status, "cublasLtCreate"));
  return handle;
}

std::vector<cublasLtMatmulHeuristicResult_t> heuristics(const LtDescs& d) {
  std::vector<cublasLtMatmulHeuristicResult_t> results;
  auto h = query_handle();
  cublasLtMatmulPreference_t pref = nullptr;
  if (!h.ok() || cublasLtMatmulPreferenceCreate(&pref) != CUBLAS_STATUS_SUCCESS) return results;
  size_t ws = kMaxWorkspace;
  results.resize(kCandidates);
  int found = 0;
  if (cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof(ws)) !=
          CUBLAS_STATUS_SUCCESS ||
      cublasLtMatmulAlgoGetHeuristic(*h, d.op, d.a, d.b, d.d, d.d, pref, kCandidates, results.data(), &found) !=
          CUBLAS_STATUS_SUCCESS)
    found = 0;
  cublasLtMatmulPreferenceDestroy(pref);
  results.resize(static_cast<size_t>(found));
  return results;
}

std::string algo_name(const cublasLtMatmulAlgo_t& algo) {
  std::string hex = "lt_int8:";
  const auto* p = reinterpret_cast<const unsigned char*>(&algo);
  for (size_t i = 0; i < sizeof(algo); ++i) hex += fmt::format("{:02x}", p[i]);
  return hex;
}

bool parse_algo(const std::string& tactic, cublasLtMatmulAlgo_t& algo) {
  const std::string prefix = "lt_int8:";
  if (tactic.size() != prefix.size() + 2 * sizeof(algo) || tactic.rfind(prefix, 0) != 0) return false;
  auto* p = reinterpret_cast<unsigned char*>(&algo);
  for (size_t i = 0; i < sizeof(algo); ++i)
    p[i] = static_cast<unsigned char>(std::stoul(tactic.substr(prefix.size() + 2 * i, 2), nullptr, 16));
  return true;
}

class QMatMulLayer : public CudaLayer {
 public:
  static Expected<std::unique_ptr<CudaLayer>> create(const Node& n, const LayerChoice& choice) {
    auto g = qgemm_shape(n);
    if (!g) return unsupported("{}: this quantized product does not run on CUDA", n.describe());
    auto layer = std::unique_ptr<QMatMulLayer>(new QMatMulLayer());
    QMatMulLayer& l = *layer;
    l.g_ = *g;
    KILN_RETURN_IF_ERROR(l.epi_.init(n, g->n));
    const Tensor& w = *n.inputs[2]->constant;
    KILN_ASSIGN_OR_RETURN(l.w_, DeviceBuffer::allocate(w.nbytes()));
    KILN_CUDA_CHECK(cudaMemcpy(l.w_.get(), w.raw_data(), w.nbytes(), cudaMemcpyHostToDevice));
    if (!choice.tactic.empty() && choice.tactic != "direct") {
      if (!parse_algo(choice.tactic, l.algo_))
        return invalid_model("{}: unknown quantized product tactic '{}'", n.describe(), choice.tactic);
      KILN_RETURN_IF_ERROR(l.d_.init(*g));
      KILN_ASSIGN_OR_RETURN(cublasLtHandle_t h, query_handle());
      cublasLtMatmulHeuristicResult_t r{};
      KILN_CUDA_CHECK(cublasLtMatmulAlgoCheck(h, l.d_.op, l.d_.a, l.d_.b, l.d_.d, l.d_.d, &l.algo_, &r));
      if (r.workspaceSize > kMaxWorkspace) return unsupported("{}: tactic needs too much workspace", n.describe());
      l.lt_ = true;
      l.lt_ws_ = r.workspaceSize;
    }
    l.acc_offset_ = align256(l.lt_ws_);
    l.total_ws_ = l.acc_offset_ + static_cast<size_t>(g->rows * g->n) * sizeof(int32_t);
    return std::unique_ptr<CudaLayer>(std::move(layer));
  }

  size_t workspace_bytes() const override { return total_ws_; }

  Status enqueue(const LaunchArgs& a) const override {
    if (a.outputs[0].numel() == 0) return Status::Ok();
    if (a.workspace_bytes < total_ws_) return internal_error("quantized product workspace too small");
    auto* acc = reinterpret_cast<int32_t*>(static_cast<char*>(a.workspace) + acc_offset_);
    const int8_t* x = a.inputs[0].as<int8_t>();
    if (lt_) {
      const int32_t one = 1, zero = 0;
      KILN_CUDA_CHECK(cublasLtMatmul(a.handles.cublaslt, d_.op, &one, w_.get(), d_.a, x, d_.b, &zero, acc, d_.d, acc,
                                     d_.d, &algo_, a.workspace, lt_ws_, a.stream));
    } else {
      KILN_CUDA_CHECK(kernels::qmatmul_direct(x, w_.as<int8_t>(), acc, g_.rows, g_.n, g_.k, a.stream));
    }
    kernels::QEpilogueParams p = epi_.params(a);
    p.acc = acc;
    p.acc_stride = g_.n;
    p.images = 1;
    p.spatial = g_.rows;
    p.channels = g_.n;
    p.nchw = false;
    KILN_CUDA_CHECK(kernels::q_epilogue(p, a.stream));
    return Status::Ok();
  }

 private:
  QGemm g_;
  QEpilogue epi_;
  DeviceBuffer w_;
  LtDescs d_;
  bool lt_ = false;
  cublasLtMatmulAlgo_t algo_{};
  size_t lt_ws_ = 0, acc_offset_ = 0, total_ws_ = 0;
};

bool qmatmul_supports(const Node& n) {
  if (!n.has_input(2) || !n.inputs[2]->is_constant()) return false;
  return q_layer_supports(n, n.inputs[2]->constant->dim(0)) && qgemm_shape(n).has_value();
}

std::vector<std::string> qmatmul_tactics(const Node& n, const BuildOptions&) {
  std::vector<std::string> out{"direct"};
  auto g = qgemm_shape(n);
  LtDescs d;
  if (!g || !d.init(*g).ok()) return out;
  for (const auto& r : heuristics(d)) out.push_back(algo_name(r.algo));
  return out;
}

}  // namespace
}  // namespace kiln::cuda

KILN_REGISTER_CUDA_LAYER("kiln.QMatMul", kiln::cuda::CudaLayerFactory{.supports = kiln::cuda::qmatmul_supports,
                                                                      .tactics = kiln::cuda::qmatmul_tactics,
                                                                      .create = kiln::cuda::QMatMulLayer::create});
