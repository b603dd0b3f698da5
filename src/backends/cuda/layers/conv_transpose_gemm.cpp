// NHWC ConvTranspose with kernel == stride as cuBLASLt GEMMs (header has the math). Two forms:
//
// "gemm:lt:<algo>" (batched, in place):
// Row-major per batch item b = n*H + h and row parity di:  D_b[Wx, kw*M] = X_b[Wx, C] · W_di[C, kw*M],
// where W (C, kh, kw, M) gives W_di as rows of kh*kw*M elements starting at di*kw*M, and D_b starts
// at output row kh*h + di of image n: element ((n*H + h)*kh + di) * (kw*Wx*M), rows of kw*M with
// stride kw*M (consecutive w land kw pixels apart). cuBLASLt is column-major, so it computes
// D_bᵀ = W_diᵀ · X_bᵀ: A = W_di (m = kw*M, k = C, ld kh*kw*M, shared by the batch), B = X_b
// (k = C, n = Wx, ld C, stride Wx*C), D (m, n, ld kw*M, stride kh*kw*Wx*M).
//
// "gemm1:lt:<algo>" (one product + shuffle): T[P, kh*kw*M] = X[P, C] · W[C, kh*kw*M] over all
// P = N*H*Wx pixels into the workspace, then one strided copy (N*H, Wx, kh, kw*M) -> (N*H, kh, Wx,
// kw*M). Better where Wx is small (deep levels): the batched form's products are then too thin.
#include "backends/cuda/layers/conv_transpose_gemm.hpp"

#include <cstring>

#include "backends/cuda/device_buffer.hpp"
#include "backends/cuda/layers/lt_util.hpp"
#include "backends/cuda/layers/nn_kernels.hpp"
#include "backends/cuda/layers/nn_util.hpp"

namespace kiln::cuda {
namespace {

constexpr size_t kMaxWorkspace = 32u << 20;
constexpr int kCandidates = 6;
const std::string kPrefix = "gemm:lt:";       // batched, in place
const std::string kFlatPrefix = "gemm1:lt:";  // one product + shuffle

struct Geometry {
  int64_t n = 0, h = 0, w = 0, c = 0;  // X (N, H, W, C)
  int64_t kh = 0, kw = 0, m = 0;       // W (C, kh, kw, M)
  DType dtype = DType::kUndefined;
};

std::optional<Geometry> geometry(const Node& n) {
  if (n.attrs.s("op", "") != "ConvTranspose" || !n.has_input(0) || !n.has_input(1) || !n.has_output(0)) return std::nullopt;
  auto x = static_dims(n.inputs[0]), w = static_dims(n.inputs[1]), y = static_dims(n.outputs[0]);
  if (!x || !w || !y || x->size() != 4 || w->size() != 4 || y->size() != 4) return std::nullopt;
  Geometry g{.n = (*x)[0], .h = (*x)[1], .w = (*x)[2], .c = (*x)[3], .kh = (*w)[1], .kw = (*w)[2], .m = (*w)[3]};
  g.dtype = n.outputs[0]->type.dtype;
  if (!is_gpu_float(g.dtype) || n.inputs[0]->type.dtype != g.dtype || n.inputs[1]->type.dtype != g.dtype) return std::nullopt;
  if (!n.inputs[1]->constant) return std::nullopt;
  if (n.has_input(2) && (n.inputs[2]->type.dtype != g.dtype || !n.inputs[2]->constant ||
                         static_dims(n.inputs[2]) != Dims{g.m}))
    return std::nullopt;
  if ((*w)[0] != g.c || n.attrs.i("group", 1) != 1) return std::nullopt;
  const std::string pad = n.attrs.s("auto_pad", "NOTSET");
  if (pad != "NOTSET" && pad != "VALID") return std::nullopt;
  if (n.attrs.ints("strides", {1, 1}) != Dims{g.kh, g.kw}) return std::nullopt;
  if (n.attrs.has("kernel_shape") && n.attrs.ints("kernel_shape") != Dims{g.kh, g.kw}) return std::nullopt;
  if (!dims_all_equal(n.attrs.ints("pads"), 0) || !dims_all_equal(n.attrs.ints("output_padding"), 0))
    return std::nullopt;
  if (n.attrs.has("dilations") && !dims_all_equal(n.attrs.ints("dilations"), 1)) return std::nullopt;
  if (*y != Dims{g.n, g.h * g.kh, g.w * g.kw, g.m}) return std::nullopt;
  if (g.n * g.h > INT32_MAX) return std::nullopt;  // cuBLASLt's batch count
  return g;
}

Status make_descriptors(const Geometry& g, bool tf32, bool bias, bool flat, LtDescriptors& d) {
  KILN_ASSIGN_OR_RETURN(cudaDataType_t t, lt_float_type(g.dtype));
  const cublasComputeType_t compute = g.dtype == DType::kFloat32 && tf32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;
  KILN_CUDA_CHECK(cublasLtMatmulDescCreate(&d.op, compute, CUDA_R_32F));
  if (bias) {
    const cublasLtEpilogue_t epi = CUBLASLT_EPILOGUE_BIAS;
    KILN_CUDA_CHECK(cublasLtMatmulDescSetAttribute(d.op, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi, sizeof(epi)));
  }
  if (flat) {
    const int64_t rows = g.kh * g.kw * g.m, pixels = g.n * g.h * g.w;
    KILN_RETURN_IF_ERROR(lt_layout(&d.a, t, rows, g.c, rows));
    KILN_RETURN_IF_ERROR(lt_layout(&d.b, t, g.c, pixels, g.c));
    KILN_RETURN_IF_ERROR(lt_layout(&d.c, t, rows, pixels, rows));
    return Status::Ok();
  }
  const int64_t rows = g.kw * g.m, batch = g.n * g.h;
  KILN_RETURN_IF_ERROR(lt_layout(&d.a, t, rows, g.c, g.kh * g.kw * g.m, batch, 0));
  KILN_RETURN_IF_ERROR(lt_layout(&d.b, t, g.c, g.w, g.c, batch, g.w * g.c));
  KILN_RETURN_IF_ERROR(lt_layout(&d.c, t, rows, g.w, rows, batch, g.kh * g.kw * g.w * g.m));
  return Status::Ok();
}

// The flat form's shuffle: T (N*H, Wx, kh, kw*M) -> Y (N*H, kh, Wx, kw*M), in 16-byte units where
// a kw*M run allows (it always holds whole units: the caller checks).
kernels::StridedParams shuffle_params(const Geometry& g, int64_t per_unit) {
  const int64_t run = g.kw * g.m / per_unit;
  kernels::StridedParams p;
  p.rank = 4;
  const int64_t out_dims[4] = {g.n * g.h, g.kh, g.w, run};
  const int64_t in_strides[4] = {g.w * g.kh * run, run, g.kh * run, 1};
  for (int i = 0; i < 4; ++i) {
    p.out_dims[i] = out_dims[i];
    p.in_strides[i] = in_strides[i];
  }
  return p;
}

class ConvTransposeGemmLayer : public CudaLayer {
 public:
  ConvTransposeGemmLayer(Geometry g, bool flat) : g_(g), flat_(flat) {}

  Status init(const Node& n, const LayerChoice& c) {
    const bool bias = n.has_input(2);
    KILN_RETURN_IF_ERROR(make_descriptors(g_, c.precision != "fp32", bias, flat_, d_));
    KILN_ASSIGN_OR_RETURN(cublasLtHandle_t h, lt_query_handle());
    cublasLtMatmulHeuristicResult_t checked{};
    if (!lt_tactic_algo(c.tactic, flat_ ? kFlatPrefix : kPrefix, algo_) ||
        cublasLtMatmulAlgoCheck(h, d_.op, d_.a, d_.b, d_.c, d_.c, &algo_, &checked) != CUBLAS_STATUS_SUCCESS ||
        checked.workspaceSize > kMaxWorkspace) {
      KILN_ASSIGN_OR_RETURN(auto results, lt_heuristics(d_, kMaxWorkspace, 1));  // stale choice: the heuristic's
      checked = results[0];
      algo_ = results[0].algo;
    }
    lt_workspace_ = checked.workspaceSize;
    workspace_ = lt_workspace_;
    if (flat_) {  // the product's result T goes after cuBLASLt's scratch
      const size_t es = dtype_size(g_.dtype);
      per_unit_ = (g_.kw * g_.m * static_cast<int64_t>(es)) % 16 == 0 ? 16 / static_cast<int64_t>(es) : 1;
      temp_offset_ = (lt_workspace_ + 255) / 256 * 256;
      workspace_ = temp_offset_ + static_cast<size_t>(g_.n * g_.h * g_.w * g_.kh * g_.kw * g_.m) * es;
      shuffle_ = shuffle_params(g_, per_unit_);
    }
    // The weights as they are (C, kh, kw, M); the bias repeated kw times (one per output column dj).
    const Tensor& w = *n.inputs[1]->constant;
    KILN_ASSIGN_OR_RETURN(weights_, DeviceBuffer::allocate(w.nbytes()));
    KILN_CUDA_CHECK(cudaMemcpy(weights_.get(), w.raw_data(), w.nbytes(), cudaMemcpyHostToDevice));
    if (bias) {
      const Tensor& b = *n.inputs[2]->constant;
      const size_t nb = b.nbytes();
      const int64_t copies = flat_ ? g_.kh * g_.kw : g_.kw;  // one per output column of the product
      std::vector<unsigned char> repeated(nb * static_cast<size_t>(copies));
      for (int64_t j = 0; j < copies; ++j)
        std::memcpy(repeated.data() + static_cast<size_t>(j) * nb, b.raw_data(), nb);
      KILN_ASSIGN_OR_RETURN(bias_, DeviceBuffer::allocate(repeated.size()));
      KILN_CUDA_CHECK(cudaMemcpy(bias_.get(), repeated.data(), repeated.size(), cudaMemcpyHostToDevice));
      const void* p = bias_.get();
      KILN_CUDA_CHECK(cublasLtMatmulDescSetAttribute(d_.op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &p, sizeof(p)));
    }
    return Status::Ok();
  }

  size_t workspace_bytes() const override { return workspace_; }

  Status enqueue(const LaunchArgs& a) const override {
    if (a.outputs[0].numel() == 0) return Status::Ok();
    if (a.workspace_bytes < workspace_) return internal_error("ConvTranspose GEMM workspace too small");
    const size_t es = dtype_size(g_.dtype);
    const float alpha = 1.f, beta = 0.f;
    if (flat_) {
      void* t = static_cast<char*>(a.workspace) + temp_offset_;
      KILN_CUDA_CHECK(cublasLtMatmul(a.handles.cublaslt, d_.op, &alpha, weights_.get(), d_.a, a.inputs[0].data, d_.b,
                                     &beta, t, d_.c, t, d_.c, &algo_, a.workspace, lt_workspace_, a.stream));
      KILN_CUDA_CHECK(kernels::strided_copy(static_cast<size_t>(per_unit_) * es, t, a.outputs[0].data, shuffle_, a.stream));
      return Status::Ok();
    }
    for (int64_t di = 0; di < g_.kh; ++di) {
      const auto* w = static_cast<const char*>(weights_.get()) + static_cast<size_t>(di * g_.kw * g_.m) * es;
      auto* y = static_cast<char*>(a.outputs[0].data) + static_cast<size_t>(di * g_.kw * g_.w * g_.m) * es;
      KILN_CUDA_CHECK(cublasLtMatmul(a.handles.cublaslt, d_.op, &alpha, w, d_.a, a.inputs[0].data, d_.b, &beta, y, d_.c,
                                     y, d_.c, &algo_, a.workspace, lt_workspace_, a.stream));
    }
    return Status::Ok();
  }

 private:
  Geometry g_;
  bool flat_ = false;
  LtDescriptors d_;
  DeviceBuffer weights_, bias_;
  cublasLtMatmulAlgo_t algo_{};
  size_t lt_workspace_ = 0, workspace_ = 0, temp_offset_ = 0;
  int64_t per_unit_ = 1;  // elements per shuffle unit
  kernels::StridedParams shuffle_;
};

}  // namespace

bool conv_transpose_gemm_fits(const Node& n) { return geometry(n).has_value(); }

bool is_conv_transpose_gemm_tactic(const std::string& tactic) {
  return tactic.rfind(kPrefix, 0) == 0 || tactic.rfind(kFlatPrefix, 0) == 0;
}

std::vector<std::string> conv_transpose_gemm_tactics(const Node& n, const BuildOptions& o) {
  auto g = geometry(n);
  if (!g) return {};
  std::vector<std::string> out;
  // The flat form's product lives in the workspace (the output's size): only within --workspace.
  const size_t temp = static_cast<size_t>(g->n * g->h * g->w * g->kh * g->kw * g->m) * dtype_size(g->dtype);
  for (bool flat : {false, true}) {
    if (flat && temp + kMaxWorkspace + 256 > o.workspace_bytes) continue;
    LtDescriptors d;
    if (!make_descriptors(*g, o.tf32, n.has_input(2), flat, d).ok()) continue;
    auto results = lt_heuristics(d, kMaxWorkspace, kCandidates);
    if (!results.ok()) continue;
    for (const auto& r : *results) out.push_back(lt_algo_tactic(flat ? kFlatPrefix : kPrefix, r.algo));
  }
  return out;
}

Expected<std::unique_ptr<CudaLayer>> conv_transpose_gemm_create(const Node& n, const LayerChoice& c) {
  auto g = geometry(n);
  if (!g) return invalid_model("{}: tactic '{}' needs kernel == stride, no padding, group 1", n.describe(), c.tactic);
  auto layer = std::make_unique<ConvTransposeGemmLayer>(*g, c.tactic.rfind(kFlatPrefix, 0) == 0);
  KILN_RETURN_IF_ERROR(layer->init(n, c));
  return std::unique_ptr<CudaLayer>(std::move(layer));
}

}  // namespace kiln::cuda
