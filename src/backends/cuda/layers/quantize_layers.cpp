// QuantizeLinear and DequantizeLinear on CUDA: per tensor or per axis (no blocks), int8/uint8,
// float32/float16/bfloat16 data and scales. What the qdq-fusion pass leaves (model inputs,
// unfused layers) runs here as simulated quantization, exactly like the CPU reference.
#include "backends/cuda/cuda_layer.hpp"
#include "backends/cuda/layers/nn_util.hpp"
#include "backends/cuda/layers/qdq_kernels.hpp"

namespace kiln::cuda {
namespace {

bool is_q8(DType t) { return t == DType::kInt8 || t == DType::kUInt8; }

// (axis_len, inner) of the parameter layout: axis_len 1 for one scale.
struct ParamLayout {
  int64_t axis_len = 1, inner = 1;
};

std::optional<ParamLayout> param_layout(const Node& n) {
  auto x = static_dims(n.inputs[0]);
  auto s = static_dims(n.inputs[1]);
  if (!x || !s || n.attrs.i("block_size", 0) != 0) return std::nullopt;
  ParamLayout l;
  if (dims_numel(*s) == 1 && s->size() <= 1) return l;
  if (s->size() != 1) return std::nullopt;
  int64_t axis = n.attrs.i("axis", 1);
  const int64_t rank = static_cast<int64_t>(x->size());
  if (axis < 0) axis += rank;
  if (axis < 0 || axis >= rank || (*x)[static_cast<size_t>(axis)] != (*s)[0]) return std::nullopt;
  l.axis_len = (*s)[0];
  for (size_t i = static_cast<size_t>(axis) + 1; i < x->size(); ++i) l.inner *= (*x)[i];
  return l;
}

bool supports(const Node& n) {
  if (!n.has_input(0) || !n.has_input(1) || !n.has_output(0) || !all_static(n)) return false;
  const DType x = n.inputs[0]->type.dtype, s = n.inputs[1]->type.dtype, y = n.outputs[0]->type.dtype;
  if (!is_gpu_float(s)) return false;
  if (n.op_type == "QuantizeLinear") {
    if (!is_gpu_float(x) || !is_q8(y)) return false;
    if (n.has_input(2) && n.inputs[2]->type.dtype != y) return false;
  } else {
    if (!is_q8(x) || y != s) return false;
    if (n.has_input(2) && n.inputs[2]->type.dtype != x) return false;
  }
  if (n.has_input(2) && static_dims(n.inputs[2]) != static_dims(n.inputs[1])) return false;
  return param_layout(n).has_value();
}

class QdqLayer : public CudaLayer {
 public:
  QdqLayer(bool quantize, ParamLayout l) : quantize_(quantize), l_(l) {}
  Status enqueue(const LaunchArgs& a) const override {
    const DeviceTensor &x = a.inputs[0], &s = a.inputs[1], &y = a.outputs[0];
    const void* zp = a.inputs.size() > 2 ? a.inputs[2].data : nullptr;
    if (quantize_)
      KILN_CUDA_CHECK(kernels::quantize_linear(x.dtype, x.data, s.dtype, s.data, y.dtype, zp, y.data, y.numel(),
                                               l_.axis_len, l_.inner, a.stream));
    else
      KILN_CUDA_CHECK(kernels::dequantize_linear(x.dtype, x.data, s.dtype, s.data, zp, y.data, y.numel(), l_.axis_len,
                                                 l_.inner, a.stream));
    return Status::Ok();
  }

 private:
  bool quantize_;
  ParamLayout l_;
};

CudaLayerFactory factory() {
  return CudaLayerFactory{
      .supports = supports,
      .tactics = nullptr,
      .create = [](const Node& n, const LayerChoice&) -> Expected<std::unique_ptr<CudaLayer>> {
        auto l = param_layout(n);
        if (!l) return unsupported("{}: this quantization layout does not run on CUDA", n.describe());
        return std::unique_ptr<CudaLayer>(std::make_unique<QdqLayer>(n.op_type == "QuantizeLinear", *l));
      }};
}

}  // namespace
}  // namespace kiln::cuda

KILN_REGISTER_CUDA_LAYER("QuantizeLinear", kiln::cuda::factory());
KILN_REGISTER_CUDA_LAYER("DequantizeLinear", kiln::cuda::factory());
