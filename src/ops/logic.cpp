// Comparison, logic and bitwise ops. Binary ones broadcast same-dtype inputs; comparisons and
// And/Or/Xor give bool, bitwise ops and BitShift the inputs' dtype.
#include "ops/elementwise_infer.hpp"

namespace kiln {
namespace {

Status infer_bit_shift(InferContext& ctx) {
  std::string dir = ctx.attrs().s("direction");
  if (dir != "LEFT" && dir != "RIGHT")
    return ctx.error("attribute direction must be \"LEFT\" or \"RIGHT\", got \"{}\"", dir);
  return infer_broadcast_same_dtype(ctx);
}

}  // namespace
}  // namespace kiln

#define KILN_BINARY_OP(op, fn) KILN_REGISTER_OP({.name = #op, .min_inputs = 2, .max_inputs = 2, .infer = fn})
KILN_BINARY_OP(Equal, kiln::infer_compare)
KILN_BINARY_OP(Less, kiln::infer_compare)
KILN_BINARY_OP(LessOrEqual, kiln::infer_compare)
KILN_BINARY_OP(Greater, kiln::infer_compare)
KILN_BINARY_OP(GreaterOrEqual, kiln::infer_compare)
KILN_BINARY_OP(And, kiln::infer_compare)
KILN_BINARY_OP(Or, kiln::infer_compare)
KILN_BINARY_OP(Xor, kiln::infer_compare)
KILN_BINARY_OP(BitwiseAnd, kiln::infer_broadcast_same_dtype)
KILN_BINARY_OP(BitwiseOr, kiln::infer_broadcast_same_dtype)
KILN_BINARY_OP(BitwiseXor, kiln::infer_broadcast_same_dtype)
KILN_BINARY_OP(BitShift, kiln::infer_bit_shift)
#undef KILN_BINARY_OP

KILN_REGISTER_OP({.name = "Not", .min_inputs = 1, .max_inputs = 1, .infer = kiln::infer_same_as_input0})
KILN_REGISTER_OP({.name = "BitwiseNot", .min_inputs = 1, .max_inputs = 1, .infer = kiln::infer_same_as_input0})
