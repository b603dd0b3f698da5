// Unary math ops (Abs ... Erf, IsNaN, IsInf): the output has the input's shape; IsNaN and IsInf
// give bool. Which dtypes each op runs on is the kernels' business (see backends/cpu/unary_math.cpp).
#include "ops/infer_util.hpp"

namespace kiln {
namespace {

Status infer_bool_same_shape(InferContext& ctx) {
  ctx.set_output(0, DType::kBool, ctx.input(0).shape);
  return Status::Ok();
}

Status infer_is_inf(InferContext& ctx) {
  for (const char* name : {"detect_negative", "detect_positive"}) {
    int64_t v = ctx.attrs().i(name, 1);
    if (v != 0 && v != 1) return ctx.error("attribute {} must be 0 or 1, got {}", name, v);
  }
  return infer_bool_same_shape(ctx);
}

}  // namespace
}  // namespace kiln

#define KILN_UNARY_OP(op) \
  KILN_REGISTER_OP({.name = #op, .min_inputs = 1, .max_inputs = 1, .infer = kiln::infer_same_as_input0})

KILN_UNARY_OP(Abs)
KILN_UNARY_OP(Neg)
KILN_UNARY_OP(Exp)
KILN_UNARY_OP(Log)
KILN_UNARY_OP(Sqrt)
KILN_UNARY_OP(Reciprocal)
KILN_UNARY_OP(Floor)
KILN_UNARY_OP(Ceil)
KILN_UNARY_OP(Round)
KILN_UNARY_OP(Sign)
KILN_UNARY_OP(Sin)
KILN_UNARY_OP(Cos)
KILN_UNARY_OP(Tan)
KILN_UNARY_OP(Asin)
KILN_UNARY_OP(Acos)
KILN_UNARY_OP(Atan)
KILN_UNARY_OP(Sinh)
KILN_UNARY_OP(Cosh)
KILN_UNARY_OP(Asinh)
KILN_UNARY_OP(Acosh)
KILN_UNARY_OP(Atanh)
KILN_UNARY_OP(Erf)
#undef KILN_UNARY_OP

KILN_REGISTER_OP({.name = "IsNaN", .min_inputs = 1, .max_inputs = 1, .infer = kiln::infer_bool_same_shape})
KILN_REGISTER_OP({.name = "IsInf", .min_inputs = 1, .max_inputs = 1, .infer = kiln::infer_is_inf})
