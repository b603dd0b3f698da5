// Activation ops (Relu ... Shrink, Clip). Same formulas as the CPU reference, in float for
// float16/bfloat16; exp-based ones written so large |x| neither overflows nor loses the result.
#include <limits>

#include "backends/cuda/layers/ew_device.cuh"

namespace kiln::cuda::ew {
namespace {

__device__ __forceinline__ float sigmoid(float x) {
  if (x >= 0.f) return 1.f / (1.f + expf(-x));
  const float e = expf(x);
  return e / (1.f + e);
}
__device__ __forceinline__ float softplus(float x) { return x > 0.f ? x + log1pf(expf(-x)) : log1pf(expf(x)); }
// NaN stays NaN (fminf/fmaxf would turn it into a bound), as on the CPU reference.
__device__ __forceinline__ float clamp01(float x) { return x != x ? x : fmaxf(0.f, fminf(1.f, x)); }

// A float-only functor with parameters a, b, c (from UnaryParams alpha, beta, gamma).
#define KILN_ACT_FN(Name, expr)                                         \
  struct Name {                                                         \
    static constexpr unsigned kTypes = kFloats;                         \
    float a, b, c;                                                      \
    __device__ float operator()(float x) const { return (expr); }       \
  };
KILN_ACT_FN(LeakyRelu, x < 0.f ? a * x : x)
KILN_ACT_FN(Sigmoid, sigmoid(x))
KILN_ACT_FN(HardSigmoid, clamp01(a * x + b))
KILN_ACT_FN(HardSwish, x * clamp01(x / 6.f + 0.5f))
KILN_ACT_FN(Tanh, tanhf(x))
KILN_ACT_FN(Elu, x < 0.f ? a * expm1f(x) : x)
KILN_ACT_FN(Selu, x <= 0.f ? c * a * expm1f(x) : c * x)
KILN_ACT_FN(Celu, fmaxf(0.f, x) + fminf(0.f, a * expm1f(x / a)))
KILN_ACT_FN(Softplus, softplus(x))
KILN_ACT_FN(Softsign, x / (1.f + fabsf(x)))
KILN_ACT_FN(ThresholdedRelu, x > a ? x : 0.f)
KILN_ACT_FN(Mish, x * tanhf(softplus(x)))
KILN_ACT_FN(Gelu, 0.5f * x * (1.f + erff(x * 0.7071067811865476f)))
KILN_ACT_FN(GeluTanh, 0.5f * x * (1.f + tanhf(0.7978845608028654f * (x + 0.044715f * x * x * x))))
KILN_ACT_FN(Shrink, x < -a ? x + b : (x > a ? x - b : 0.f))  // a = lambd, b = bias
#undef KILN_ACT_FN

// Relu keeps NaN (a comparison, not fmaxf).
struct Relu {
  static constexpr unsigned kTypes = kFloats | kInts | kI8;
  float a, b, c;
  template <typename C>
  __device__ C operator()(C x) const {
    return x < C(0) ? C(0) : x;
  }
};

// Clip in the compute type; comparisons keep NaN; lo > hi gives hi everywhere, as the spec says.
template <typename C>
struct Clip {
  C lo, hi;
  __device__ C operator()(C v) const {
    v = v < lo ? lo : v;
    return v > hi ? hi : v;
  }
};
constexpr unsigned kClipTypes = kFloats | kInts | kI8 | kU8;

template <typename Fn>
bool with_op(const UnaryParams& p, Fn&& fn) {
  const float a = p.alpha, b = p.beta, c = p.gamma;
  switch (p.op) {
    case UnaryOp::kRelu: fn(Relu{a, b, c}); return true;
    case UnaryOp::kLeakyRelu: fn(LeakyRelu{a, b, c}); return true;
    case UnaryOp::kSigmoid: fn(Sigmoid{a, b, c}); return true;
    case UnaryOp::kHardSigmoid: fn(HardSigmoid{a, b, c}); return true;
    case UnaryOp::kHardSwish: fn(HardSwish{a, b, c}); return true;
    case UnaryOp::kTanh: fn(Tanh{a, b, c}); return true;
    case UnaryOp::kElu: fn(Elu{a, b, c}); return true;
    case UnaryOp::kSelu: fn(Selu{a, b, c}); return true;
    case UnaryOp::kCelu: fn(Celu{a, b, c}); return true;
    case UnaryOp::kSoftplus: fn(Softplus{a, b, c}); return true;
    case UnaryOp::kSoftsign: fn(Softsign{a, b, c}); return true;
    case UnaryOp::kThresholdedRelu: fn(ThresholdedRelu{a, b, c}); return true;
    case UnaryOp::kMish: fn(Mish{a, b, c}); return true;
    case UnaryOp::kGelu: fn(Gelu{a, b, c}); return true;
    case UnaryOp::kGeluTanh: fn(GeluTanh{a, b, c}); return true;
    case UnaryOp::kShrink: fn(Shrink{a, b, c}); return true;
    default: return false;
  }
}

template <typename T>
cudaError_t launch_clip(const UnaryParams& p, const void* x, void* y, int64_t n, cudaStream_t stream) {
  using C = compute_t<T>;
  Clip<C> op;
  if constexpr (std::is_integral_v<C>) {
    op.lo = p.has_lo ? static_cast<C>(p.ilo) : std::numeric_limits<C>::lowest();
    op.hi = p.has_hi ? static_cast<C>(p.ihi) : std::numeric_limits<C>::max();
  } else {
    // As the CPU reference: an absent bound is the type's finite limit.
    op.lo = p.has_lo ? static_cast<C>(p.lo) : std::numeric_limits<C>::lowest();
    op.hi = p.has_hi ? static_cast<C>(p.hi) : std::numeric_limits<C>::max();
  }
  return launch_map<T, T>(x, y, n, op, stream);
}

}  // namespace
}  // namespace kiln::cuda::ew

namespace kiln::cuda {

bool activation_supported(UnaryOp op, DType in, DType out) {
  if (out != in) return false;
  if (op == UnaryOp::kClip) return ew::dispatch<ew::kClipTypes>(in, [](auto) {});
  UnaryParams p;
  p.op = op;
  bool ok = false;
  ew::with_op(p, [&](auto f) { ok = ew::dispatch<decltype(f)::kTypes>(in, [](auto) {}); });
  return ok;
}

cudaError_t launch_activation(const UnaryParams& p, DType in, DType out, const void* x, void* y, int64_t n,
                              cudaStream_t stream) {
  if (!activation_supported(p.op, in, out)) return cudaErrorNotSupported;
  cudaError_t err = cudaSuccess;
  if (p.op == UnaryOp::kClip) {
    ew::dispatch<ew::kClipTypes>(in, [&](auto tag) {
      err = ew::launch_clip<typename decltype(tag)::type>(p, x, y, n, stream);
    });
    return err;
  }
  ew::with_op(p, [&](auto f) {
    ew::dispatch<decltype(f)::kTypes>(in, [&](auto tag) {
      using T = typename decltype(tag)::type;
      err = ew::launch_map<T, T>(x, y, n, f, stream);
    });
  });
  return err;
}

}  // namespace kiln::cuda
