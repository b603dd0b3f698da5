// CUDA layers of Softmax/LogSoftmax/Hardmax and LayerNormalization (kernels in softmax.cu and
// layer_norm.cu).
#include "backends/cuda/layers/ew_layer_util.hpp"
#include "backends/cuda/layers/norm_kernels.hpp"

namespace kiln::cuda {
namespace {

struct Span {
  int64_t outer = 1, len = 1, inner = 1;
};

// (outer, len, inner) around `axis` (may be negative); false when out of range.
bool split_at_axis(const Dims& d, int64_t axis, Span& s) {
  const int64_t rank = static_cast<int64_t>(d.size());
  if (rank == 0) return axis == 0 || axis == -1;  // a scalar is one line of one element
  if (axis < -rank || axis >= rank) return false;
  if (axis < 0) axis += rank;
  s = Span{};
  for (int64_t i = 0; i < rank; ++i) (i < axis ? s.outer : i == axis ? s.len : s.inner) *= d[static_cast<size_t>(i)];
  return true;
}

class SoftmaxLayer : public CudaLayer {
 public:
  SoftmaxLayer(SoftmaxKind kind, DType t, Span s) : kind_(kind), t_(t), s_(s) {}
  Status enqueue(const LaunchArgs& a) const override {
    KILN_CUDA_CHECK(launch_softmax(kind_, t_, a.inputs[0].data, a.outputs[0].data, s_.outer, s_.len, s_.inner,
                                   a.stream));
    return Status::Ok();
  }

 private:
  SoftmaxKind kind_;
  DType t_;
  Span s_;
};

bool softmax_span(const Node& n, Span& s) {
  if (!n.has_input(0) || !n.has_output(0) || !softmax_supported(value_dtype(n.inputs[0]))) return false;
  auto d = static_dims(n.inputs[0]);
  return d && split_at_axis(*d, n.attrs.i("axis", -1), s);
}

CudaLayerFactory softmax_factory(SoftmaxKind kind) {
  return simple_factory([](const Node& n) { Span s; return softmax_span(n, s); },
                        [kind](const Node& n, const LayerChoice&) -> Expected<std::unique_ptr<CudaLayer>> {
                          Span s;
                          if (!softmax_span(n, s)) return unsupported("{}: not supported on CUDA", n.describe());
                          return std::unique_ptr<CudaLayer>(
                              std::make_unique<SoftmaxLayer>(kind, value_dtype(n.inputs[0]), s));
                        });
}

class LayerNormLayer : public CudaLayer {
 public:
  LayerNormLayer(DType t, int64_t rows, int64_t cols, float eps) : t_(t), rows_(rows), cols_(cols), eps_(eps) {}
  Status enqueue(const LaunchArgs& a) const override {
    const void* bias = a.inputs.size() > 2 ? a.inputs[2].data : nullptr;
    auto stat = [&](size_t i) { return a.outputs.size() > i ? static_cast<float*>(a.outputs[i].data) : nullptr; };
    KILN_CUDA_CHECK(launch_layer_norm(t_, a.inputs[0].data, a.inputs[1].data, bias, a.outputs[0].data, stat(1),
                                      stat(2), rows_, cols_, eps_, a.stream));
    return Status::Ok();
  }

 private:
  DType t_;
  int64_t rows_, cols_;
  float eps_;
};

// Scale and B must hold exactly the normalized dims' values (leading 1s aside): the kernel
// indexes them by column.
bool per_column(const Dims& p, const Dims& x, size_t axis) {
  Dims q = p;
  while (q.size() > x.size() - axis && q.front() == 1) q.erase(q.begin());
  if (q.size() > x.size() - axis) return false;
  int64_t cols = 1;
  for (size_t i = axis; i < x.size(); ++i) cols *= x[i];
  for (size_t i = 0; i < q.size(); ++i)
    if (q[q.size() - 1 - i] != x[x.size() - 1 - i]) return false;
  return dims_numel(q) == cols;
}

bool layer_norm_shape(const Node& n, int64_t& rows, int64_t& cols) {
  const DType t = value_dtype(n.has_input(0) ? n.inputs[0] : nullptr);
  if (!n.has_input(1) || !n.has_output(0) || !layer_norm_supported(t)) return false;
  auto x = static_dims(n.inputs[0]);
  if (!x || x->empty()) return false;
  const int64_t rank = static_cast<int64_t>(x->size());
  int64_t axis = n.attrs.i("axis", -1);
  if (axis < -rank || axis >= rank) return false;
  if (axis < 0) axis += rank;
  for (size_t i = 1; i < 3; ++i) {
    if (!n.has_input(i)) continue;
    auto p = static_dims(n.inputs[i]);
    if (value_dtype(n.inputs[i]) != t || !p || !per_column(*p, *x, static_cast<size_t>(axis))) return false;
  }
  // Mean / InvStdDev are written as float32 (stash_type 1).
  for (size_t i = 1; i < n.outputs.size(); ++i)
    if (n.has_output(i) && value_dtype(n.outputs[i]) != DType::kFloat32) return false;
  rows = 1;
  cols = 1;
  for (int64_t i = 0; i < rank; ++i) (i < axis ? rows : cols) *= (*x)[static_cast<size_t>(i)];
  return true;
}

CudaLayerFactory layer_norm_factory() {
  return simple_factory(
      [](const Node& n) {
        int64_t rows, cols;
        return layer_norm_shape(n, rows, cols);
      },
      [](const Node& n, const LayerChoice&) -> Expected<std::unique_ptr<CudaLayer>> {
        int64_t rows, cols;
        if (!layer_norm_shape(n, rows, cols)) return unsupported("{}: not supported on CUDA", n.describe());
        return std::unique_ptr<CudaLayer>(std::make_unique<LayerNormLayer>(
            value_dtype(n.inputs[0]), rows, cols, n.attrs.f("epsilon", 1e-5f)));
      });
}

[[maybe_unused]] const bool kRegistered = [] {
  register_cuda_layer("Softmax", softmax_factory(SoftmaxKind::kSoftmax));
  register_cuda_layer("LogSoftmax", softmax_factory(SoftmaxKind::kLogSoftmax));
  register_cuda_layer("Hardmax", softmax_factory(SoftmaxKind::kHardmax));
  register_cuda_layer("LayerNormalization", layer_norm_factory());
  return true;
}();

}  // namespace
}  // namespace kiln::cuda
