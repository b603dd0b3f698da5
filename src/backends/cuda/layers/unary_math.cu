// Unary math ops (Abs ... Erf), IsNaN/IsInf (bool out) and Not. Float math runs in float for
// float16/bfloat16 (as the CPU reference does); Abs/Neg/Sign also take integers (wrapping).
#include "backends/cuda/layers/ew_device.cuh"

namespace kiln::cuda::ew {
namespace {

// A float-only functor computing `expr` of float x.
#define KILN_FLOAT_FN(Name, expr)                                       \
  struct Name {                                                         \
    static constexpr unsigned kTypes = kFloats;                         \
    static constexpr bool kBoolOut = false;                             \
    __device__ float operator()(float x) const { return (expr); }       \
  };
KILN_FLOAT_FN(Exp, expf(x))
KILN_FLOAT_FN(Log, logf(x))
KILN_FLOAT_FN(Sqrt, sqrtf(x))
KILN_FLOAT_FN(Reciprocal, 1.f / x)
KILN_FLOAT_FN(Floor, floorf(x))
KILN_FLOAT_FN(Ceil, ceilf(x))
KILN_FLOAT_FN(Round, rintf(x))  // half to even, as ONNX Round
KILN_FLOAT_FN(Sin, sinf(x))
KILN_FLOAT_FN(Cos, cosf(x))
KILN_FLOAT_FN(Tan, tanf(x))
KILN_FLOAT_FN(Asin, asinf(x))
KILN_FLOAT_FN(Acos, acosf(x))
KILN_FLOAT_FN(Atan, atanf(x))
KILN_FLOAT_FN(Sinh, sinhf(x))
KILN_FLOAT_FN(Cosh, coshf(x))
KILN_FLOAT_FN(Asinh, asinhf(x))
KILN_FLOAT_FN(Acosh, acoshf(x))
KILN_FLOAT_FN(Atanh, atanhf(x))
KILN_FLOAT_FN(Erf, erff(x))
#undef KILN_FLOAT_FN

struct Abs {
  static constexpr unsigned kTypes = kFloats | kInts | kI8;
  static constexpr bool kBoolOut = false;
  template <typename C>
  __device__ C operator()(C x) const {
    if constexpr (std::is_integral_v<C>) return x < 0 ? wrap_sub(C(0), x) : x;
    else return fabsf(x);
  }
};

struct Neg {
  static constexpr unsigned kTypes = kFloats | kInts | kI8;
  static constexpr bool kBoolOut = false;
  template <typename C>
  __device__ C operator()(C x) const {
    if constexpr (std::is_integral_v<C>) return wrap_sub(C(0), x);
    else return -x;
  }
};

// -1, 0 or 1; NaN and signed zeros stay.
struct Sign {
  static constexpr unsigned kTypes = kFloats | kInts | kI8;
  static constexpr bool kBoolOut = false;
  template <typename C>
  __device__ C operator()(C x) const {
    return x > C(0) ? C(1) : (x < C(0) ? C(-1) : x);
  }
};

struct IsNaN {
  static constexpr unsigned kTypes = kFloats;
  static constexpr bool kBoolOut = true;
  __device__ bool operator()(float x) const { return isnan(x); }
};

struct IsInf {
  static constexpr unsigned kTypes = kFloats;
  static constexpr bool kBoolOut = true;
  bool neg, pos;
  __device__ bool operator()(float x) const { return isinf(x) && (x > 0.f ? pos : neg); }
};

struct Not {
  static constexpr unsigned kTypes = kBool;
  static constexpr bool kBoolOut = true;
  __device__ bool operator()(bool x) const { return !x; }
};

// Calls fn(functor) for the op; false for ops of other files.
template <typename Fn>
bool with_op(const UnaryParams& p, Fn&& fn) {
  switch (p.op) {
    case UnaryOp::kAbs: fn(Abs{}); return true;
    case UnaryOp::kNeg: fn(Neg{}); return true;
    case UnaryOp::kSign: fn(Sign{}); return true;
    case UnaryOp::kExp: fn(Exp{}); return true;
    case UnaryOp::kLog: fn(Log{}); return true;
    case UnaryOp::kSqrt: fn(Sqrt{}); return true;
    case UnaryOp::kReciprocal: fn(Reciprocal{}); return true;
    case UnaryOp::kFloor: fn(Floor{}); return true;
    case UnaryOp::kCeil: fn(Ceil{}); return true;
    case UnaryOp::kRound: fn(Round{}); return true;
    case UnaryOp::kSin: fn(Sin{}); return true;
    case UnaryOp::kCos: fn(Cos{}); return true;
    case UnaryOp::kTan: fn(Tan{}); return true;
    case UnaryOp::kAsin: fn(Asin{}); return true;
    case UnaryOp::kAcos: fn(Acos{}); return true;
    case UnaryOp::kAtan: fn(Atan{}); return true;
    case UnaryOp::kSinh: fn(Sinh{}); return true;
    case UnaryOp::kCosh: fn(Cosh{}); return true;
    case UnaryOp::kAsinh: fn(Asinh{}); return true;
    case UnaryOp::kAcosh: fn(Acosh{}); return true;
    case UnaryOp::kAtanh: fn(Atanh{}); return true;
    case UnaryOp::kErf: fn(Erf{}); return true;
    case UnaryOp::kIsNaN: fn(IsNaN{}); return true;
    case UnaryOp::kIsInf: fn(IsInf{p.flag_a, p.flag_b}); return true;
    case UnaryOp::kNot: fn(Not{}); return true;
    default: return false;
  }
}

}  // namespace
}  // namespace kiln::cuda::ew

namespace kiln::cuda {

bool unary_math_supported(UnaryOp op, DType in, DType out) {
  UnaryParams p;
  p.op = op;
  bool ok = false;
  ew::with_op(p, [&](auto f) {
    using F = decltype(f);
    ok = ew::dispatch<F::kTypes>(in, [](auto) {}) && out == (F::kBoolOut ? DType::kBool : in);
  });
  return ok;
}

cudaError_t launch_unary_math(const UnaryParams& p, DType in, DType out, const void* x, void* y, int64_t n,
                              cudaStream_t stream) {
  if (!unary_math_supported(p.op, in, out)) return cudaErrorNotSupported;
  cudaError_t err = cudaSuccess;
  ew::with_op(p, [&](auto f) {
    using F = decltype(f);
    ew::dispatch<F::kTypes>(in, [&](auto tag) {
      using T = typename decltype(tag)::type;
      using O = std::conditional_t<F::kBoolOut, bool, T>;
      err = ew::launch_map<T, O>(x, y, n, f, stream);
    });
  });
  return err;
}

}  // namespace kiln::cuda
