// CUDA layers of the one-input elementwise ops: unary math, activations, Clip, Cast/CastLike.
// The kernels are in unary_math.cu, activation.cu and cast.cu.
#include <utility>

#include "backends/cuda/layers/ew_kernels.hpp"
#include "backends/cuda/layers/ew_layer_util.hpp"

namespace kiln::cuda {
namespace {

class UnaryLayer : public CudaLayer {
 public:
  UnaryLayer(UnaryParams p, DType in, DType out) : p_(p), in_(in), out_(out) {}
  Status enqueue(const LaunchArgs& a) const override {
    const DeviceTensor& x = a.inputs[0];
    const DeviceTensor& y = a.outputs[0];
    if (is_activation(p_.op))
      KILN_CUDA_CHECK(launch_activation(p_, in_, out_, x.data, y.data, y.numel(), a.stream));
    else
      KILN_CUDA_CHECK(launch_unary_math(p_, in_, out_, x.data, y.data, y.numel(), a.stream));
    return Status::Ok();
  }

 private:
  UnaryParams p_;
  DType in_, out_;
};

// Clip's min/max: absent, or a constant scalar of the input's dtype (bounds known at build time).
bool clip_bound(const Node& n, size_t i, bool& has, double& f, int64_t& v) {
  has = n.has_input(i);
  if (!has) return true;
  const Value* b = n.inputs[i];
  if (!b->constant || b->constant->numel() != 1 || b->type.dtype != n.inputs[0]->type.dtype) return false;
  f = b->constant->scalar_as_double();
  if (is_integer(b->type.dtype)) {
    auto ints = b->constant->to_int64_vector();
    if (!ints.ok() || ints->size() != 1) return false;
    v = (*ints)[0];
  }
  return true;
}

// The node's parameters; false when an attribute value is not one the kernels implement.
bool unary_params(const Node& n, UnaryOp op, UnaryParams& p) {
  const Attributes& at = n.attrs;
  p.op = op;
  switch (op) {
    case UnaryOp::kLeakyRelu: p.alpha = at.f("alpha", 0.01f); break;
    case UnaryOp::kHardSigmoid: p.alpha = at.f("alpha", 0.2f); p.beta = at.f("beta", 0.5f); break;
    case UnaryOp::kElu: p.alpha = at.f("alpha", 1.f); break;
    case UnaryOp::kSelu:
      p.alpha = at.f("alpha", 1.67326319217681884765625f);
      p.gamma = at.f("gamma", 1.05070102214813232421875f);
      break;
    case UnaryOp::kCelu:
      p.alpha = at.f("alpha", 1.f);
      if (p.alpha == 0.f) return false;
      break;
    case UnaryOp::kThresholdedRelu: p.alpha = at.f("alpha", 1.f); break;
    case UnaryOp::kShrink: p.alpha = at.f("lambd", 0.5f); p.beta = at.f("bias", 0.f); break;
    case UnaryOp::kGelu: {
      const std::string approx = at.s("approximate", "none");
      if (approx == "tanh") p.op = UnaryOp::kGeluTanh;
      else if (approx != "none") return false;
      break;
    }
    case UnaryOp::kIsInf: {
      const int64_t neg = at.i("detect_negative", 1), pos = at.i("detect_positive", 1);
      if ((neg != 0 && neg != 1) || (pos != 0 && pos != 1)) return false;
      p.flag_a = neg != 0;
      p.flag_b = pos != 0;
      break;
    }
    case UnaryOp::kClip:
      return clip_bound(n, 1, p.has_lo, p.lo, p.ilo) && clip_bound(n, 2, p.has_hi, p.hi, p.ihi);
    default: break;
  }
  return true;
}

CudaLayerFactory unary_factory(UnaryOp op) {
  return simple_factory(
      [op](const Node& n) {
        UnaryParams p;
        if (!n.has_input(0) || !n.has_output(0) || !unary_params(n, op, p)) return false;
        const DType in = value_dtype(n.inputs[0]), out = value_dtype(n.outputs[0]);
        return is_activation(p.op) ? activation_supported(p.op, in, out) : unary_math_supported(p.op, in, out);
      },
      [op](const Node& n, const LayerChoice&) -> Expected<std::unique_ptr<CudaLayer>> {
        UnaryParams p;
        if (!unary_params(n, op, p)) return unsupported("{}: attribute values not supported on CUDA", n.describe());
        return std::unique_ptr<CudaLayer>(
            std::make_unique<UnaryLayer>(p, value_dtype(n.inputs[0]), value_dtype(n.outputs[0])));
      });
}

class CastLayer : public CudaLayer {
 public:
  CastLayer(DType from, DType to) : from_(from), to_(to) {}
  Status enqueue(const LaunchArgs& a) const override {
    KILN_CUDA_CHECK(launch_cast(from_, to_, a.inputs[0].data, a.outputs[0].data, a.outputs[0].numel(), a.stream));
    return Status::Ok();
  }

 private:
  DType from_, to_;
};

CudaLayerFactory cast_factory() {
  return simple_factory(
      [](const Node& n) {
        return n.has_input(0) && n.has_output(0) &&
               cast_supported(value_dtype(n.inputs[0]), value_dtype(n.outputs[0]));
      },
      [](const Node& n, const LayerChoice&) -> Expected<std::unique_ptr<CudaLayer>> {
        return std::unique_ptr<CudaLayer>(
            std::make_unique<CastLayer>(value_dtype(n.inputs[0]), value_dtype(n.outputs[0])));
      });
}

const std::pair<const char*, UnaryOp> kUnaryOps[] = {
    {"Abs", UnaryOp::kAbs},         {"Neg", UnaryOp::kNeg},
    {"Sign", UnaryOp::kSign},       {"Exp", UnaryOp::kExp},
    {"Log", UnaryOp::kLog},         {"Sqrt", UnaryOp::kSqrt},
    {"Reciprocal", UnaryOp::kReciprocal}, {"Floor", UnaryOp::kFloor},
    {"Ceil", UnaryOp::kCeil},       {"Round", UnaryOp::kRound},
    {"Sin", UnaryOp::kSin},         {"Cos", UnaryOp::kCos},
    {"Tan", UnaryOp::kTan},         {"Asin", UnaryOp::kAsin},
    {"Acos", UnaryOp::kAcos},       {"Atan", UnaryOp::kAtan},
    {"Sinh", UnaryOp::kSinh},       {"Cosh", UnaryOp::kCosh},
    {"Asinh", UnaryOp::kAsinh},     {"Acosh", UnaryOp::kAcosh},
    {"Atanh", UnaryOp::kAtanh},     {"Erf", UnaryOp::kErf},
    {"IsNaN", UnaryOp::kIsNaN},     {"IsInf", UnaryOp::kIsInf},
    {"Not", UnaryOp::kNot},         {"Relu", UnaryOp::kRelu},
    {"LeakyRelu", UnaryOp::kLeakyRelu}, {"Sigmoid", UnaryOp::kSigmoid},
    {"HardSigmoid", UnaryOp::kHardSigmoid}, {"HardSwish", UnaryOp::kHardSwish},
    {"Tanh", UnaryOp::kTanh},       {"Elu", UnaryOp::kElu},
    {"Selu", UnaryOp::kSelu},       {"Celu", UnaryOp::kCelu},
    {"Softplus", UnaryOp::kSoftplus}, {"Softsign", UnaryOp::kSoftsign},
    {"ThresholdedRelu", UnaryOp::kThresholdedRelu}, {"Mish", UnaryOp::kMish},
    {"Gelu", UnaryOp::kGelu},       {"Shrink", UnaryOp::kShrink},
    {"Clip", UnaryOp::kClip},
};

[[maybe_unused]] const bool kRegistered = [] {
  for (const auto& [name, op] : kUnaryOps) register_cuda_layer(name, unary_factory(op));
  register_cuda_layer("Cast", cast_factory());
  register_cuda_layer("CastLike", cast_factory());
  return true;
}();

}  // namespace
}  // namespace kiln::cuda
