// kiln.Fp8Quantize and kiln.Fp8MatMul on CUDA. Fp8Quantize writes x / scale as float8 E4M3
// (fp8_quantize.cu); Fp8MatMul runs one cuBLASLt FP8 GEMM of it with the E4M3 weight, per-tensor
// scales as device scalars (A/B_SCALE_POINTER), writing float16/bfloat16/float32 with the bias
// [+ ReLU/GELU] epilogue and the residual as C. With y_scale (fp8-quantize-fusion) it writes
// float8 E4M3: cuBLASLt's D type with D_SCALE_POINTER = 1/y_scale (C and bias stay 16-bit), or,
// with the own-kernel epilogue, a 16-bit GEMM result in the workspace that the epilogue kernel
// turns into float8. Row-major Y[M,N] = X[M,K]·Wᵀ is computed
// column-major as Yᵀ = W·Xᵀ: cuBLASLt's FP8 kernels need the "TN" form, A = W stored [N, K]
// (transposed) and B = X as stored.
//
// Tactics: cuBLASLt's algorithms for each of {scale pointers, scales folded into alpha} x
// {cuBLASLt epilogue, own bias/activation kernel} x {fast accumulation off, on}, each kept only if
// a probe run on scratch data succeeds (cuBLASLt's heuristic offers FP8 algorithms that
// cublasLtMatmul then refuses). cuBLASLt's GELU is the tanh approximation; for an erf Gelu it
// differs by < 1e-3 relative, far below the FP8 quantization error.
#include <cctype>
#include <cmath>
#include <cstring>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include "backends/cuda/layers/lt_util.hpp"
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
  DType out = DType::kUndefined;  // the GEMM's float type: C, bias and (unless fp8_out) D
  bool bias = false, residual = false;
  bool fp8_out = false;  // D is float8 E4M3, e4m3(y / sy)
  Fp8Act act = Fp8Act::kNone;
  float sx = 1.f, sw = 1.f, sy = 1.f;
};

struct Fp8Config {
  bool lt_epilogue = true;   // bias/activation in cuBLASLt's epilogue (else the own kernel)
  bool fast_accum = false;   // cuBLASLt's FP8 fast accumulation
  bool scale_pointers = true;  // scales as A/B_SCALE_POINTER device scalars (else folded into alpha)
};

// Scale buffer layout: w_scale at 0, x_scale at 256 bytes, 1/y_scale at 512 (each scale pointer
// 256-byte aligned).
constexpr size_t kScaleStride = 256;
constexpr size_t kScaleBytes = 3 * kScaleStride;

bool float_type(DType t) { return t == DType::kFloat32 || t == DType::kFloat16 || t == DType::kBFloat16; }

std::optional<float> scalar_of(const Value* v) {
  if (!v || !v->constant || v->constant->numel() != 1 || !is_floating(v->constant->dtype())) return std::nullopt;
  const double s = v->constant->scalar_as_double();
  if (!(s > 0) || !std::isfinite(s)) return std::nullopt;
  return static_cast<float>(s);
}

std::optional<Fp8Shape> shape_of(const Node& n) {
  if (n.num_inputs() < 4 || !n.has_input(0) || !n.has_input(1) || !n.has_input(2) || !n.has_output(0))
    return std::nullopt;
  const Value *x = n.inputs[0], *w = n.inputs[2];
  Fp8Shape s;
  s.out = n.inputs[1]->type.dtype;
  if (n.has_input(6)) {
    auto sy = scalar_of(n.inputs[6]);
    // cuBLASLt's float8 D needs a 16-bit C/bias type.
    if (!sy || (s.out != DType::kFloat16 && s.out != DType::kBFloat16) ||
        n.outputs[0]->type.dtype != DType::kFloat8E4M3FN)
      return std::nullopt;
    s.fp8_out = true;
    s.sy = *sy;
  } else if (n.outputs[0]->type.dtype != s.out) {
    return std::nullopt;
  }
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
// Whether the own kernel runs after the GEMM: the epilogue, or the float8 conversion, not in cuBLASLt.
bool own_kernel(const Fp8Shape& s, const Fp8Config& cfg) { return !cfg.lt_epilogue && (has_epilogue(s) || s.fp8_out); }
// cuBLASLt writes float8 D itself (else the own kernel converts a 16-bit GEMM result).
bool lt_fp8_d(const Fp8Shape& s, const Fp8Config& cfg) { return s.fp8_out && cfg.lt_epilogue; }

cudaDataType_t cuda_type(DType t) {
  return t == DType::kFloat16 ? CUDA_R_16F : t == DType::kBFloat16 ? CUDA_R_16BF : CUDA_R_32F;
}

using Descriptors = LtDescriptors;

// `scales`: device scales (w at 0, x at kScaleStride bytes), used with cfg.scale_pointers.
Status make_descriptors(const Fp8Shape& s, const Fp8Config& cfg, const void* scales, Descriptors& d) {
  KILN_CUDA_CHECK(cublasLtMatmulDescCreate(&d.op, CUBLAS_COMPUTE_32F, CUDA_R_32F));
  const cublasOperation_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N;
  KILN_CUDA_CHECK(cublasLtMatmulDescSetAttribute(d.op, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof(ta)));
  KILN_CUDA_CHECK(cublasLtMatmulDescSetAttribute(d.op, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof(tb)));
  if (cfg.fast_accum) {
    const int8_t fast = 1;
    KILN_CUDA_CHECK(cublasLtMatmulDescSetAttribute(d.op, CUBLASLT_MATMUL_DESC_FAST_ACCUM, &fast, sizeof(fast)));
  }
  if (cfg.scale_pointers && scales) {
    const void* a_scale = scales;                                         // A is W
    const void* b_scale = static_cast<const char*>(scales) + kScaleStride;  // B is X
    KILN_CUDA_CHECK(
        cublasLtMatmulDescSetAttribute(d.op, CUBLASLT_MATMUL_DESC_A_SCALE_POINTER, &a_scale, sizeof(a_scale)));
    KILN_CUDA_CHECK(
        cublasLtMatmulDescSetAttribute(d.op, CUBLASLT_MATMUL_DESC_B_SCALE_POINTER, &b_scale, sizeof(b_scale)));
  }
  if (lt_fp8_d(s, cfg)) {
    if (!scales) return internal_error("FP8 output without a D scale");
    const void* d_scale = static_cast<const char*>(scales) + 2 * kScaleStride;  // 1/y_scale
    KILN_CUDA_CHECK(
        cublasLtMatmulDescSetAttribute(d.op, CUBLASLT_MATMUL_DESC_D_SCALE_POINTER, &d_scale, sizeof(d_scale)));
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
    KILN_CUDA_CHECK(cublasLtMatmulDescSetAttribute(d.op, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi, sizeof(epi)));
  }
  // Column-major: A = W as K x N (ld K), transposed; B = X as K x M (ld K); C/D = Y as N x M (ld N).
  KILN_CUDA_CHECK(cublasLtMatrixLayoutCreate(&d.a, CUDA_R_8F_E4M3, static_cast<uint64_t>(s.k),
                                             static_cast<uint64_t>(s.n), s.k));
  KILN_CUDA_CHECK(cublasLtMatrixLayoutCreate(&d.b, CUDA_R_8F_E4M3, static_cast<uint64_t>(s.k),
                                             static_cast<uint64_t>(s.m), s.k));
  KILN_CUDA_CHECK(cublasLtMatrixLayoutCreate(&d.c, cuda_type(s.out), static_cast<uint64_t>(s.n),
                                             static_cast<uint64_t>(s.m), s.n));
  if (lt_fp8_d(s, cfg))
    KILN_CUDA_CHECK(cublasLtMatrixLayoutCreate(&d.d, CUDA_R_8F_E4M3, static_cast<uint64_t>(s.n),
                                               static_cast<uint64_t>(s.m), s.n));
  return Status::Ok();
}

// alpha: 1 with scale pointers, else the product of the scales.
float alpha_of(const Fp8Shape& s, const Fp8Config& cfg) { return cfg.scale_pointers ? 1.f : s.sx * s.sw; }


Expected<std::vector<cublasLtMatmulHeuristicResult_t>> heuristics(const Descriptors& d, int count) {
  KILN_ASSIGN_OR_RETURN(cublasLtHandle_t h, lt_query_handle());
  cublasLtMatmulPreference_t pref = nullptr;
  KILN_CUDA_CHECK(cublasLtMatmulPreferenceCreate(&pref));
  size_t ws = kMaxLtWorkspace;
  cublasStatus_t st =
      cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof(ws));
  std::vector<cublasLtMatmulHeuristicResult_t> results(static_cast<size_t>(count));
  int found = 0;
  if (st == CUBLAS_STATUS_SUCCESS)
    st = cublasLtMatmulAlgoGetHeuristic(h, d.op, d.a, d.b, d.c, d.d ? d.d : d.c, pref, count, results.data(), &found);
  cublasLtMatmulPreferenceDestroy(pref);
  KILN_RETURN_IF_ERROR(check(st, "cublasLtMatmulAlgoGetHeuristic (FP8)"));
  if (found == 0) return unsupported("cuBLASLt has no FP8 algorithm for this product");
  results.resize(static_cast<size_t>(found));
  return results;
}

// "fp8:<e|k><s|f><p|a>:<algo bytes in hex>": e = cuBLASLt epilogue, k = own kernel; f = fast
// accumulation; p = scale pointers, a = scales in alpha.
std::string to_tactic(const Fp8Config& cfg, const cublasLtMatmulAlgo_t& algo) {
  std::string t = fmt::format("fp8:{}{}{}:", cfg.lt_epilogue ? 'e' : 'k', cfg.fast_accum ? 'f' : 's',
                              cfg.scale_pointers ? 'p' : 'a');
  const auto* p = reinterpret_cast<const unsigned char*>(&algo);
  for (size_t i = 0; i < sizeof(algo); ++i) t += fmt::format("{:02x}", p[i]);
  return t;
}

bool from_tactic(const std::string& t, Fp8Config& cfg, cublasLtMatmulAlgo_t& algo) {
  if (t.size() != 8 + 2 * sizeof(algo) || t.rfind("fp8:", 0) != 0 || t[7] != ':') return false;
  if ((t[4] != 'e' && t[4] != 'k') || (t[5] != 's' && t[5] != 'f') || (t[6] != 'p' && t[6] != 'a')) return false;
  cfg.lt_epilogue = t[4] == 'e';
  cfg.fast_accum = t[5] == 'f';
  cfg.scale_pointers = t[6] == 'p';
  auto* p = reinterpret_cast<unsigned char*>(&algo);
  for (size_t i = 0; i < sizeof(algo); ++i) {
    const std::string byte = t.substr(8 + 2 * i, 2);
    if (!std::isxdigit(static_cast<unsigned char>(byte[0])) || !std::isxdigit(static_cast<unsigned char>(byte[1])))
      return false;
    p[i] = static_cast<unsigned char>(std::stoul(byte, nullptr, 16));
  }
  return true;
}

// The configurations to try, preferred first.
std::vector<Fp8Config> configs(const Fp8Shape& s) {
  std::vector<Fp8Config> out;
  for (bool pointers : {true, false})
    for (bool lt_epi : {true, false}) {
      if (!lt_epi && !has_epilogue(s) && !s.fp8_out) continue;
      for (bool fast : {false, true})
        out.push_back(Fp8Config{.lt_epilogue = lt_epi, .fast_accum = fast, .scale_pointers = pointers});
    }
  return out;
}

// Runs candidate algorithms once on scratch device data (zeros): cuBLASLt's heuristic offers FP8
// algorithms that cublasLtMatmul then refuses for some pointer/epilogue combinations, and only a
// run tells. Build time only.
class Probe {
 public:
  static Expected<std::unique_ptr<Probe>> make(const Fp8Shape& s) {
    auto p = std::make_unique<Probe>();
    const size_t esize = dtype_size(s.out);
    KILN_ASSIGN_OR_RETURN(p->a_, DeviceBuffer::allocate(static_cast<size_t>(s.n * s.k)));
    KILN_ASSIGN_OR_RETURN(p->b_, DeviceBuffer::allocate(static_cast<size_t>(s.m * s.k)));
    KILN_ASSIGN_OR_RETURN(p->d_, DeviceBuffer::allocate(static_cast<size_t>(s.m * s.n) * esize));
    KILN_ASSIGN_OR_RETURN(p->c_, DeviceBuffer::allocate(static_cast<size_t>(s.m * s.n) * esize));
    KILN_ASSIGN_OR_RETURN(p->bias_, DeviceBuffer::allocate(static_cast<size_t>(s.n) * esize));
    KILN_ASSIGN_OR_RETURN(p->scales_, DeviceBuffer::allocate(kScaleBytes));
    KILN_ASSIGN_OR_RETURN(p->ws_, DeviceBuffer::allocate(kMaxLtWorkspace));
    for (const DeviceBuffer* b : {&p->a_, &p->b_, &p->d_, &p->c_, &p->bias_, &p->scales_})
      KILN_CUDA_CHECK(cudaMemset(b->get(), 0, b->size()));
    KILN_CUDA_CHECK(cudaStreamCreateWithFlags(&p->stream_, cudaStreamNonBlocking));
    return p;
  }
  ~Probe() {
    if (stream_) cudaStreamDestroy(stream_);
  }
  const void* scales() const { return scales_.get(); }
  const void* bias() const { return bias_.get(); }

  // Whether one run of `algo` succeeds.
  bool runs(const Fp8Shape& s, const Fp8Config& cfg, const Descriptors& d, const cublasLtMatmulHeuristicResult_t& r) {
    auto h = lt_query_handle();
    if (!h.ok() || r.workspaceSize > kMaxLtWorkspace) return false;
    const float alpha = alpha_of(s, cfg), beta = s.residual ? 1.f : 0.f;
    // As the layer runs it: C = D, except a residual or a float8 D (C separate: another type).
    const void* c = s.residual || d.d ? c_.get() : d_.get();
    cublasStatus_t st = cublasLtMatmul(*h, d.op, &alpha, a_.get(), d.a, b_.get(), d.b, &beta, c, d.c, d_.get(),
                                       d.d ? d.d : d.c, &r.algo, ws_.get(), r.workspaceSize, stream_);
    const cudaError_t e = cudaStreamSynchronize(stream_);
    cudaGetLastError();  // a failed launch must not stick to the next check
    return st == CUBLAS_STATUS_SUCCESS && e == cudaSuccess;
  }

 private:
  DeviceBuffer a_, b_, d_, c_, bias_, scales_, ws_;
  cudaStream_t stream_ = nullptr;
};

// Descriptors for `cfg`, pointing at the probe's (or the layer's) scales and bias.
Status describe(const Fp8Shape& s, const Fp8Config& cfg, const void* scales, const void* bias, Descriptors& d) {
  KILN_RETURN_IF_ERROR(make_descriptors(s, cfg, scales, d));
  if (cfg.lt_epilogue && s.bias)
    KILN_CUDA_CHECK(cublasLtMatmulDescSetAttribute(d.op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof(bias)));
  return Status::Ok();
}

// Tactics whose probe run succeeded, at most `per_config` algorithms per configuration and
// `limit` in all.
std::vector<std::string> working_tactics(const Fp8Shape& s, int per_config, size_t limit) {
  std::vector<std::string> out;
  auto probe = Probe::make(s);
  if (!probe.ok()) return out;
  for (const Fp8Config& cfg : configs(s)) {
    Descriptors d;
    if (!describe(s, cfg, (*probe)->scales(), (*probe)->bias(), d).ok()) continue;
    auto results = heuristics(d, per_config);
    if (!results.ok()) continue;
    for (const auto& r : *results) {
      if (out.size() >= limit) return out;
      if ((*probe)->runs(s, cfg, d, r)) out.push_back(to_tactic(cfg, r.algo));
    }
  }
  return out;
}

class Fp8MatMulLayer : public CudaLayer {
 public:
  explicit Fp8MatMulLayer(Fp8Shape s) : s_(s) {}

  Status init(const Node& n, const std::string& tactic) {
    std::vector<char> host_scales(kScaleBytes, 0);
    const float inv_sy = 1.f / s_.sy;
    std::memcpy(host_scales.data(), &s_.sw, sizeof(float));
    std::memcpy(host_scales.data() + kScaleStride, &s_.sx, sizeof(float));
    std::memcpy(host_scales.data() + 2 * kScaleStride, &inv_sy, sizeof(float));
    KILN_ASSIGN_OR_RETURN(scales_, DeviceBuffer::allocate(host_scales.size()));
    KILN_CUDA_CHECK(cudaMemcpy(scales_.get(), host_scales.data(), host_scales.size(), cudaMemcpyHostToDevice));
    const Tensor& w = *n.inputs[2]->constant;
    KILN_ASSIGN_OR_RETURN(weight_, DeviceBuffer::allocate(w.nbytes()));
    KILN_CUDA_CHECK(cudaMemcpy(weight_.get(), w.raw_data(), w.nbytes(), cudaMemcpyHostToDevice));
    if (s_.bias) {
      const Tensor& b = *n.inputs[4]->constant;
      KILN_ASSIGN_OR_RETURN(bias_, DeviceBuffer::allocate(b.nbytes()));
      KILN_CUDA_CHECK(cudaMemcpy(bias_.get(), b.raw_data(), b.nbytes(), cudaMemcpyHostToDevice));
    }
    std::string chosen = tactic;
    cublasLtMatmulAlgo_t algo;
    Fp8Config cfg;
    if (!from_tactic(chosen, cfg, algo) || !(cfg.lt_epilogue || has_epilogue(s_) || s_.fp8_out) ||
        !use(cfg, algo).ok()) {
      // No (or a stale) stored choice: the first configuration and algorithm that runs.
      auto working = working_tactics(s_, 2, 1);
      if (working.empty() || !from_tactic(working[0], cfg, algo))
        return unsupported("cuBLASLt runs no FP8 algorithm for this product ({}x{}x{}, {} output)", s_.m, s_.n, s_.k,
                           dtype_name(s_.out));
      KILN_RETURN_IF_ERROR(use(cfg, algo));
    }
    return Status::Ok();
  }

  // cuBLASLt's workspace, then (float8 output) a 16-bit staging area: the own kernel's input, or
  // cuBLASLt's C when D is float8 and there is no residual (C must not alias a D of another type;
  // with beta 0 it is not read).
  size_t workspace_bytes() const override { return lt_ws_aligned() + staging_bytes(); }

  Status enqueue(const LaunchArgs& a) const override {
    if (a.workspace_bytes < workspace_bytes()) return internal_error("Fp8MatMul workspace too small");
    const void* xq = a.inputs[0].data;
    void* out = a.outputs[0].data;
    void* staging = staging_bytes() ? static_cast<char*>(a.workspace) + lt_ws_aligned() : nullptr;
    // D: the output, or (float8 through the own kernel) the staging area the kernel converts.
    void* D = s_.fp8_out && !lt_fp8_d(s_, cfg_) ? staging : out;
    const void* C = s_.residual ? a.inputs[5].data : lt_fp8_d(s_, cfg_) ? staging : D;
    const float alpha = alpha_of(s_, cfg_), beta = s_.residual ? 1.f : 0.f;
    KILN_CUDA_CHECK(cublasLtMatmul(a.handles.cublaslt, d_->op, &alpha, weight_.get(), d_->a, xq, d_->b, &beta, C,
                                   d_->c, D, d_->d ? d_->d : d_->c, &algo_, lt_workspace_ ? a.workspace : nullptr,
                                   lt_workspace_, a.stream));
    if (own_kernel(s_, cfg_)) {
      const void* bias = s_.bias ? bias_.get() : nullptr;
      if (s_.fp8_out)
        KILN_CUDA_CHECK(kernels::bias_activation_e4m3(s_.out, D, bias, out, s_.m, s_.n, s_.act, 1.f / s_.sy, a.stream));
      else
        KILN_CUDA_CHECK(kernels::bias_activation(s_.out, D, bias, s_.m, s_.n, s_.act, a.stream));
    }
    return Status::Ok();
  }

 private:
  // Descriptors for `cfg` with this layer's scales and bias; `algo` must pass cuBLASLt's check.
  Status use(const Fp8Config& cfg, const cublasLtMatmulAlgo_t& algo) {
    KILN_ASSIGN_OR_RETURN(cublasLtHandle_t h, lt_query_handle());
    auto d = std::make_unique<Descriptors>();
    KILN_RETURN_IF_ERROR(describe(s_, cfg, scales_.get(), bias_.get(), *d));
    cublasLtMatmulHeuristicResult_t r{};
    KILN_CUDA_CHECK(cublasLtMatmulAlgoCheck(h, d->op, d->a, d->b, d->c, d->d ? d->d : d->c, &algo, &r));
    if (r.workspaceSize > kMaxLtWorkspace) return unsupported("FP8 algorithm needs too much workspace");
    cfg_ = cfg;
    d_ = std::move(d);
    algo_ = algo;
    lt_workspace_ = r.workspaceSize;
    return Status::Ok();
  }

  size_t lt_ws_aligned() const { return (lt_workspace_ + 255) / 256 * 256; }
  size_t staging_bytes() const {
    const bool needed = s_.fp8_out && (!cfg_.lt_epilogue || !s_.residual);
    return needed ? static_cast<size_t>(s_.m * s_.n) * dtype_size(s_.out) : 0;
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
  return working_tactics(*s, kCandidates, 16);
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
