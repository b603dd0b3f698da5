// CUDA layer of kiln.MaskedSoftmax (the fused attention softmax; kernel in softmax.cu): rows of the
// last dim up to 1024 long, a mask whose rows are contiguous (its last dim is the scores').
#include "backends/cuda/layers/ew_layer_util.hpp"
#include "backends/cuda/layers/norm_kernels.hpp"
#include "ops/masked_softmax.hpp"

namespace kiln::cuda {
namespace {

struct MaskedSoftmaxPlan {
  int64_t rows = 0, len = 0;
  float scale = 1.f;
  MaskIndex mask;
};

std::optional<MaskedSoftmaxPlan> plan_for(const Node& n) {
  if (!n.has_input(0) || !n.has_output(0)) return std::nullopt;
  const DType t = value_dtype(n.inputs[0]);
  if (!is_float_dtype(t) || value_dtype(n.outputs[0]) != t) return std::nullopt;
  auto x = static_dims(n.inputs[0]);
  if (!x || x->empty() || x->back() > 1024 || x->size() - 1 > static_cast<size_t>(kMaxMaskRank)) return std::nullopt;
  MaskedSoftmaxPlan p;
  p.len = x->back();
  p.rows = p.len == 0 ? 0 : dims_numel(*x) / p.len;
  p.scale = n.attrs.f("scale", 1.f);
  if (n.has_input(1)) {
    auto m = static_dims(n.inputs[1]);
    if (!m || value_dtype(n.inputs[1]) != t) return std::nullopt;
    auto strides = masked_softmax_mask_strides(*x, *m);
    // The kernel reads a mask row contiguously.
    if (!strides || (p.len > 1 && strides->back() != 1)) return std::nullopt;
    p.mask.rank = static_cast<int>(x->size() - 1);
    for (int d = 0; d < p.mask.rank; ++d) {
      p.mask.row_dims[d] = (*x)[static_cast<size_t>(d)];
      p.mask.strides[d] = (*strides)[static_cast<size_t>(d)];
    }
  }
  return p;
}

class MaskedSoftmaxLayer : public CudaLayer {
 public:
  MaskedSoftmaxLayer(DType t, MaskedSoftmaxPlan p) : t_(t), p_(p) {}
  Status enqueue(const LaunchArgs& a) const override {
    const void* mask = a.inputs.size() > 1 ? a.inputs[1].data : nullptr;
    KILN_CUDA_CHECK(launch_masked_softmax(t_, a.inputs[0].data, mask, p_.mask, p_.scale, a.outputs[0].data, p_.rows,
                                          p_.len, a.stream));
    return Status::Ok();
  }

 private:
  DType t_;
  MaskedSoftmaxPlan p_;
};

}  // namespace
}  // namespace kiln::cuda

KILN_REGISTER_CUDA_LAYER(
    "kiln.MaskedSoftmax",
    kiln::cuda::simple_factory(
        [](const kiln::Node& n) { return kiln::cuda::plan_for(n).has_value(); },
        [](const kiln::Node& n, const kiln::LayerChoice&) -> kiln::Expected<std::unique_ptr<kiln::cuda::CudaLayer>> {
          auto p = kiln::cuda::plan_for(n);
          if (!p) return kiln::unsupported("{}: not supported on CUDA", n.describe());
          return std::unique_ptr<kiln::cuda::CudaLayer>(
              std::make_unique<kiln::cuda::MaskedSoftmaxLayer>(kiln::cuda::value_dtype(n.inputs[0]), *p));
        }));
