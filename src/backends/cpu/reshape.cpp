// Reshape, Flatten, Squeeze, Unsqueeze: the output shares the input's buffer with the inferred dims.
#include "ops/op_registry.hpp"

namespace kiln {
namespace {
Status view_kernel(KernelContext& ctx) {
  auto dims = ctx.output_type(0).shape.to_dims();
  if (!dims || dims_numel(*dims) != ctx.input(0).numel())
    return ctx.error("cannot view input {} as {}", ctx.input(0).describe(), ctx.output_type(0).shape.to_string());
  ctx.set_output(0, ctx.input(0).reshaped(*dims));
  return Status::Ok();
}
}  // namespace
}  // namespace kiln

KILN_REGISTER_CPU_KERNEL("Reshape", kiln::view_kernel);
KILN_REGISTER_CPU_KERNEL("Flatten", kiln::view_kernel);
KILN_REGISTER_CPU_KERNEL("Squeeze", kiln::view_kernel);
KILN_REGISTER_CPU_KERNEL("Unsqueeze", kiln::view_kernel);
