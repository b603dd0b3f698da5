// kiln.NHWC ConvTranspose as the Hopper GEMM (conv_transpose_tma.hpp).
#include "backends/cuda/layers/conv_transpose_tma.hpp"

#include <vector>

#include "backends/cuda/device_buffer.hpp"
#include "backends/cuda/layers/conv_transpose_gemm.hpp"
#include "backends/cuda/layers/conv_transpose_tma_kernels.hpp"
#include "backends/cuda/layers/nn_util.hpp"
#include "backends/cuda/layers/sm90a.hpp"

namespace kiln::cuda {
namespace {

// conv_transpose_gemm_fits has checked the form (kernel == stride, no padding, group 1, one dtype).
std::optional<kernels::UpGemmParams> params(const Node& n, int64_t tile_cols) {
  if (!conv_transpose_gemm_fits(n) || n.outputs[0]->type.dtype != DType::kFloat16) return std::nullopt;
  const Dims x = *static_dims(n.inputs[0]), w = *static_dims(n.inputs[1]);  // (N, H, W, C), (C, kh, kw, M)
  kernels::UpGemmParams p{.n = x[0], .h = x[1], .w = x[2], .c = x[3], .kh = w[1], .kw = w[2], .m = w[3]};
  p.tile_cols = tile_cols;
  if (!kernels::up_gemm_fits(p)) return std::nullopt;
  return p;
}

class ConvTransposeTmaLayer : public CudaLayer {
 public:
  ConvTransposeTmaLayer(kernels::UpGemmParams p, kernels::UpGemmLaunch launch) : p_(p), launch_(launch) {}

  // The kernel reads W transposed, Wt (kh*kw*M, C): row (a, b, o) holds W[:, a, b, o].
  Status init(const Node& n) {
    const Tensor& w = *n.inputs[1]->constant;
    const int64_t cols = p_.kh * p_.kw * p_.m, c = p_.c;
    const auto* src = static_cast<const uint16_t*>(w.raw_data());
    std::vector<uint16_t> wt(static_cast<size_t>(cols * c));
    for (int64_t k = 0; k < c; ++k)
      for (int64_t j = 0; j < cols; ++j) wt[static_cast<size_t>(j * c + k)] = src[k * cols + j];
    KILN_ASSIGN_OR_RETURN(wt_, DeviceBuffer::allocate(wt.size() * sizeof(uint16_t)));
    KILN_CUDA_CHECK(cudaMemcpy(wt_.get(), wt.data(), wt.size() * sizeof(uint16_t), cudaMemcpyHostToDevice));
    return Status::Ok();
  }

  Status enqueue(const LaunchArgs& a) const override {
    if (a.outputs[0].numel() == 0) return Status::Ok();
    const void* b = a.inputs.size() > 2 ? a.inputs[2].data : nullptr;
    KILN_CUDA_CHECK(kernels::up_gemm(a.inputs[0].data, wt_.get(), b, a.outputs[0].data, p_, launch_, a.stream));
    return Status::Ok();
  }

 private:
  kernels::UpGemmParams p_;
  kernels::UpGemmLaunch launch_;
  DeviceBuffer wt_;
};

}  // namespace

std::vector<std::string> conv_transpose_tma_tactics(const Node& n) {
  if (!params(n, 256) || !kernels::sm90a_kernels_available()) return {};
  return {kConvTransposeTmaTactic, kConvTransposeTmaNarrowTactic};
}

bool is_conv_transpose_tma_tactic(const std::string& tactic) {
  return tactic == kConvTransposeTmaTactic || tactic == kConvTransposeTmaNarrowTactic;
}

Expected<std::unique_ptr<CudaLayer>> conv_transpose_tma_create(const Node& n, const std::string& tactic) {
  auto p = params(n, tactic == kConvTransposeTmaNarrowTactic ? 128 : 256);
  if (!p)
    return invalid_model(
        "{}: tactic '{}' needs a float16 ConvTranspose with kernel == stride, no padding, group 1, input and "
        "output channels multiples of 64 and an input width that is a multiple or a divisor of 64",
        n.describe(), tactic);
  if (!kernels::sm90a_kernels_available())
    return unsupported("{}: tactic '{}' needs an sm_90 GPU and a build with sm_90a code", n.describe(), tactic);
  kernels::UpGemmLaunch launch;
  KILN_CUDA_CHECK(kernels::up_gemm_setup(*p, &launch));
  auto layer = std::make_unique<ConvTransposeTmaLayer>(*p, launch);
  KILN_RETURN_IF_ERROR(layer->init(n));
  return std::unique_ptr<CudaLayer>(std::move(layer));
}

}  // namespace kiln::cuda
