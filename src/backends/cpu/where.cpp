// CPU kernel of Where (3-way broadcast select).
#include "backends/cpu/copy_util.hpp"
#include "backends/cpu/elementwise.hpp"

namespace kiln::cpu {
namespace {

Status where_kernel(KernelContext& ctx) {
  const Tensor& cond = ctx.input(0);
  const Tensor& x = ctx.input(1);
  const Tensor& y = ctx.input(2);
  if (cond.dtype() != DType::kBool) return ctx.error("condition must be bool, got {}", dtype_name(cond.dtype()));
  if (x.dtype() != y.dtype())
    return ctx.error("X has dtype {}, but Y has {}", dtype_name(x.dtype()), dtype_name(y.dtype()));
  Tensor& out = ctx.output(0);
  bool shapes_ok = true;
  // Where moves elements without looking at them: one instantiation per element size, and NaN
  // payloads survive.
  bool ok = dispatch_elem_size(dtype_size(x.dtype()), [&](auto tag) {
    using U = typename decltype(tag)::type;
    shapes_ok = broadcast_map<U, bool, U, U>(out, {&cond, &x, &y}, [](bool c, U a, U b) { return c ? a : b; });
  });
  if (!ok) return ctx.unsupported_dtype(x.dtype(), 1);
  if (!shapes_ok)
    return ctx.error("shapes {}, {} and {} do not broadcast to {}", dims_to_string(cond.dims()),
                     dims_to_string(x.dims()), dims_to_string(y.dims()), dims_to_string(out.dims()));
  return Status::Ok();
}

}  // namespace
}  // namespace kiln::cpu

KILN_REGISTER_CPU_KERNEL("Where", kiln::cpu::where_kernel);
