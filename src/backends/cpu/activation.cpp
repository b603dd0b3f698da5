// CPU kernels of the activation ops. Math runs in the compute type C (float for Half/BFloat16);
// float attributes are converted to C once.
#include <cmath>

#include "backends/cpu/elementwise.hpp"

namespace kiln::cpu {
namespace {

// exp-based formulas written so that large |x| neither overflows nor loses the result.
template <typename C>
C sigmoid(C x) {
  if (x >= C(0)) return C(1) / (C(1) + std::exp(-x));
  C e = std::exp(x);
  return e / (C(1) + e);
}
template <typename C>
C softplus(C x) {
  return x > C(0) ? x + std::log1p(std::exp(-x)) : std::log1p(std::exp(x));
}

Status relu_kernel(KernelContext& ctx) {
  return unary_kernel<kSignedTypes>(ctx, [](auto x) { return x < 0 ? decltype(x)(0) : x; });
}

Status leaky_relu_kernel(KernelContext& ctx) {
  const float alpha = ctx.attrs().f("alpha", 0.01f);
  return unary_kernel<kFloatTypes>(ctx, [alpha](auto x) {
    using C = decltype(x);
    return x < C(0) ? C(alpha) * x : x;
  });
}

Status sigmoid_kernel(KernelContext& ctx) {
  return unary_kernel<kFloatTypes>(ctx, [](auto x) { return sigmoid(x); });
}

Status hard_sigmoid_kernel(KernelContext& ctx) {
  const float alpha = ctx.attrs().f("alpha", 0.2f), beta = ctx.attrs().f("beta", 0.5f);
  return unary_kernel<kFloatTypes>(ctx, [alpha, beta](auto x) {
    using C = decltype(x);
    C y = C(alpha) * x + C(beta);
    return y != y ? y : std::max(C(0), std::min(C(1), y));  // NaN propagates
  });
}

Status hard_swish_kernel(KernelContext& ctx) {
  return unary_kernel<kFloatTypes>(ctx, [](auto x) {
    using C = decltype(x);
    return x * std::max(C(0), std::min(C(1), x / C(6) + C(0.5)));
  });
}

Status tanh_kernel(KernelContext& ctx) {
  return unary_kernel<kFloatTypes>(ctx, [](auto x) { return std::tanh(x); });
}

Status elu_kernel(KernelContext& ctx) {
  const float alpha = ctx.attrs().f("alpha", 1.f);
  return unary_kernel<kFloatTypes>(ctx, [alpha](auto x) {
    using C = decltype(x);
    return x < C(0) ? C(alpha) * std::expm1(x) : x;
  });
}

Status selu_kernel(KernelContext& ctx) {
  const float alpha = ctx.attrs().f("alpha", 1.67326319217681884765625f);
  const float gamma = ctx.attrs().f("gamma", 1.05070102214813232421875f);
  return unary_kernel<kFloatTypes>(ctx, [alpha, gamma](auto x) {
    using C = decltype(x);
    return x <= C(0) ? C(gamma) * C(alpha) * std::expm1(x) : C(gamma) * x;
  });
}

Status celu_kernel(KernelContext& ctx) {
  const float alpha = ctx.attrs().f("alpha", 1.f);
  return unary_kernel<kFloatTypes>(ctx, [alpha](auto x) {
    using C = decltype(x);
    return std::max(C(0), x) + std::min(C(0), C(alpha) * std::expm1(x / C(alpha)));
  });
}

Status softplus_kernel(KernelContext& ctx) {
  return unary_kernel<kFloatTypes>(ctx, [](auto x) { return softplus(x); });
}

Status softsign_kernel(KernelContext& ctx) {
  return unary_kernel<kFloatTypes>(ctx, [](auto x) {
    using C = decltype(x);
    return x / (C(1) + std::abs(x));
  });
}

Status thresholded_relu_kernel(KernelContext& ctx) {
  const float alpha = ctx.attrs().f("alpha", 1.f);
  return unary_kernel<kFloatTypes>(ctx, [alpha](auto x) {
    using C = decltype(x);
    return x > C(alpha) ? x : C(0);
  });
}

Status mish_kernel(KernelContext& ctx) {
  return unary_kernel<kFloatTypes>(ctx, [](auto x) { return x * std::tanh(softplus(x)); });
}

Status gelu_kernel(KernelContext& ctx) {
  if (ctx.attrs().s("approximate", "none") == "tanh") {
    return unary_kernel<kFloatTypes>(ctx, [](auto x) {
      using C = decltype(x);
      const C k = C(0.7978845608028654);  // sqrt(2 / pi)
      return C(0.5) * x * (C(1) + std::tanh(k * (x + C(0.044715) * x * x * x)));
    });
  }
  return unary_kernel<kFloatTypes>(ctx, [](auto x) {
    using C = decltype(x);
    return C(0.5) * x * (C(1) + std::erf(x * C(0.7071067811865476)));
  });
}

// Integer inputs are compared and shifted in double (lambd and bias are floats), then truncated.
Status shrink_kernel(KernelContext& ctx) {
  const float lambd = ctx.attrs().f("lambd", 0.5f), bias = ctx.attrs().f("bias", 0.f);
  return unary_kernel<kNumericTypes>(ctx, [lambd, bias](auto x) {
    using C = std::conditional_t<std::is_integral_v<decltype(x)>, double, decltype(x)>;
    const C v = static_cast<C>(x);
    return v < -C(lambd) ? v + C(bias) : (v > C(lambd) ? v - C(bias) : C(0));
  });
}

Status clip_kernel(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  Tensor& y = ctx.output(0);
  for (size_t i = 1; i <= 2; ++i) {
    if (!ctx.has_input(i)) continue;
    if (ctx.input(i).dtype() != x.dtype() || ctx.input(i).numel() != 1)
      return ctx.error("{} must be a scalar of dtype {}, got {}", i == 1 ? "min" : "max",
                       dtype_name(x.dtype()), ctx.input(i).describe());
  }
  bool ok = dispatch_types<kNumericTypes>(x.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    using C = compute_t<T>;
    const C lo = ctx.has_input(1) ? load(ctx.input(1).data<T>()[0]) : std::numeric_limits<C>::lowest();
    const C hi = ctx.has_input(2) ? load(ctx.input(2).data<T>()[0]) : std::numeric_limits<C>::max();
    // Comparisons keep NaN; when lo > hi everything becomes hi, as the spec says.
    (void)broadcast_map<T, T>(y, {&x}, [lo, hi](C v) {
      v = v < lo ? lo : v;
      return v > hi ? hi : v;
    });
  });
  return ok ? Status::Ok() : ctx.unsupported_dtype(x.dtype(), 0);
}

Status prelu_kernel(KernelContext& ctx) {
  return binary_kernel<kNumericTypes>(ctx, [](auto x, auto slope) {
    using C = decltype(x);
    if constexpr (std::is_unsigned_v<C>) return x;  // never negative
    else if constexpr (std::is_integral_v<C>) return x < 0 ? wrap_mul(slope, x) : x;
    else return x < C(0) ? slope * x : x;
  });
}

}  // namespace
}  // namespace kiln::cpu

KILN_REGISTER_CPU_KERNEL("Relu", kiln::cpu::relu_kernel);
KILN_REGISTER_CPU_KERNEL("LeakyRelu", kiln::cpu::leaky_relu_kernel);
KILN_REGISTER_CPU_KERNEL("Sigmoid", kiln::cpu::sigmoid_kernel);
KILN_REGISTER_CPU_KERNEL("HardSigmoid", kiln::cpu::hard_sigmoid_kernel);
KILN_REGISTER_CPU_KERNEL("HardSwish", kiln::cpu::hard_swish_kernel);
KILN_REGISTER_CPU_KERNEL("Tanh", kiln::cpu::tanh_kernel);
KILN_REGISTER_CPU_KERNEL("Elu", kiln::cpu::elu_kernel);
KILN_REGISTER_CPU_KERNEL("Selu", kiln::cpu::selu_kernel);
KILN_REGISTER_CPU_KERNEL("Celu", kiln::cpu::celu_kernel);
KILN_REGISTER_CPU_KERNEL("Softplus", kiln::cpu::softplus_kernel);
KILN_REGISTER_CPU_KERNEL("Softsign", kiln::cpu::softsign_kernel);
KILN_REGISTER_CPU_KERNEL("ThresholdedRelu", kiln::cpu::thresholded_relu_kernel);
KILN_REGISTER_CPU_KERNEL("Mish", kiln::cpu::mish_kernel);
KILN_REGISTER_CPU_KERNEL("Gelu", kiln::cpu::gelu_kernel);
KILN_REGISTER_CPU_KERNEL("Shrink", kiln::cpu::shrink_kernel);
KILN_REGISTER_CPU_KERNEL("Clip", kiln::cpu::clip_kernel);
KILN_REGISTER_CPU_KERNEL("PRelu", kiln::cpu::prelu_kernel);
