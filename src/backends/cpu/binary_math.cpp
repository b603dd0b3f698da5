// CPU kernels of the binary and variadic arithmetic ops. Integer arithmetic wraps on overflow;
// integer division or modulo by zero is an error naming the node (C++ would trap).
#include <cmath>

#include "backends/cpu/elementwise.hpp"

namespace kiln::cpu {
namespace {

template <typename C>
C add(C a, C b) {
  if constexpr (is_int_v<C>) return wrap_add(a, b);
  else return a + b;
}
template <typename C>
C sub(C a, C b) {
  if constexpr (is_int_v<C>) return wrap_sub(a, b);
  else return a - b;
}
template <typename C>
C mul(C a, C b) {
  if constexpr (is_int_v<C>) return wrap_mul(a, b);
  else return a * b;
}

// Integer division truncates toward zero; `bad` is set on a zero divisor.
template <typename C>
C div(C a, C b, bool& bad) {
  if constexpr (is_int_v<C>) {
    if (b == 0) { bad = true; return 0; }
    if constexpr (std::is_signed_v<C>)
      if (b == C(-1)) return wrap_neg(a);  // INT_MIN / -1 overflows
    return static_cast<C>(a / b);
  } else {
    return a / b;
  }
}

// fmod: the result has the dividend's sign (C's % and std::fmod); otherwise the divisor's
// (Python's %).
template <typename C>
C mod(C a, C b, bool fmod, bool& bad) {
  C r;
  if constexpr (is_int_v<C>) {
    if (b == 0) { bad = true; return 0; }
    if constexpr (std::is_signed_v<C>)
      if (b == C(-1)) return 0;  // INT_MIN % -1 overflows
    r = static_cast<C>(a % b);
  } else {
    r = std::fmod(a, b);
  }
  if constexpr (std::is_signed_v<C> || !std::is_integral_v<C>)
    if (!fmod && r != C(0) && ((r < C(0)) != (b < C(0)))) r = static_cast<C>(r + b);
  return r;
}

// Max/Min propagate NaN (like numpy.maximum).
template <typename C>
C max_of(C a, C b) {
  if constexpr (!is_int_v<C>)
    if (std::isnan(a) || std::isnan(b)) return std::isnan(a) ? a : b;
  return b > a ? b : a;
}
template <typename C>
C min_of(C a, C b) {
  if constexpr (!is_int_v<C>)
    if (std::isnan(a) || std::isnan(b)) return std::isnan(a) ? a : b;
  return b < a ? b : a;
}

// Integer power: by squaring with wrapping; a negative exponent gives trunc(1 / base^-e).
template <typename B, typename E>
B int_pow(B base, E e, bool& bad) {
  if constexpr (std::is_signed_v<E>) {
    if (e < 0) {
      if (base == 0) { bad = true; return 0; }
      if (base == 1) return 1;
      if constexpr (std::is_signed_v<B>)
        if (base == B(-1)) return (e % 2 == 0) ? B(1) : B(-1);
      return 0;
    }
  }
  B result = 1;
  auto n = static_cast<std::make_unsigned_t<E>>(e);
  while (n) {
    if (n & 1u) result = wrap_mul(result, base);
    n >>= 1;
    if (n) base = wrap_mul(base, base);
  }
  return result;
}

template <typename F>
Status checked_binary(KernelContext& ctx, F f, bool& bad, const char* what) {
  KILN_RETURN_IF_ERROR(binary_kernel<kNumericTypes>(ctx, f));
  if (bad) return ctx.error("integer {} by zero", what);
  return Status::Ok();
}

Status add_kernel(KernelContext& ctx) {
  return binary_kernel<kNumericTypes>(ctx, [](auto a, auto b) { return add(a, b); });
}
Status sub_kernel(KernelContext& ctx) {
  return binary_kernel<kNumericTypes>(ctx, [](auto a, auto b) { return sub(a, b); });
}
Status mul_kernel(KernelContext& ctx) {
  return binary_kernel<kNumericTypes>(ctx, [](auto a, auto b) { return mul(a, b); });
}
Status div_kernel(KernelContext& ctx) {
  bool bad = false;
  return checked_binary(ctx, [&bad](auto a, auto b) { return div(a, b, bad); }, bad, "division");
}
Status mod_kernel(KernelContext& ctx) {
  bool bad = false;
  const bool fmod = ctx.attrs().i("fmod", 0) != 0;
  return checked_binary(ctx, [&bad, fmod](auto a, auto b) { return mod(a, b, fmod, bad); }, bad, "modulo");
}

// Pow: the exponent may be of any numeric dtype; the result has the base's.
Status pow_kernel(KernelContext& ctx) {
  const Tensor& base = ctx.input(0);
  const Tensor& exponent = ctx.input(1);
  Tensor& out = ctx.output(0);
  bool bad = false, shapes_ok = true, exp_ok = true;
  bool base_ok = dispatch_types<kNumericTypes>(base.dtype(), [&](auto btag) {
    using B = typename decltype(btag)::type;
    exp_ok = dispatch_types<kNumericTypes>(exponent.dtype(), [&](auto etag) {
      using E = typename decltype(etag)::type;
      shapes_ok = broadcast_map<B, B, E>(out, {&base, &exponent}, [&bad](auto b, auto e) {
        using CB = decltype(b);
        using CE = decltype(e);
        if constexpr (is_int_v<CB> && is_int_v<CE>) return int_pow(b, e, bad);
        else if constexpr (is_int_v<CB>) return std::pow(static_cast<double>(b), static_cast<double>(e));
        else return static_cast<CB>(std::pow(b, static_cast<CB>(e)));
      });
    });
  });
  if (!base_ok) return ctx.unsupported_dtype(base.dtype(), 0);
  if (!exp_ok) return ctx.unsupported_dtype(exponent.dtype(), 1);
  if (!shapes_ok)
    return ctx.error("shapes {} and {} do not broadcast to {}", dims_to_string(base.dims()),
                     dims_to_string(exponent.dims()), dims_to_string(out.dims()));
  if (bad) return ctx.error("integer zero raised to a negative power");
  return Status::Ok();
}

// Variadic ops fold the inputs pairwise into an accumulator of the compute type (so Half sums
// are not rounded at every step), then `finish` maps it into the output.
template <unsigned Set, typename F, typename Finish>
Status variadic_kernel(KernelContext& ctx, F f, Finish finish) {
  const DType dtype = ctx.input(0).dtype();
  for (size_t i = 1; i < ctx.num_inputs(); ++i)
    if (ctx.has_input(i) && ctx.input(i).dtype() != dtype)
      return ctx.error("input {} has dtype {}, but input 0 has {}", i, dtype_name(ctx.input(i).dtype()),
                       dtype_name(dtype));
  Tensor& out = ctx.output(0);
  size_t bad_input = 0;
  bool ok = dispatch_types<Set>(dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    using C = compute_t<T>;
    Tensor acc(dtype_of<C>, out.dims());
    if (!broadcast_map<C, T>(acc, {&ctx.input(0)}, [](C v) { return v; })) return;
    for (size_t i = 1; i < ctx.num_inputs(); ++i) {
      if (!ctx.has_input(i)) continue;
      if (!broadcast_map<C, C, T>(acc, {&acc, &ctx.input(i)}, f)) { bad_input = i; return; }
    }
    (void)broadcast_map<T, C>(out, {&acc}, finish);
  });
  if (!ok) return ctx.unsupported_dtype(dtype, 0);
  if (bad_input)
    return ctx.error("input {} of shape {} does not broadcast to {}", bad_input,
                     dims_to_string(ctx.input(bad_input).dims()), dims_to_string(out.dims()));
  return Status::Ok();
}

const auto kIdentity = [](auto v) { return v; };

Status max_kernel(KernelContext& ctx) {
  return variadic_kernel<kNumericTypes>(ctx, [](auto a, auto b) { return max_of(a, b); }, kIdentity);
}
Status min_kernel(KernelContext& ctx) {
  return variadic_kernel<kNumericTypes>(ctx, [](auto a, auto b) { return min_of(a, b); }, kIdentity);
}
Status sum_kernel(KernelContext& ctx) {
  return variadic_kernel<kNumericTypes>(ctx, [](auto a, auto b) { return add(a, b); }, kIdentity);
}
Status mean_kernel(KernelContext& ctx) {
  size_t n = 0;
  for (size_t i = 0; i < ctx.num_inputs(); ++i) n += ctx.has_input(i);
  return variadic_kernel<kFloatTypes>(ctx, [](auto a, auto b) { return a + b; },
                                      [n](auto v) { return v / static_cast<decltype(v)>(n); });
}

}  // namespace
}  // namespace kiln::cpu

KILN_REGISTER_CPU_KERNEL("Add", kiln::cpu::add_kernel);
KILN_REGISTER_CPU_KERNEL("Sub", kiln::cpu::sub_kernel);
KILN_REGISTER_CPU_KERNEL("Mul", kiln::cpu::mul_kernel);
KILN_REGISTER_CPU_KERNEL("Div", kiln::cpu::div_kernel);
KILN_REGISTER_CPU_KERNEL("Mod", kiln::cpu::mod_kernel);
KILN_REGISTER_CPU_KERNEL("Pow", kiln::cpu::pow_kernel);
KILN_REGISTER_CPU_KERNEL("Max", kiln::cpu::max_kernel);
KILN_REGISTER_CPU_KERNEL("Min", kiln::cpu::min_kernel);
KILN_REGISTER_CPU_KERNEL("Sum", kiln::cpu::sum_kernel);
KILN_REGISTER_CPU_KERNEL("Mean", kiln::cpu::mean_kernel);
