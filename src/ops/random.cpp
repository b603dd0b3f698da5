// RandomNormal, RandomUniform (+Like), Bernoulli and Multinomial: schemas and shape inference.
// These are never constant-folded (passes/constant_folding.cpp): every run draws anew unless the
// `seed` attribute is set.
#include <cmath>

#include "ops/infer_util.hpp"
#include "ops/onnx_dtype.hpp"

namespace kiln {
namespace {

// The dtype named by attribute `dtype`, or `def` when absent.
Expected<DType> dtype_attr(const InferContext& ctx, DType def) {
  const auto* code = ctx.attrs().get_ptr<int64_t>("dtype");
  if (!code) return def;
  return dtype_from_onnx_code(ctx, "dtype", *code);
}

Expected<DType> floating_dtype_attr(const InferContext& ctx, DType def) {
  KILN_ASSIGN_OR_RETURN(DType t, dtype_attr(ctx, def));
  if (!is_floating(t)) return ctx.error("dtype {} must be a floating-point type", dtype_name(t));
  return t;
}

// The distribution's attributes: RandomUniform needs low <= high, both finite.
Status check_distribution(const InferContext& ctx, bool uniform) {
  const char* a = uniform ? "low" : "mean";
  const char* b = uniform ? "high" : "scale";
  const float lo = ctx.attrs().f(a, 0.f), hi = ctx.attrs().f(b, 1.f);
  if (!std::isfinite(lo) || !std::isfinite(hi)) return ctx.error("{} {} and {} {} must be finite", a, lo, b, hi);
  if (uniform && !(lo <= hi)) return ctx.error("low {} must not exceed high {}", lo, hi);
  return Status::Ok();
}

template <bool kUniform>
Status infer_random(InferContext& ctx) {
  KILN_RETURN_IF_ERROR(check_distribution(ctx, kUniform));
  const auto* shape = ctx.attrs().get_ptr<std::vector<int64_t>>("shape");
  if (!shape) return ctx.error("attribute 'shape' is required");
  std::vector<Dim> dims;
  for (int64_t d : *shape) {
    if (d < 0) return ctx.error("shape {} has a negative dim", dims_to_string(*shape));
    dims.emplace_back(d);
  }
  KILN_ASSIGN_OR_RETURN(DType t, floating_dtype_attr(ctx, DType::kFloat32));
  ctx.set_output(0, t, Shape(std::move(dims)));
  return Status::Ok();
}

// The output has the input's shape, and its dtype unless `dtype` is given.
template <bool kUniform>
Status infer_random_like(InferContext& ctx) {
  KILN_RETURN_IF_ERROR(check_distribution(ctx, kUniform));
  KILN_ASSIGN_OR_RETURN(DType t, floating_dtype_attr(ctx, ctx.input(0).dtype));
  ctx.set_output(0, t, ctx.input(0).shape);
  return Status::Ok();
}

// Each output element is 1 with the probability given by the input element, else 0.
Status infer_bernoulli(InferContext& ctx) {
  const DType in = ctx.input(0).dtype;
  if (!is_floating(in)) return ctx.error("input must be a floating-point tensor of probabilities, got {}", dtype_name(in));
  KILN_ASSIGN_OR_RETURN(DType t, dtype_attr(ctx, in));
  if (!is_floating(t) && !is_integer(t) && t != DType::kBool)
    return ctx.error("dtype {} must be numeric or bool", dtype_name(t));
  ctx.set_output(0, t, ctx.input(0).shape);
  return Status::Ok();
}

// Input [batch, classes] of unnormalized log-probabilities; output [batch, sample_size] class indices.
Status infer_multinomial(InferContext& ctx) {
  const TensorType& x = ctx.input(0);
  if (!is_floating(x.dtype)) return ctx.error("input must be a floating-point tensor, got {}", dtype_name(x.dtype));
  if (x.shape.has_rank() && x.shape.rank() != 2)
    return ctx.error("input must be 2-D [batch_size, class_size], got {}", x.shape.to_string());
  const int64_t samples = ctx.attrs().i("sample_size", 1);
  if (samples < 1) return ctx.error("sample_size {} must be positive", samples);
  KILN_ASSIGN_OR_RETURN(DType t, dtype_attr(ctx, DType::kInt32));
  if (t != DType::kInt32 && t != DType::kInt64) return ctx.error("dtype {} must be int32 or int64", dtype_name(t));
  ctx.set_output(0, t, Shape({x.shape.has_rank() ? x.shape[0] : Dim(), Dim(samples)}));
  return Status::Ok();
}

}  // namespace
}  // namespace kiln

KILN_REGISTER_OP({.name = "RandomNormal", .min_inputs = 0, .max_inputs = 0, .infer = kiln::infer_random<false>})
KILN_REGISTER_OP({.name = "RandomUniform", .min_inputs = 0, .max_inputs = 0, .infer = kiln::infer_random<true>})
KILN_REGISTER_OP({.name = "RandomNormalLike", .min_inputs = 1, .max_inputs = 1,
                  .infer = kiln::infer_random_like<false>})
KILN_REGISTER_OP({.name = "RandomUniformLike", .min_inputs = 1, .max_inputs = 1,
                  .infer = kiln::infer_random_like<true>})
KILN_REGISTER_OP({.name = "Bernoulli", .min_inputs = 1, .max_inputs = 1, .infer = kiln::infer_bernoulli})
KILN_REGISTER_OP({.name = "Multinomial", .min_inputs = 1, .max_inputs = 1, .infer = kiln::infer_multinomial})
