// kiln.Fp8LayerNorm, made by the fp8-quantize-fusion pass (CUDA backend) from a LayerNormalization
// whose output a kiln.Fp8Quantize reads: one kernel writes both the normalized Y (for the other
// readers, e.g. the residual path) and its float8 E4M3 copy for the FP8 GEMMs.
//
// kiln.Fp8LayerNorm(X, Scale, q_scale [, B]) -> (Y, Yq): attributes axis (default -1) and epsilon
//   (default 1e-5), as LayerNormalization with stash_type 1 (float statistics). Y has X's dtype
//   and shape; Yq = e4m3(Y / q_scale) (saturating, as kiln.Fp8Quantize of Y). Scale and B (optional) hold exactly the normalized dims' values (leading 1s allowed), X's dtype;
//   q_scale: one float value.
#include "ops/infer_util.hpp"

namespace kiln {
namespace {

Status infer_fp8_layer_norm(InferContext& ctx) {
  const TensorType& x = ctx.input(0);
  if (x.dtype != DType::kFloat32 && x.dtype != DType::kFloat16 && x.dtype != DType::kBFloat16)
    return ctx.error("X must be float32, float16 or bfloat16, got {}", dtype_name(x.dtype));
  const TensorType& qs = ctx.input(2);
  if (!is_floating(qs.dtype)) return ctx.error("q_scale must be a float tensor, got {}", dtype_name(qs.dtype));
  if (auto d = qs.shape.to_dims(); d && dims_numel(*d) != 1)
    return ctx.error("q_scale must hold one value (per-tensor scale), got {}", qs.shape.to_string());
  if (x.shape.has_rank()) {
    const int64_t rank = static_cast<int64_t>(x.shape.rank());
    if (rank == 0) return ctx.error("X must have rank 1 or more");
    KILN_ASSIGN_OR_RETURN(int64_t axis, normalize_axis(ctx, ctx.attrs().i("axis", -1), rank));
    if (auto xd = x.shape.to_dims()) {
      int64_t cols = 1;
      for (int64_t i = axis; i < rank; ++i) cols *= (*xd)[static_cast<size_t>(i)];
      for (size_t i : {size_t{1}, size_t{3}}) {
        if (!ctx.has_input(i)) continue;
        if (ctx.input(i).dtype != x.dtype)
          return ctx.error("{} is {} but X is {}", i == 1 ? "Scale" : "B", dtype_name(ctx.input(i).dtype),
                           dtype_name(x.dtype));
        if (auto pd = ctx.input(i).shape.to_dims(); pd && dims_numel(*pd) != cols)
          return ctx.error("{} {} must hold the {} normalized values", i == 1 ? "Scale" : "B",
                           ctx.input(i).shape.to_string(), cols);
      }
    }
  }
  ctx.set_output(0, x.dtype, x.shape);
  ctx.set_output(1, DType::kFloat8E4M3FN, x.shape);
  return Status::Ok();
}

}  // namespace
}  // namespace kiln

KILN_REGISTER_OP({.name = "Fp8LayerNorm", .domain = "kiln", .min_inputs = 3, .max_inputs = 4, .min_outputs = 2,
                  .max_outputs = 2, .infer = kiln::infer_fp8_layer_norm});
