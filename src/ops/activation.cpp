// Activation ops: the output has the input's shape and dtype. Attributes are validated here so
// every backend rejects the same invalid nodes.
#include "ops/infer_util.hpp"

namespace kiln {
namespace {

Status infer_celu(InferContext& ctx) {
  if (ctx.attrs().f("alpha", 1.f) == 0.f) return ctx.error("attribute alpha must be non-zero (Celu divides by it)");
  return infer_same_as_input0(ctx);
}

Status infer_gelu(InferContext& ctx) {
  std::string approx = ctx.attrs().s("approximate", "none");
  if (approx != "none" && approx != "tanh")
    return ctx.error("attribute approximate must be \"none\" or \"tanh\", got \"{}\"", approx);
  return infer_same_as_input0(ctx);
}

// Clip's optional min (input 1) and max (input 2) are scalars of the input's dtype.
Status infer_clip(InferContext& ctx) {
  for (size_t i = 1; i <= 2; ++i) {
    if (!ctx.has_input(i)) continue;
    const TensorType& t = ctx.input(i);
    const char* what = i == 1 ? "min" : "max";
    if (t.dtype != ctx.input(0).dtype)
      return ctx.error("{} (input {}) has dtype {}, but the input has {}", what, i, dtype_name(t.dtype),
                       dtype_name(ctx.input(0).dtype));
    if (t.shape.is_static() && dims_numel(*t.shape.to_dims()) != 1)
      return ctx.error("{} (input {}) must be a scalar, got shape {}", what, i, t.shape.to_string());
  }
  return infer_same_as_input0(ctx);
}

// PRelu: slope broadcasts to X one way (the output has X's shape).
Status infer_prelu(InferContext& ctx) {
  const TensorType& x = ctx.input(0);
  const TensorType& slope = ctx.input(1);
  if (slope.dtype != x.dtype)
    return ctx.error("slope has dtype {}, but X has {}", dtype_name(slope.dtype), dtype_name(x.dtype));
  auto b = broadcast_shapes({x.shape, slope.shape});
  if (!b) return ctx.error("{}", b.status().message());
  if (x.shape.has_rank() && slope.shape.has_rank()) {
    bool ok = slope.shape.rank() <= x.shape.rank();
    for (size_t i = 0; ok && i < x.shape.rank(); ++i) {
      const Dim& xd = x.shape[i];
      if (xd.known() && (*b)[i].known() && (*b)[i].value != xd.value) ok = false;
    }
    if (!ok)
      return ctx.error("slope of shape {} does not broadcast to X of shape {}", slope.shape.to_string(),
                       x.shape.to_string());
  }
  ctx.set_output(0, x.dtype, x.shape);
  return Status::Ok();
}

}  // namespace
}  // namespace kiln

#define KILN_ACTIVATION_OP(op, fn) \
  KILN_REGISTER_OP({.name = #op, .min_inputs = 1, .max_inputs = 1, .infer = fn})

KILN_ACTIVATION_OP(Relu, kiln::infer_same_as_input0)
KILN_ACTIVATION_OP(LeakyRelu, kiln::infer_same_as_input0)
KILN_ACTIVATION_OP(Sigmoid, kiln::infer_same_as_input0)
KILN_ACTIVATION_OP(HardSigmoid, kiln::infer_same_as_input0)
KILN_ACTIVATION_OP(HardSwish, kiln::infer_same_as_input0)
KILN_ACTIVATION_OP(Tanh, kiln::infer_same_as_input0)
KILN_ACTIVATION_OP(Elu, kiln::infer_same_as_input0)
KILN_ACTIVATION_OP(Selu, kiln::infer_same_as_input0)
KILN_ACTIVATION_OP(Celu, kiln::infer_celu)
KILN_ACTIVATION_OP(Softplus, kiln::infer_same_as_input0)
KILN_ACTIVATION_OP(Softsign, kiln::infer_same_as_input0)
KILN_ACTIVATION_OP(ThresholdedRelu, kiln::infer_same_as_input0)
KILN_ACTIVATION_OP(Mish, kiln::infer_same_as_input0)
KILN_ACTIVATION_OP(Gelu, kiln::infer_gelu)
KILN_ACTIVATION_OP(Shrink, kiln::infer_same_as_input0)
#undef KILN_ACTIVATION_OP

KILN_REGISTER_OP({.name = "Clip", .min_inputs = 1, .max_inputs = 3, .infer = kiln::infer_clip})
KILN_REGISTER_OP({.name = "PRelu", .min_inputs = 2, .max_inputs = 2, .infer = kiln::infer_prelu})
