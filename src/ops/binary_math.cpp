// Binary and variadic arithmetic: Add, Sub, Mul, Div, Mod, Pow, Max, Min, Sum, Mean. Inputs
// broadcast numpy-style; all but Pow's exponent share one dtype, which the output has.
#include "ops/elementwise_infer.hpp"

namespace kiln {
namespace {

Status infer_mod(InferContext& ctx) {
  int64_t fmod = ctx.attrs().i("fmod", 0);
  if (fmod != 0 && fmod != 1) return ctx.error("attribute fmod must be 0 or 1, got {}", fmod);
  if (fmod == 0 && is_floating(ctx.input(0).dtype))
    return ctx.error("attribute fmod must be 1 for floating-point inputs ({})", dtype_name(ctx.input(0).dtype));
  return infer_broadcast_same_dtype(ctx);
}

// The exponent may have another dtype than the base; the output has the base's.
Status infer_pow(InferContext& ctx) { return infer_broadcast(ctx); }

}  // namespace
}  // namespace kiln

#define KILN_BINARY_OP(op, fn) KILN_REGISTER_OP({.name = #op, .min_inputs = 2, .max_inputs = 2, .infer = fn})
KILN_BINARY_OP(Add, kiln::infer_broadcast_same_dtype)
KILN_BINARY_OP(Sub, kiln::infer_broadcast_same_dtype)
KILN_BINARY_OP(Mul, kiln::infer_broadcast_same_dtype)
KILN_BINARY_OP(Div, kiln::infer_broadcast_same_dtype)
KILN_BINARY_OP(Mod, kiln::infer_mod)
KILN_BINARY_OP(Pow, kiln::infer_pow)
#undef KILN_BINARY_OP

#define KILN_VARIADIC_OP(op) \
  KILN_REGISTER_OP({.name = #op, .min_inputs = 1, .infer = kiln::infer_broadcast_same_dtype})
KILN_VARIADIC_OP(Max)
KILN_VARIADIC_OP(Min)
KILN_VARIADIC_OP(Sum)
KILN_VARIADIC_OP(Mean)
#undef KILN_VARIADIC_OP
