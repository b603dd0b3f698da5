// The direct narrow-output 1x1 NHWC convolution as a kiln.FusedConv tactic (narrow_conv.hpp).
#include "backends/cuda/layers/narrow_conv.hpp"

#include "backends/cuda/layers/narrow_conv_kernels.hpp"
#include "backends/cuda/layers/nn_util.hpp"

namespace kiln::cuda {
namespace {

struct Shape {
  int64_t pixels = 0;
  int c = 0, m = 0;
};

std::optional<Shape> shape_of(const Node& n) {
  auto dims = direct_nhwc_conv_dims(n);
  if (!dims) return std::nullopt;
  const Dims &x = dims->x, &w = dims->w, &y = dims->y;
  const DType t = n.outputs[0]->type.dtype;
  const int64_t c = x[3], m = w[0];
  const int64_t vec = 16 / static_cast<int64_t>(dtype_size(t));
  if (w[1] != 1 || w[2] != 1 || w[3] != c || y != Dims{x[0], x[1], x[2], m}) return std::nullopt;
  if (m < 1 || m > kernels::kNarrowMaxOutputs || c % vec != 0 || c > kernels::kNarrowMaxInputs) return std::nullopt;
  if (!dims_all_equal(n.attrs.ints("strides"), 1) || !dims_all_equal(n.attrs.ints("pads"), 0) ||
      !dims_all_equal(n.attrs.ints("dilations"), 1))
    return std::nullopt;
  const std::string pad = n.attrs.s("auto_pad", "NOTSET");
  if (pad != "NOTSET" && pad != "VALID") return std::nullopt;
  return Shape{x[0] * x[1] * x[2], static_cast<int>(c), static_cast<int>(m)};
}

class NarrowConvLayer : public CudaLayer {
 public:
  NarrowConvLayer(Shape s, DType t, bool relu) : s_(s), dtype_(t), relu_(relu) {}
  Status enqueue(const LaunchArgs& a) const override {
    const void* b = a.inputs.size() > 2 ? a.inputs[2].data : nullptr;
    const void* z = a.inputs.size() > 3 ? a.inputs[3].data : nullptr;
    KILN_CUDA_CHECK(kernels::narrow_conv(dtype_, a.inputs[0].data, a.inputs[1].data, b, z, a.outputs[0].data, s_.pixels,
                                         s_.c, s_.m, relu_, a.stream));
    return Status::Ok();
  }

 private:
  Shape s_;
  DType dtype_;
  bool relu_;
};

}  // namespace

bool narrow_conv_fits(const Node& n) { return shape_of(n).has_value(); }

Expected<std::unique_ptr<CudaLayer>> narrow_conv_create(const Node& n) {
  auto s = shape_of(n);
  if (!s)
    return invalid_model("{}: tactic '{}' needs an NHWC 1x1 convolution with <= {} outputs", n.describe(),
                         kNarrowConvTactic, kernels::kNarrowMaxOutputs);
  return std::unique_ptr<CudaLayer>(
      std::make_unique<NarrowConvLayer>(*s, n.outputs[0]->type.dtype, n.attrs.s("activation", "") == "Relu"));
}

}  // namespace kiln::cuda
