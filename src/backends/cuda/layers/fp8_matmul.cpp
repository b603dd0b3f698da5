// kiln.Fp8Quantize and kiln.Fp8MatMul on CUDA. Fp8Quantize writes x / scale as float8 E4M3
// (fp8_quantize.cu); Fp8MatMul runs one cuBLASLt FP8 GEMM of it with the E4M3 weight, per-tensor
// scales as device scalars (A/B_SCALE_POINTER), writing float16/bfloat16/float32 with the bias
// [+ ReLU/GELU] epilogue and the residual as C. Row-major Y[M,N] = X[M,K]·Wᵀ is computed
// column-major as Yᵀ = W·Xᵀ: cuBLASLt's FP8 kernels need the "TN" form, A = W stored [N, K]
// (transposed) and B = X as stored.
//
// Tactics: cuBLASLt's algorithms for each of {cuBLASLt epilogue, own bias/activation kernel} x
// {fast accumulation off, on}. cuBLASLt's GELU is the tanh approximation; for an erf Gelu it
// differs by < 1e-3 relative, far below the FP8 quantization error.
#include <cctype>
#include <cmath>
#include <memory>
#include <mutex>
#include <optional>

#include "backends/cuda/cuda_layer.hpp"
#include "backends/cuda/device_buffer.hpp"
#include "backends/cuda/layers/fp8_kernels.hpp"

namespace kiln::cuda {
namespace {

using kernels::Fp8Act;

constexpr size_t kMaxLtWorkspace = 32u << 20;
constexpr int kCandidates = 4;

struct Fp8Shape {
  int64_t m = 0, n = 0, k = 0;  // row-major: X [m, k], W [n, k], Y [m, n]
  DType out = DType::kUndefined;
  bool bias = false, residual = false;
  Fp8Act act = Fp8Act::kNone;
  float sx = 1.f, sw = 1.f;
};

struct Fp8Config {
  bool lt_epilogue = true;  // bias/activation in cuBLASLt's epilogue (else the own kernel)
  bool fast_accum = false;
};

bool float_type(DType t) { return t == DType::kFloat32 || t == DType::kFloat16 || t == DType::kBFloat16; }

std::optional<float> scalar_of(const Value* v) {
  if (!v || !v->constant || v->constant->numel() != 1 || !is_floating(v->constant->dtype())) return std::nullopt;
  const double s = v->constant->scalar_as_double();
  if (!(s > 0) || !std::isfinite(s)) return std::nullopt;
  return static_cast<float>(s);
}

std::optional<Fp8Shape> shape_of(const Node& n) {
  if (n.num_inputs() < 4 || !n.has_input(0) || !n.has_input(2) || !n.has_output(0)) return std::nullopt;
  const Value *x = n.inputs[0], *w = n.inputs[2];
  Fp8Shape s;
  s.out = n.outputs[0]->type.dtype;
  if (x->type.dtype != DType::kFloat8E4M3FN || !float_type(s.out)) return std::nullopt;
  if (!w->constant || w->constant->dtype() != DType::kFloat8E4M3FN || w->constant->rank() != 2) return std::nullopt;
  auto sx = scalar_of(n.inputs[1]), sw = scalar_of(n.inputs[3]);
  if (!sx || !sw) return std::nullopt;
  s.sx = *sx;
  s.sw = *sw;
  auto xd = x->type.shape.to_dims();
  if (!xd || xd->size() < 2) return std::nullopt;
  s.n = w->constant->dim(0);
  s.k = w->constant->dim(1);
  if (xd->back() != s.k) return std::nullopt;
  s.m = dims_numel(*xd) / s.k;
  // cuBLASLt FP8: 16-byte aligned leading dims and K a multiple of 16.
  if (s.k % 16 != 0 || s.n % 16 != 0 || s.m < 1) return std::nullopt;
  if (n.has_input(4)) {
    const Value* b = n.inputs[4];
    if (!b->constant || b->constant->dtype() != s.out || b->constant->dims() != Dims{s.n}) return std::nullopt;
    s.bias = true;
  }
  if (n.has_input(5)) {
    if (n.inputs[5]->type.dtype != s.out || n.inputs[5]->type.shape.to_dims() != n.outputs[0]->type.shape.to_dims())
      return std::nullopt;
    s.residual = true;
  }
  const std::string act = n.attrs.s("activation", "");
  if (act == "Relu") s.act = Fp8Act::kRelu;
  else if (act == "Gelu") s.act = n.attrs.s("approximate", "none") == "tanh" ? Fp8Act::kGeluTanh : Fp8Act::kGeluErf;
  else if (!act.empty()) return std::nullopt;
  return s;
}

bool has_epilogue(const Fp8Shape& s) { return s.bias || s.act != Fp8Act::kNone; }

cudaDataType_t cuda_type(DType t) {
  return t == DType::kFloat16 ? CUDA_R_16F : t == DType::kBFloat16 ? CUDA_R_16BF : CUDA_R_32F;
}

struct Descriptors {
  cublasLtMatmulDesc_t op = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;
  ~Descriptors() {
    if (op) cublasLtMatmulDescDestroy(op);
    if (a) cublasLtMatrixLayoutDestroy(a);
    if (b) cublasLtMatrixLayoutDestroy(b);
    if (c) cublasLtMatrixLayoutDestroy(c);
  }
};

// `scales`: device floats {w_scale, x_scale}, or null while only enumerating algorithms.
Status make_descriptors(const Fp8Shape& s, const Fp8Config& cfg, const float* scales, Descriptors& d) {
  KILN_CUDA_CHECK(cublasLtMatmulDescCreate(&d.op, CUBLAS_COMPUTE_32F, CUDA_R_32F));
  const cublasOperation_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N;
  KILN_CUDA_CHECK(cublasLtMatmulDescSetAttribute(d.op, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof(ta)));
  KILN_CUDA_CHECK(cublasLtMatmulDescSetAttribute(d.op, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof(tb)));
  const int8_t fast = cfg.fast_accum ? 1 : 0;
  KILN_CUDA_CHECK(cublasLtMatmulDescSetAttribute(d.op, CUBLASLT_MATMUL_DESC_FAST_ACCUM, &fast, sizeof(fast)));
  if (scales) {
    const float* a_scale = scales;      // A is W
    const float* b_scale = scales + 1;  // B is X
    KILN_CUDA_CHECK(
        cublasLtMatmulDescSetAttribute(d.op, CUBLASLT_MATMUL_DESC_A_SCALE_POINTER, &a_scale, sizeof(a_scale)));
    KILN_CUDA_CHECK(
        cublasLtMatmulDescSetAttribute(d.op, CUBLASLT_MATMUL_DESC_B_SCALE_POINTER, &b_scale, sizeof(b_scale)));
  }
  cublasLtEpilogue_t epi = CUBLASLT_EPILOGUE_DEFAULT;
  if (cfg.lt_epilogue && has_epilogue(s)) {
    const bool gelu = s.act == Fp8Act::kGeluErf || s.act == Fp8Act::kGeluTanh;
    if (s.bias)
      epi = s.act == Fp8Act::kRelu ? CUBLASLT_EPILOGUE_RELU_BIAS : gelu ? CUBLASLT_EPILOGUE_GELU_BIAS
                                                                         : CUBLASLT_EPILOGUE_BIAS;
    else
      epi = s.act == Fp8Act::kRelu ? CUBLASLT_EPILOGUE_RELU : CUBLASLT_EPILOGUE_GELU;
    if (s.bias) {
      const cudaDataType_t bt = cuda_type(s.out);
      KILN_CUDA_CHECK(cublasLtMatmulDescSetAttribute(d.op, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &bt, sizeof(bt)));
    }
  }
  KILN_CUDA_CHECK(cublasLtMatmulDescSetAttribute(d.op, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi, sizeof(epi)));
  // Column-major: A = W as K x N (ld K), transposed; B = X as K x M (ld K); C/D = Y as N x M (ld N).
  KILN_CUDA_CHECK(cublasLtMatrixLayoutCreate(&d.a, CUDA_R_8F_E4M3, static_cast<uint64_t>(s.k),
                                             static_cast<uint64_t>(s.n), s.k));
  KILN_CUDA_CHECK(cublasLtMatrixLayoutCreate(&d.b, CUDA_R_8F_E4M3, static_cast<uint64_t>(s.k),
                                             static_cast<uint64_t>(s.m), s.k));
  KILN_CUDA_CHECK(cublasLtMatrixLayoutCreate(&d.c, cuda_type(s.out), static_cast<uint64_t>(s.n),
                                             static_cast<uint64_t>(s.m), s.n));
  return Status::Ok();
}

Expected<cublasLtHandle_t> query_handle() {
  static std::once_flag once;
  static cublasLtHandle_t handle = nullptr;
  static cublasStatus_t status = CUBLAS_STATUS_SUCCESS;
  std::call_once(once, [] { status = cublasLtCreate(&handle); });
  KILN_RETURN_IF_ERROR(check(status, "cublasLtCreate"));
  return handle;
}

Expected<std::vector<cublasLtMatmulHeuristicResult_t>> heuristics(const Descriptors& d, int count) {
  KILN_ASSIGN_OR_RETURN(cublasLtHandle_t h, query_handle());
  cublasLtMatmulPreference_t pref = nullptr;
  KILN_CUDA_CHECK(cublasLtMatmulPreferenceCreate(&pref));
  size_t ws = kMaxLtWorkspace;
  cublasStatus_t st =
      cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof(ws));
  std::vector<cublasLtMatmulHeuristicResult_t> results(static_cast<size_t>(count));
  int found = 0;
  if (st == CUBLAS_STATUS_SUCCESS)
    st = cublasLtMatmulAlgoGetHeuristic(h, d.op, d.a, d.b, d.c, d.c, pref, count, results.data(), &found);
  cublasLtMatmulPreferenceDestroy(pref);
  KILN_RETURN_IF_ERROR(check(st, "cublasLtMatmulAlgoGetHeuristic (FP8)"));
  if (found == 0) return unsupported("cuBLASLt has no FP8 algorithm for this product");
  results.resize(static_cast<size_t>(found));
  return results;
}

// "fp8:<e|k><s|f>:<algo bytes in hex>": e = cuBLASLt epilogue, k = own kernel; f = fast accumulation.
std::string to_tactic(const Fp8Config& cfg, const cublasLtMatmulAlgo_t& algo) {
  std::string t = fmt::format("fp8:{}{}:", cfg.lt_epilogue ? 'e' : 'k', cfg.fast_accum ? 'f' : 's');
  const auto* p = reinterpret_cast<const unsigned char*>(&algo);
  for (size_t i = 0; i < sizeof(algo); ++i) t += fmt::format("{:02x}", p[i]);
  return t;
}

bool from_tactic(const std::string& t, Fp8Config& cfg, cublasLtMatmulAlgo_t& algo) {
  if (t.size() != 7 + 2 * sizeof(algo) || t.rfind("fp8:", 0) != 0 || t[6] != ':') return false;
  if ((t[4] != 'e' && t[4] != 'k') || (t[5] != 's' && t[5] != 'f')) return false;
  cfg.lt_epilogue = t[4] == 'e';
  cfg.fast_accum = t[5] == 'f';
  auto* p = reinterpret_cast<unsigned char*>(&algo);
  for (size_t i = 0; i < sizeof(algo); ++i) {
    const std::string byte = t.substr(7 + 2 * i, 2);
    if (!std::isxdigit(static_cast<unsigned char>(byte[0])) || !std::isxdigit(static_cast<unsigned char>(byte[1])))
      return false;
    p[i] = static_cast<unsigned char>(std::stoul(byte, nullptr, 16));
  }
  return true;
}

class Fp8MatMulLayer : public CudaLayer {
 public:
  explicit Fp8MatMulLayer(Fp8Shape s) : s_(s) {}

  Status init(const Node& n, const std::string& tactic) {
    const float host_scales[2] = {s_.sw, s_.sx};
    KILN_ASSIGN_OR_RETURN(scales_, DeviceBuffer::allocate(sizeof(host_scales)));
    KILN_CUDA_CHECK(cudaMemcpy(scales_.get(), host_scales, sizeof(host_scales), cudaMemcpyHostToDevice));
    const Tensor& w = *n.inputs[2]->constant;
    KILN_ASSIGN_OR_RETURN(weight_, DeviceBuffer::allocate(w.nbytes()));
    KILN_CUDA_CHECK(cudaMemcpy(weight_.get(), w.raw_data(), w.nbytes(), cudaMemcpyHostToDevice));
    if (s_.bias) {
      const Tensor& b = *n.inputs[4]->constant;
      KILN_ASSIGN_OR_RETURN(bias_, DeviceBuffer::allocate(b.nbytes()));
      KILN_CUDA_CHECK(cudaMemcpy(bias_.get(), b.raw_data(), b.nbytes(), cudaMemcpyHostToDevice));
    }
    KILN_ASSIGN_OR_RETURN(cublasLtHandle_t h, query_handle());
    cublasLtMatmulAlgo_t algo;
    Fp8Config cfg;
    if (from_tactic(tactic, cfg, algo) && (cfg.lt_epilogue || has_epilogue(s_))) {
      KILN_RETURN_IF_ERROR(configure(cfg));
      cublasLtMatmulHeuristicResult_t r{};
      if (cublasLtMatmulAlgoCheck(h, d_->op, d_->a, d_->b, d_->c, d_->c, &algo, &r) == CUBLAS_STATUS_SUCCESS &&
          r.workspaceSize <= kMaxLtWorkspace) {
        algo_ = algo;
        lt_workspace_ = r.workspaceSize;
        return Status::Ok();
      }
    }
    // No (or a stale) stored choice: the heuristic's first answer, cuBLASLt's epilogue if it has one.
    for (bool lt_epi : {true, false}) {
      if (!lt_epi && !has_epilogue(s_)) break;
      KILN_RETURN_IF_ERROR(configure(Fp8Config{.lt_epilogue = lt_epi, .fast_accum = false}));
      auto results = heuristics(*d_, 1);
      if (!results.ok()) {
        if (lt_epi && has_epilogue(s_)) continue;
        return results.status();
      }
      algo_ = (*results)[0].algo;
      lt_workspace_ = (*results)[0].workspaceSize;
      return Status::Ok();
    }
    return unsupported("cuBLASLt has no FP8 algorithm for this product");
  }

  size_t workspace_bytes() const override { return lt_workspace_; }

  Status enqueue(const LaunchArgs& a) const override {
    if (a.workspace_bytes < lt_workspace_) return internal_error("Fp8MatMul workspace too small");
    const void* xq = a.inputs[0].data;
    void* D = a.outputs[0].data;
    const void* C = s_.residual ? a.inputs[5].data : D;
    const float alpha = 1.f, beta = s_.residual ? 1.f : 0.f;
    KILN_CUDA_CHECK(cublasLtMatmul(a.handles.cublaslt, d_->op, &alpha, weight_.get(), d_->a, xq, d_->b, &beta, C,
                                   d_->c, D, d_->c, &algo_, lt_workspace_ ? a.workspace : nullptr, lt_workspace_,
                                   a.stream));
    if (!cfg_.lt_epilogue && has_epilogue(s_))
      KILN_CUDA_CHECK(kernels::bias_activation(s_.out, D, s_.bias ? bias_.get() : nullptr, s_.m, s_.n, s_.act,
                                               a.stream));
    return Status::Ok();
  }

 private:
  Status configure(const Fp8Config& cfg) {
    cfg_ = cfg;
    d_ = std::make_unique<Descriptors>();
    KILN_RETURN_IF_ERROR(make_descriptors(s_, cfg, scales_.as<float>(), *d_));
    if (cfg.lt_epilogue && s_.bias) {
      const void* p = bias_.get();
      KILN_CUDA_CHECK(cublasLtMatmulDescSetAttribute(d_->op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &p, sizeof(p)));
    }
    return Status::Ok();
  }

  Fp8Shape s_;
  Fp8Config cfg_;
  std::unique_ptr<Descriptors> d_;
  DeviceBuffer scales_, weight_, bias_;
  cublasLtMatmulAlgo_t algo_{};
  size_t lt_workspace_ = 0;
};

// kiln.Fp8Quantize: a float32/16/bfloat16 x and its constant one-element scale.
class Fp8QuantizeLayer : public CudaLayer {
 public:
  Fp8QuantizeLayer(DType t, float scale) : t_(t), scale_(scale) {}
  Status enqueue(const LaunchArgs& a) const override {
    KILN_CUDA_CHECK(kernels::quantize_e4m3(t_, a.inputs[0].data, a.outputs[0].data, scale_, a.inputs[0].numel(),
                                           a.stream));
    return Status::Ok();
  }

 private:
  DType t_;
  float scale_;
};

bool quantize_supports(const Node& n) {
  return n.has_input(0) && n.has_output(0) && float_type(n.inputs[0]->type.dtype) && n.num_inputs() == 2 &&
         scalar_of(n.inputs[1]).has_value() && n.outputs[0]->type.dtype == DType::kFloat8E4M3FN;
}

Expected<std::unique_ptr<CudaLayer>> quantize_create(const Node& n, const LayerChoice&) {
  if (!quantize_supports(n)) return unsupported("{}: not supported on CUDA", n.describe());
  auto layer = std::make_unique<Fp8QuantizeLayer>(n.inputs[0]->type.dtype, *scalar_of(n.inputs[1]));
  return std::unique_ptr<CudaLayer>(std::move(layer));
}

bool supports(const Node& n) { return shape_of(n).has_value(); }

std::vector<std::string> tactics(const Node& n, const BuildOptions&) {
  auto s = shape_of(n);
  if (!s) return {};
  std::vector<std::string> out;
  for (bool lt_epi : {true, false}) {
    if (!lt_epi && !has_epilogue(*s)) break;
    for (bool fast : {false, true}) {
      const Fp8Config cfg{.lt_epilogue = lt_epi, .fast_accum = fast};
      Descriptors d;
      if (!make_descriptors(*s, cfg, nullptr, d).ok()) continue;
      auto results = heuristics(d, kCandidates);
      if (!results.ok()) continue;
      for (const auto& r : *results) out.push_back(to_tactic(cfg, r.algo));
    }
  }
  return out;
}

Expected<std::unique_ptr<CudaLayer>> create(const Node& n, const LayerChoice& choice) {
  auto s = shape_of(n);
  if (!s) return unsupported("{}: this FP8 product is not supported on CUDA", n.describe());
  auto layer = std::make_unique<Fp8MatMulLayer>(*s);
  KILN_RETURN_IF_ERROR(layer->init(n, choice.tactic));
  return std::unique_ptr<CudaLayer>(std::move(layer));
}

}  // namespace
}  // namespace kiln::cuda

KILN_REGISTER_CUDA_LAYER("kiln.Fp8MatMul", kiln::cuda::CudaLayerFactory{.supports = kiln::cuda::supports,
                                                                        .tactics = kiln::cuda::tactics,
                                                                        .create = kiln::cuda::create});
KILN_REGISTER_CUDA_LAYER("kiln.Fp8Quantize", kiln::cuda::CudaLayerFactory{.supports = kiln::cuda::quantize_supports,
                                                                          .create = kiln::cuda::quantize_create});
