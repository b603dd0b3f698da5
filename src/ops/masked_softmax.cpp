// kiln.MaskedSoftmax: y = Softmax(x * scale + mask, axis = -1), made by the attention-softmax
// fusion pass (CUDA backend) from [Mul/Div by a constant scalar] [-> Add mask] -> Softmax, so the
// scores are read and written once instead of three times.
//   x: float [..., L]; mask (optional): x's dtype, broadcasts to x; attribute scale (float, 1).
//   kiln_fused: the names of the nodes it replaced.
#include "ops/masked_softmax.hpp"

#include "ops/infer_util.hpp"

namespace kiln {

std::optional<Dims> masked_softmax_mask_strides(const Dims& x, const Dims& mask) {
  if (mask.size() > x.size()) return std::nullopt;
  Dims strides(x.size(), 0);
  const size_t lead = x.size() - mask.size();
  int64_t s = 1;
  for (size_t i = mask.size(); i-- > 0;) {
    if (mask[i] == x[lead + i]) strides[lead + i] = mask[i] == 1 ? 0 : s;
    else if (mask[i] != 1) return std::nullopt;
    s *= mask[i];
  }
  return strides;
}

namespace {

Status infer_masked_softmax(InferContext& ctx) {
  const TensorType& x = ctx.input(0);
  if (!is_floating(x.dtype)) return ctx.error("dtype {} is not a float type", dtype_name(x.dtype));
  if (x.shape.has_rank() && x.shape.rank() == 0) return ctx.error("x must have rank >= 1");
  if (ctx.has_input(1)) {
    const TensorType& m = ctx.input(1);
    if (m.dtype != x.dtype) return ctx.error("mask is {} but x is {}", dtype_name(m.dtype), dtype_name(x.dtype));
    auto xd = x.shape.to_dims(), md = m.shape.to_dims();
    if (xd && md && !masked_softmax_mask_strides(*xd, *md))
      return ctx.error("mask {} does not broadcast to x {}", m.shape.to_string(), x.shape.to_string());
  }
  ctx.set_output(0, x.dtype, x.shape);
  return Status::Ok();
}

}  // namespace
}  // namespace kiln

KILN_REGISTER_OP({.name = "MaskedSoftmax", .domain = "kiln", .min_inputs = 1, .max_inputs = 2,
                  .infer = kiln::infer_masked_softmax});
