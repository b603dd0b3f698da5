// Optional kernels. An optional holding an element is stored as the element itself.
#include "ops/op_registry.hpp"

namespace kiln {
namespace {

Status optional_kernel(KernelContext& ctx) {
  const RuntimeValue* v = ctx.input_value(0);
  ctx.set_output_value(0, v ? *v : RuntimeValue(EmptyOptional{}));
  return Status::Ok();
}

Status optional_has_element_kernel(KernelContext& ctx) {
  const RuntimeValue* v = ctx.input_value(0);
  ctx.set_output(0, Tensor::scalar<bool>(v && !is_empty_optional(*v)));
  return Status::Ok();
}

Status optional_get_element_kernel(KernelContext& ctx) {
  const RuntimeValue* v = ctx.input_value(0);
  if (!v || is_empty_optional(*v)) return ctx.error("the optional input is empty");
  ctx.set_output_value(0, *v);
  return Status::Ok();
}

}  // namespace
}  // namespace kiln

KILN_REGISTER_CPU_KERNEL("Optional", kiln::optional_kernel);
KILN_REGISTER_CPU_KERNEL("OptionalHasElement", kiln::optional_has_element_kernel);
KILN_REGISTER_CPU_KERNEL("OptionalGetElement", kiln::optional_get_element_kernel);
