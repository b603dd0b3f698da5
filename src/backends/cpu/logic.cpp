// CPU kernels of the comparison, logic and bitwise ops. Half/BFloat16 compare as float (exact).
#include "backends/cpu/elementwise.hpp"

namespace kiln::cpu {
namespace {

// Shifting by the bit width or more gives 0 (in C++ it is undefined).
template <typename C>
C shift(C a, C b, bool left) {
  if (b >= static_cast<C>(sizeof(C) * 8)) return 0;
  return static_cast<C>(left ? a << b : a >> b);
}

Status bit_shift_kernel(KernelContext& ctx) {
  const bool left = ctx.attrs().s("direction") == "LEFT";
  return binary_kernel<kUnsignedInts>(ctx, [left](auto a, auto b) { return shift(a, b, left); });
}

}  // namespace
}  // namespace kiln::cpu

#define KILN_BINARY_KERNEL(op, set, out, expr)                                                      \
  namespace kiln::cpu {                                                                              \
  namespace {                                                                                        \
  Status op##_kernel(KernelContext& ctx) {                                                           \
    return binary_kernel<set, out>(ctx, [](auto a, auto b) { return expr; });                    \
  }                                                                                                  \
  }                                                                                                  \
  }                                                                                                  \
  KILN_REGISTER_CPU_KERNEL(#op, kiln::cpu::op##_kernel)

KILN_BINARY_KERNEL(Equal, kAllTypes, bool, a == b)
KILN_BINARY_KERNEL(Less, kNumericTypes, bool, a < b)
KILN_BINARY_KERNEL(LessOrEqual, kNumericTypes, bool, a <= b)
KILN_BINARY_KERNEL(Greater, kNumericTypes, bool, a > b)
KILN_BINARY_KERNEL(GreaterOrEqual, kNumericTypes, bool, a >= b)
KILN_BINARY_KERNEL(And, kBoolType, bool, a && b)
KILN_BINARY_KERNEL(Or, kBoolType, bool, a || b)
KILN_BINARY_KERNEL(Xor, kBoolType, bool, a != b)
KILN_BINARY_KERNEL(BitwiseAnd, kIntTypes, void, decltype(a)(a & b))
KILN_BINARY_KERNEL(BitwiseOr, kIntTypes, void, decltype(a)(a | b))
KILN_BINARY_KERNEL(BitwiseXor, kIntTypes, void, decltype(a)(a ^ b))
#undef KILN_BINARY_KERNEL

namespace kiln::cpu {
namespace {
Status not_kernel(KernelContext& ctx) {
  return unary_kernel<kBoolType>(ctx, [](bool x) { return !x; });
}
Status bitwise_not_kernel(KernelContext& ctx) {
  return unary_kernel<kIntTypes>(ctx, [](auto x) { return static_cast<decltype(x)>(~x); });
}
}  // namespace
}  // namespace kiln::cpu

KILN_REGISTER_CPU_KERNEL("BitShift", kiln::cpu::bit_shift_kernel);
KILN_REGISTER_CPU_KERNEL("Not", kiln::cpu::not_kernel);
KILN_REGISTER_CPU_KERNEL("BitwiseNot", kiln::cpu::bitwise_not_kernel);
