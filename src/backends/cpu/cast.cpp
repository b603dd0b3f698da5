// CPU kernels of Cast and CastLike.
#include "backends/cpu/elementwise.hpp"
#include "backends/cpu/string_support.hpp"

namespace kiln::cpu {
namespace {

// Converts input 0 to the output's dtype (chosen by inference from `to` or from input 1).
Status cast_kernel(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  const DType to = ctx.output_type(0).dtype;
  if (x.dtype() == to) {
    ctx.set_output(0, x);  // tensors are immutable once produced: share the buffer
    return Status::Ok();
  }
  if (x.dtype() == DType::kString || to == DType::kString) {
    // Text <-> number: parsing and shortest round-trip printing (Tensor::cast).
    ctx.set_output(0, x.cast(to));
    return Status::Ok();
  }
  Tensor& y = ctx.output(0);
  bool to_ok = true;
  bool from_ok = dispatch_types<kAllTypes>(x.dtype(), [&](auto stag) {
    using S = typename decltype(stag)::type;
    to_ok = dispatch_types<kAllTypes>(to, [&](auto dtag) {
      using D = typename decltype(dtag)::type;
      (void)broadcast_map<D, S>(y, {&x}, [](auto v) { return convert<D>(v); });
    });
  });
  if (!from_ok) return ctx.unsupported_dtype(x.dtype(), 0);
  if (!to_ok) return ctx.error("cannot cast to {}", dtype_name(to));
  return Status::Ok();
}

}  // namespace
}  // namespace kiln::cpu

KILN_REGISTER_CPU_KERNEL("Cast", kiln::cpu::cast_kernel);
KILN_REGISTER_CPU_KERNEL("CastLike", kiln::cpu::cast_kernel);
KILN_CPU_KERNEL_HANDLES_STRINGS("", "Cast");
KILN_CPU_KERNEL_HANDLES_STRINGS("", "CastLike");
