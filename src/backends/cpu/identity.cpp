#include "backends/cpu/string_support.hpp"
#include "ops/op_registry.hpp"

namespace kiln {
namespace {
// Values are never written after they are produced, so the output can share the input's buffer.
Status identity_kernel(KernelContext& ctx) {
  if (const RuntimeValue* v = ctx.input_value(0)) ctx.set_output_value(0, *v);
  else ctx.set_output(0, ctx.input(0));
  return Status::Ok();
}
}  // namespace
}  // namespace kiln

KILN_REGISTER_CPU_KERNEL("Identity", kiln::identity_kernel);
KILN_CPU_KERNEL_HANDLES_STRINGS("", "Identity");
