// CPU kernels of the unary math ops. Float math runs in the compute type (float for
// Half/BFloat16, double for float64); integer variants follow the ONNX type constraints.
#include <cmath>

#include "backends/cpu/elementwise.hpp"

namespace kiln::cpu {
namespace {

template <typename C>
C abs_of(C x) {
  if constexpr (std::is_unsigned_v<C> || std::is_same_v<C, bool>) return x;
  else if constexpr (std::is_integral_v<C>) return x < 0 ? wrap_neg(x) : x;
  else return std::abs(x);
}

template <typename C>
C neg_of(C x) {
  if constexpr (std::is_integral_v<C>) return wrap_neg(x);
  else return -x;
}

// -1, 0 or 1; NaN stays NaN.
template <typename C>
C sign_of(C x) {
  if constexpr (std::is_unsigned_v<C>) return x > 0 ? C(1) : C(0);
  else return x > 0 ? C(1) : (x < 0 ? C(-1) : x);
}

// Erf of an integer input is computed in double and truncated back (as the ONNX reference does).
template <typename C>
auto erf_of(C x) {
  if constexpr (std::is_integral_v<C>) return std::erf(static_cast<double>(x));
  else return std::erf(x);
}

Status is_inf_kernel(KernelContext& ctx) {
  const bool neg = ctx.attrs().i("detect_negative", 1) != 0;
  const bool pos = ctx.attrs().i("detect_positive", 1) != 0;
  return unary_kernel<kFloatTypes, bool>(ctx, [neg, pos](auto x) {
    return std::isinf(x) && (x > 0 ? pos : neg);
  });
}

}  // namespace
}  // namespace kiln::cpu

// Float-only ops get a lambda over the compute type; nearbyint rounds half to even in the default
// rounding mode, as Round requires.
#define KILN_UNARY_KERNEL(op, set, expr)                                                   \
  namespace kiln::cpu {                                                                     \
  namespace {                                                                               \
  Status op##_kernel(KernelContext& ctx) {                                                  \
    return unary_kernel<set>(ctx, [](auto x) { return static_cast<decltype(x)>(expr); });  \
  }                                                                                         \
  }                                                                                         \
  }                                                                                         \
  KILN_REGISTER_CPU_KERNEL(#op, kiln::cpu::op##_kernel)

KILN_UNARY_KERNEL(Abs, kNumericTypes, abs_of(x))
KILN_UNARY_KERNEL(Neg, kSignedTypes, neg_of(x))
KILN_UNARY_KERNEL(Sign, kNumericTypes, sign_of(x))
KILN_UNARY_KERNEL(Exp, kFloatTypes, std::exp(x))
KILN_UNARY_KERNEL(Log, kFloatTypes, std::log(x))
KILN_UNARY_KERNEL(Sqrt, kFloatTypes, std::sqrt(x))
KILN_UNARY_KERNEL(Reciprocal, kFloatTypes, decltype(x)(1) / x)
KILN_UNARY_KERNEL(Floor, kFloatTypes, std::floor(x))
KILN_UNARY_KERNEL(Ceil, kFloatTypes, std::ceil(x))
KILN_UNARY_KERNEL(Round, kFloatTypes, std::nearbyint(x))
KILN_UNARY_KERNEL(Sin, kFloatTypes, std::sin(x))
KILN_UNARY_KERNEL(Cos, kFloatTypes, std::cos(x))
KILN_UNARY_KERNEL(Tan, kFloatTypes, std::tan(x))
KILN_UNARY_KERNEL(Asin, kFloatTypes, std::asin(x))
KILN_UNARY_KERNEL(Acos, kFloatTypes, std::acos(x))
KILN_UNARY_KERNEL(Atan, kFloatTypes, std::atan(x))
KILN_UNARY_KERNEL(Sinh, kFloatTypes, std::sinh(x))
KILN_UNARY_KERNEL(Cosh, kFloatTypes, std::cosh(x))
KILN_UNARY_KERNEL(Asinh, kFloatTypes, std::asinh(x))
KILN_UNARY_KERNEL(Acosh, kFloatTypes, std::acosh(x))
KILN_UNARY_KERNEL(Atanh, kFloatTypes, std::atanh(x))
#undef KILN_UNARY_KERNEL

namespace kiln::cpu {
namespace {
Status erf_kernel(KernelContext& ctx) {
  // Not cast back to the input type inside: store() truncates the double result for integers.
  return unary_kernel<kNumericTypes>(ctx, [](auto x) { return erf_of(x); });
}
Status is_nan_kernel(KernelContext& ctx) {
  return unary_kernel<kFloatTypes, bool>(ctx, [](auto x) { return static_cast<bool>(std::isnan(x)); });
}
}  // namespace
}  // namespace kiln::cpu

KILN_REGISTER_CPU_KERNEL("Erf", kiln::cpu::erf_kernel);
KILN_REGISTER_CPU_KERNEL("IsNaN", kiln::cpu::is_nan_kernel);
KILN_REGISTER_CPU_KERNEL("IsInf", kiln::cpu::is_inf_kernel);
