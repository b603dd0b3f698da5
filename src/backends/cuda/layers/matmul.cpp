// MatMul and Gemm through cuBLASLt. Row-major products are computed as the column-major
// transposed product (Cᵀ = Bᵀ·Aᵀ), which needs no data movement. Each algorithm cuBLASLt's
// heuristic offers is a tactic; the chosen one is stored in the plan as the algorithm's bytes.

#include "backends/cuda/layers/lt_util.hpp"
#include "backends/cuda/cuda_layer.hpp"
#include "backends/cuda/device_buffer.hpp"

namespace kiln::cuda {
namespace {

constexpr size_t kMaxWorkspace = 32u << 20;
constexpr int kCandidates = 8;

// One GEMM (possibly strided-batched) in column-major terms: D[m,n] = alpha·op(A)[m,k]·op(B)[k,n] + beta·C + bias.
struct GemmShape {
  bool trans_a = false, trans_b = false;  // column-major transposes
  int64_t m = 0, n = 0, k = 0;
  int64_t lda = 0, ldb = 0, ldd = 0;
  int64_t batch = 1, stride_a = 0, stride_b = 0, stride_d = 0;
  float alpha = 1.f, beta = 0.f;
  int c_input = -1;      // node input added as a full C matrix (beta), or -1
  int bias_input = -1;   // node input added as a bias row vector (epilogue), or -1
  bool relu = false;     // ReLU after the bias (epilogue)
  bool gelu = false;     // GELU (tanh approximation) after the bias (epilogue)
  int a_input = 0, b_input = 1;  // which node inputs are the column-major A and B
};

bool float_type(DType t) { return t == DType::kFloat32 || t == DType::kFloat16 || t == DType::kBFloat16; }

// The static dims (empty when not static: supports() refuses such nodes before any shape math).
Dims dims_of(const Value* v) { return v->type.shape.to_dims().value_or(Dims{}); }

// Leading 1s of batch dims do not change the memory layout.
Dims strip_ones(Dims d) {
  while (!d.empty() && d.front() == 1) d.erase(d.begin());
  return d;
}

// MatMul: A[...,M,K] · B[...,K,N]. Supported: B 2-D (A's batch dims fold into M), or equal batch
// dims on both, or A 2-D with batched B (A broadcast with stride 0).
std::optional<GemmShape> matmul_shape(const Node& n) {
  Dims a = dims_of(n.inputs[0]), b = dims_of(n.inputs[1]);
  if (a.empty() || b.empty()) return std::nullopt;
  if (a.size() == 1) a.insert(a.begin(), 1);
  if (b.size() == 1) b.push_back(1);
  int64_t M = a[a.size() - 2], K = a.back(), N = b.back();
  if (b[b.size() - 2] != K) return std::nullopt;
  Dims abatch(a.begin(), a.end() - 2), bbatch(b.begin(), b.end() - 2);
  int64_t an = dims_numel(abatch), bn = dims_numel(bbatch);
  GemmShape s;
  // Column-major: D = Bᵀ-as-stored (N×K, ld N) · Aᵀ-as-stored (K×M, ld K): D is N×M, ld N.
  s.a_input = 1;
  s.b_input = 0;
  s.n = M;
  s.m = N;
  s.k = K;
  s.lda = N;
  s.ldb = K;
  s.ldd = N;
  if (bn == 1) {
    s.n = M * an;  // fold A's batch into M
  } else if (an == 1) {
    s.batch = bn;
    s.stride_a = K * N;
    s.stride_b = 0;
    s.stride_d = M * N;
  } else if (strip_ones(abatch) == strip_ones(bbatch)) {
    s.batch = an;
    s.stride_a = K * N;
    s.stride_b = M * K;
    s.stride_d = M * N;
  } else {
    return std::nullopt;
  }
  return s;
}

// Gemm: Y[M,N] = alpha·opA(A)·opB(B) + beta·C.
std::optional<GemmShape> gemm_shape(const Node& n) {
  Dims a = dims_of(n.inputs[0]), b = dims_of(n.inputs[1]);
  if (a.size() != 2 || b.size() != 2) return std::nullopt;
  bool ta = n.attrs.i("transA", 0) != 0, tb = n.attrs.i("transB", 0) != 0;
  int64_t M = ta ? a[1] : a[0], K = ta ? a[0] : a[1], N = tb ? b[0] : b[1];
  GemmShape s;
  s.a_input = 1;
  s.b_input = 0;
  s.m = N;
  s.n = M;
  s.k = K;
  // First column-major operand: opB(B)ᵀ [N,K]. B row-major [K,N] is col-major [N,K] (ld N);
  // with transB, B row-major [N,K] is col-major [K,N] (ld K), transposed.
  s.trans_a = tb;
  s.lda = tb ? K : N;
  // Second: opA(A)ᵀ [K,M]. A row-major [M,K] is col-major [K,M] (ld K); with transA it is
  // col-major [M,K] (ld M), transposed.
  s.trans_b = ta;
  s.ldb = ta ? M : K;
  s.ldd = N;
  s.alpha = n.attrs.f("alpha", 1.f);
  float beta = n.attrs.f("beta", 1.f);
  if (n.has_input(2) && beta != 0.f) {
    Dims c = dims_of(n.inputs[2]);
    // A constant row vector becomes the epilogue's bias; the layer keeps its own copy.
    if (dims_numel(c) == N && (c.size() == 1 || (c.size() == 2 && c[0] == 1)) && beta == 1.f &&
        n.inputs[2]->constant) {
      s.bias_input = 2;
    } else if (c == Dims{M, N}) {
      s.c_input = 2;
      s.beta = beta;
    } else {
      return std::nullopt;
    }
  }
  return s;
}

// kiln.FusedMatMul: MatMul with a 2-D B, plus a constant bias row [N], an optional residual of the
// output's shape (C, beta = 1) and an optional ReLU.
std::optional<GemmShape> fused_matmul_shape(const Node& n) {
  if (!n.has_input(2) || !n.inputs[2]->constant || n.inputs[1]->type.shape.rank() != 2) return std::nullopt;
  const std::string act = n.attrs.s("activation", "");
  if (!act.empty() && act != "Relu" && act != "GeluTanh") return std::nullopt;
  auto s = matmul_shape(n);
  if (!s || dims_of(n.inputs[2]) != Dims{s->m}) return std::nullopt;  // column-major m is N
  s->bias_input = 2;
  s->relu = act == "Relu";
  s->gelu = act == "GeluTanh";
  if (n.has_input(3)) {
    if (dims_of(n.inputs[3]) != dims_of(n.outputs[0])) return std::nullopt;
    s->c_input = 3;
    s->beta = 1.f;
  }
  return s;
}

std::optional<GemmShape> shape_for(const Node& n) {
  if (n.op_type == "FusedMatMul") return fused_matmul_shape(n);
  return n.op_type == "Gemm" ? gemm_shape(n) : matmul_shape(n);
}

using Descriptors = LtDescriptors;  // shared by tactic enumeration and the layer

Status make_descriptors(const GemmShape& s, DType dtype, bool tf32, Descriptors& d) {
  KILN_ASSIGN_OR_RETURN(cudaDataType_t t, lt_float_type(dtype));
  cublasComputeType_t compute =
      dtype == DType::kFloat32 && tf32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;
  KILN_CUDA_CHECK(cublasLtMatmulDescCreate(&d.op, compute, CUDA_R_32F));
  cublasOperation_t ta = s.trans_a ? CUBLAS_OP_T : CUBLAS_OP_N, tb = s.trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;
  KILN_CUDA_CHECK(cublasLtMatmulDescSetAttribute(d.op, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof(ta)));
  KILN_CUDA_CHECK(cublasLtMatmulDescSetAttribute(d.op, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof(tb)));
  if (s.bias_input >= 0) {
    cublasLtEpilogue_t epi = s.relu   ? CUBLASLT_EPILOGUE_RELU_BIAS
                             : s.gelu ? CUBLASLT_EPILOGUE_GELU_BIAS
                                      : CUBLASLT_EPILOGUE_BIAS;
    KILN_CUDA_CHECK(cublasLtMatmulDescSetAttribute(d.op, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi, sizeof(epi)));
  }
  int64_t a_rows = s.trans_a ? s.k : s.m, a_cols = s.trans_a ? s.m : s.k;
  int64_t b_rows = s.trans_b ? s.n : s.k, b_cols = s.trans_b ? s.k : s.n;
  KILN_RETURN_IF_ERROR(lt_layout(&d.a, t, a_rows, a_cols, s.lda, s.batch, s.stride_a));
  KILN_RETURN_IF_ERROR(lt_layout(&d.b, t, b_rows, b_cols, s.ldb, s.batch, s.stride_b));
  KILN_RETURN_IF_ERROR(lt_layout(&d.c, t, s.m, s.n, s.ldd, s.batch, s.stride_d));
  return Status::Ok();
}


Expected<std::vector<cublasLtMatmulHeuristicResult_t>> heuristics(const Descriptors& d) {
  return lt_heuristics(d, kMaxWorkspace, kCandidates);
}

std::string algo_to_tactic(const cublasLtMatmulAlgo_t& algo) { return lt_algo_tactic("lt:", algo); }

bool tactic_to_algo(const std::string& tactic, cublasLtMatmulAlgo_t& algo) { return lt_tactic_algo(tactic, "lt:", algo); }

class MatMulLayer : public CudaLayer {
 public:
  MatMulLayer(GemmShape s) : s_(s) {}
  Status init(DType dtype, bool tf32, const std::string& tactic) {
    KILN_RETURN_IF_ERROR(make_descriptors(s_, dtype, tf32, d_));
    KILN_ASSIGN_OR_RETURN(cublasLtHandle_t h, lt_query_handle());
    cublasLtMatmulAlgo_t algo;
    cublasLtMatmulHeuristicResult_t check_result{};
    if (tactic_to_algo(tactic, algo) &&
        cublasLtMatmulAlgoCheck(h, d_.op, d_.a, d_.b, d_.c, d_.c, &algo, &check_result) == CUBLAS_STATUS_SUCCESS &&
        check_result.workspaceSize <= kMaxWorkspace) {
      algo_ = algo;
      workspace_ = check_result.workspaceSize;
      return Status::Ok();
    }
    // No (or a stale) stored choice: the heuristic's first answer.
    KILN_ASSIGN_OR_RETURN(auto results, heuristics(d_));
    algo_ = results[0].algo;
    workspace_ = results[0].workspaceSize;
    return Status::Ok();
  }
  size_t workspace_bytes() const override { return workspace_; }

  Status enqueue(const LaunchArgs& a) const override { return run(a, d_.op); }

  // Uploads the constant bias and points the epilogue at it.
  Status set_bias(const Tensor& bias) {
    KILN_ASSIGN_OR_RETURN(bias_, DeviceBuffer::allocate(bias.nbytes()));
    KILN_CUDA_CHECK(cudaMemcpy(bias_.get(), bias.raw_data(), bias.nbytes(), cudaMemcpyHostToDevice));
    const void* p = bias_.get();
    KILN_CUDA_CHECK(cublasLtMatmulDescSetAttribute(d_.op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &p, sizeof(p)));
    return Status::Ok();
  }

 private:
  Status run(const LaunchArgs& a, cublasLtMatmulDesc_t op) const {
    const void* A = a.inputs[static_cast<size_t>(s_.a_input)].data;
    const void* B = a.inputs[static_cast<size_t>(s_.b_input)].data;
    void* D = a.outputs[0].data;
    const void* C = s_.c_input >= 0 ? a.inputs[static_cast<size_t>(s_.c_input)].data : D;
    float beta = s_.c_input >= 0 ? s_.beta : 0.f;
    if (a.workspace_bytes < workspace_) return internal_error("matmul workspace too small");
    KILN_CUDA_CHECK(cublasLtMatmul(a.handles.cublaslt, op, &s_.alpha, A, d_.a, B, d_.b, &beta, C, d_.c, D, d_.c,
                                   &algo_, a.workspace, workspace_, a.stream));
    return Status::Ok();
  }

  GemmShape s_;
  Descriptors d_;
  DeviceBuffer bias_;
  cublasLtMatmulAlgo_t algo_{};
  size_t workspace_ = 0;
};

bool supports(const Node& n) {
  if (!n.has_input(0) || !n.has_input(1) || !n.has_output(0)) return false;
  DType t = n.outputs[0]->type.dtype;
  if (!float_type(t) || n.inputs[0]->type.dtype != t || n.inputs[1]->type.dtype != t) return false;
  if (n.has_input(2) && n.inputs[2]->type.dtype != t) return false;
  if (n.has_input(3) && n.inputs[3]->type.dtype != t) return false;
  for (const Value* v : n.inputs)
    if (v && !v->type.shape.is_static()) return false;
  if (!n.outputs[0]->type.shape.is_static()) return false;
  return shape_for(n).has_value();
}

std::vector<std::string> tactics(const Node& n, const BuildOptions& o) {
  auto s = shape_for(n);
  Descriptors d;
  DType t = n.outputs[0]->type.dtype;
  if (!s || !make_descriptors(*s, t, o.tf32, d).ok()) return {};
  auto results = heuristics(d);
  if (!results.ok()) return {};
  std::vector<std::string> out;
  for (const auto& r : *results) out.push_back(algo_to_tactic(r.algo));
  return out;
}

Expected<std::unique_ptr<CudaLayer>> create(const Node& n, const LayerChoice& choice) {
  auto s = shape_for(n);
  if (!s) return unsupported("{}: this MatMul/Gemm shape is not supported on CUDA", n.describe());
  auto layer = std::make_unique<MatMulLayer>(*s);
  KILN_RETURN_IF_ERROR(layer->init(n.outputs[0]->type.dtype, choice.precision != "fp32", choice.tactic));
  if (s->bias_input >= 0) KILN_RETURN_IF_ERROR(layer->set_bias(*n.inputs[static_cast<size_t>(s->bias_input)]->constant));
  return std::unique_ptr<CudaLayer>(std::move(layer));
}

CudaLayerFactory factory() { return CudaLayerFactory{.supports = supports, .tactics = tactics, .create = create}; }

}  // namespace
}  // namespace kiln::cuda

KILN_REGISTER_CUDA_LAYER("MatMul", kiln::cuda::factory());
KILN_REGISTER_CUDA_LAYER("Gemm", kiln::cuda::factory());
KILN_REGISTER_CUDA_LAYER("kiln.FusedMatMul", kiln::cuda::factory());
