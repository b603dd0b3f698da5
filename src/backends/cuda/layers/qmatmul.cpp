// kiln.QMatMul (ops/qdq_layers.hpp) on CUDA: X (rows, K) int8 times Wᵀ (W (N, K) int8). Tactics,
// timed by the builder:
// - "igemm_s8:<tile>": kiln's implicit-GEMM kernel (qconv_igemm.hpp) as a 1x1 convolution over one
//   image of rows x 1 pixels with K channels (W is already its (M, 1, 1, C) weight layout), with
//   the epilogue fused where Y is int8 or float16 and N a multiple of 16 (else int32 sums, then
//   the epilogue kernel); K a multiple of 16.
// - each cuBLASLt int8 GEMM algorithm (qgemm_lt.hpp, "lt_int8:<algo bytes>") and "direct" (a dp4a
//   kernel of kiln's own): int32 sums, then the epilogue kernel (scales, bias, residual, Relu,
//   requantization).
#include "backends/cuda/layers/qgemm_lt.hpp"
#include "backends/cuda/layers/qlayer_util.hpp"
#include "ops/qdq_layers.hpp"

namespace kiln::cuda {
namespace {

// The implicit-GEMM kernel's view of the product: one image, rows x 1 pixels, K channels, 1x1.
bool igemm_runs(const Int8GemmShape& g, int config) {
  return kernels::igemm_s8_supports(1, g.rows, 1, g.k, g.n, 1, 1, g.rows, 1, config);
}

std::optional<Int8GemmShape> qgemm_shape(const Node& n) {
  auto x = static_dims(n.inputs[0]);
  auto w = static_dims(n.has_input(2) ? n.inputs[2] : nullptr);
  if (!x || !w || x->empty() || w->size() != 2 || x->back() != (*w)[1]) return std::nullopt;
  Int8GemmShape g{dims_numel(*x) / std::max<int64_t>(1, x->back()), (*w)[0], (*w)[1]};
  if (!qmatmul_int8_runnable(g.k, g.n) || g.rows > INT32_MAX || g.n > INT32_MAX || g.k > INT32_MAX)
    return std::nullopt;
  return g;
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
    l.sums_small_ = kernels::igemm_s8_sums_small(w.data<int8_t>(), g->n, g->k);
    const std::string& t = choice.tactic;
    if (t.rfind(kIgemmTactic, 0) == 0) {
      KILN_ASSIGN_OR_RETURN(l.igemm_,
                            prepare_igemm_tactic(n, t, "product", [&](int config) { return igemm_runs(*g, config); }));
      l.fused_ = igemm_fusable(n, g->n);
    } else if (!t.empty() && t != "direct") {
      Status st = l.gemm_.init(*g, choice.tactic);
      if (!st.ok()) return Status(st).add_context(n.describe());
      l.lt_ = true;
    }
    l.acc_offset_ = align256(l.gemm_.workspace_bytes());
    l.total_ws_ = l.fused_ ? 0 : l.acc_offset_ + static_cast<size_t>(g->rows * g->n) * sizeof(int32_t);
    return std::unique_ptr<CudaLayer>(std::move(layer));
  }

  size_t workspace_bytes() const override { return total_ws_; }

  Status enqueue(const LaunchArgs& a) const override {
    if (a.outputs[0].numel() == 0) return Status::Ok();
    if (a.workspace_bytes < total_ws_) return internal_error("quantized product workspace too small");
    auto* acc = reinterpret_cast<int32_t*>(static_cast<char*>(a.workspace) + acc_offset_);
    const int8_t* x = a.inputs[0].as<int8_t>();
    if (igemm_ >= 0) {
      kernels::IgemmS8Params ip;
      ip.x = x;
      ip.w = w_.as<int8_t>();
      ip.n = 1;
      ip.h = ip.oh = static_cast<int>(g_.rows);
      ip.w_in = ip.ow = 1;
      ip.c = static_cast<int>(g_.k);
      ip.m = static_cast<int>(g_.n);
      ip.kh = ip.kw = 1;
      ip.acc_small = sums_small_;
      KILN_RETURN_IF_ERROR(launch_igemm(ip, igemm_, fused_, epi_.params(a), acc, g_.n, a.stream));
      if (fused_) return Status::Ok();
    } else if (lt_) {
      KILN_RETURN_IF_ERROR(gemm_.run(a.handles.cublaslt, x, w_.as<int8_t>(), acc, a.workspace, a.stream));
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
  Int8GemmShape g_;
  QEpilogue epi_;
  DeviceBuffer w_;
  Int8Gemm gemm_;
  bool lt_ = false;
  bool sums_small_ = false;  // |sums| <= 2^22 whatever X holds (igemm_s8_sums_small)
  int igemm_ = -1;      // the implicit-GEMM tile configuration, or -1
  bool fused_ = false;  // igemm with the epilogue fused (no int32 sums)
  size_t acc_offset_ = 0, total_ws_ = 0;
};

bool qmatmul_supports(const Node& n) {
  if (!n.has_input(2) || !n.inputs[2]->is_constant()) return false;
  return q_layer_supports(n, n.inputs[2]->constant->dim(0)) && qgemm_shape(n).has_value();
}

std::vector<std::string> qmatmul_tactics(const Node& n, const BuildOptions&) {
  std::vector<std::string> out;
  auto g = qgemm_shape(n);
  if (g)  // first: ties go to it
    for (int i = 0; i < kernels::kIgemmConfigs; ++i)
      if (igemm_runs(*g, i)) out.push_back(std::string(kIgemmTactic) + kernels::igemm_s8_config_name(i));
  out.push_back("direct");
  if (g)
    for (std::string& t : Int8Gemm::tactics(*g)) out.push_back(std::move(t));
  return out;
}

}  // namespace
}  // namespace kiln::cuda

KILN_REGISTER_CUDA_LAYER("kiln.QMatMul", kiln::cuda::CudaLayerFactory{.supports = kiln::cuda::qmatmul_supports,
                                                                      .tactics = kiln::cuda::qmatmul_tactics,
                                                                      .create = kiln::cuda::QMatMulLayer::create});
