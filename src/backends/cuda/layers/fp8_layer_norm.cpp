// kiln.Fp8LayerNorm on CUDA: LayerNormalization writing its float output and the float8 E4M3 copy
// the FP8 GEMMs read, in one pass (layer_norm.cu, rows of <= 1024 values: transformer widths);
// wider rows run the LayerNorm kernel, then the quantization kernel over y.
#include <cmath>

#include "backends/cuda/layers/ew_layer_util.hpp"
#include "backends/cuda/layers/fp8_kernels.hpp"
#include "backends/cuda/layers/norm_kernels.hpp"

namespace kiln::cuda {
namespace {

bool gemm_float(DType t) { return t == DType::kFloat32 || t == DType::kFloat16 || t == DType::kBFloat16; }

struct LnShape {
  DType t = DType::kUndefined;
  int64_t rows = 0, cols = 0;
  float eps = 1e-5f, q_scale = 1.f;
};

std::optional<LnShape> shape_of(const Node& n) {
  if (n.num_inputs() < 3 || !n.has_input(0) || !n.has_input(1) || !n.has_input(2) || !n.has_output(0) ||
      !n.has_output(1))
    return std::nullopt;
  LnShape s;
  s.t = value_dtype(n.inputs[0]);
  if (!gemm_float(s.t) || value_dtype(n.outputs[1]) != DType::kFloat8E4M3FN) return std::nullopt;
  const Value* qs = n.inputs[2];
  if (!qs->constant || qs->constant->numel() != 1 || !is_floating(qs->constant->dtype())) return std::nullopt;
  const double q = qs->constant->scalar_as_double();
  if (!(q > 0) || !std::isfinite(q)) return std::nullopt;
  s.q_scale = static_cast<float>(q);
  auto x = static_dims(n.inputs[0]);
  if (!x || x->empty()) return std::nullopt;
  const int64_t rank = static_cast<int64_t>(x->size());
  int64_t axis = n.attrs.i("axis", -1);
  if (axis < -rank || axis >= rank) return std::nullopt;
  if (axis < 0) axis += rank;
  s.rows = 1;
  s.cols = 1;
  for (int64_t i = 0; i < rank; ++i) (i < axis ? s.rows : s.cols) *= (*x)[static_cast<size_t>(i)];
  // Scale and B: the normalized values, indexed by column.
  for (size_t i : {size_t{1}, size_t{3}}) {
    if (!n.has_input(i)) continue;
    auto p = static_dims(n.inputs[i]);
    if (value_dtype(n.inputs[i]) != s.t || !p || dims_numel(*p) != s.cols) return std::nullopt;
  }
  s.eps = n.attrs.f("epsilon", 1e-5f);
  return s;
}

class Fp8LayerNormLayer : public CudaLayer {
 public:
  explicit Fp8LayerNormLayer(LnShape s) : s_(s) {}
  Status enqueue(const LaunchArgs& a) const override {
    const void* bias = a.inputs.size() > 3 ? a.inputs[3].data : nullptr;
    void *y = a.outputs[0].data, *yq = a.outputs[1].data;
    if (layer_norm_e4m3_supported(s_.t, s_.cols)) {
      KILN_CUDA_CHECK(launch_layer_norm_e4m3(s_.t, a.inputs[0].data, a.inputs[1].data, bias, y, yq, 1.f / s_.q_scale,
                                             s_.rows, s_.cols, s_.eps, a.stream));
      return Status::Ok();
    }
    KILN_CUDA_CHECK(launch_layer_norm(s_.t, a.inputs[0].data, a.inputs[1].data, bias, y, nullptr, nullptr, s_.rows,
                                      s_.cols, s_.eps, a.stream));
    KILN_CUDA_CHECK(kernels::quantize_e4m3(s_.t, y, yq, s_.q_scale, s_.rows * s_.cols, a.stream));
    return Status::Ok();
  }

 private:
  LnShape s_;
};

bool supports(const Node& n) { return shape_of(n).has_value(); }

Expected<std::unique_ptr<CudaLayer>> create(const Node& n, const LayerChoice&) {
  auto s = shape_of(n);
  if (!s) return unsupported("{}: not supported on CUDA", n.describe());
  return std::unique_ptr<CudaLayer>(std::make_unique<Fp8LayerNormLayer>(*s));
}

}  // namespace
}  // namespace kiln::cuda

KILN_REGISTER_CUDA_LAYER("kiln.Fp8LayerNorm",
                         kiln::cuda::simple_factory(kiln::cuda::supports, kiln::cuda::create));
