// Kernel templates shared by the elementwise op families (unary, activation, binary).
#pragma once

#include <type_traits>

#include "backends/cpu/broadcast.hpp"
#include "ops/op_registry.hpp"

namespace kiln::cpu {

// y = f(x) for input 0 of a dtype in Set; the output dtype is Out (void: the input's dtype).
// f gets compute-type values (float for Half/BFloat16).
template <unsigned Set, typename Out = void, typename F>
Status unary_kernel(KernelContext& ctx, F f) {
  const Tensor& x = ctx.input(0);
  Tensor& y = ctx.output(0);
  bool ok = dispatch_types<Set>(x.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    using O = std::conditional_t<std::is_void_v<Out>, T, Out>;
    // y has x's dims, so this cannot fail.
    (void)broadcast_map<O, T>(y, {&x}, f);
  });
  return ok ? Status::Ok() : ctx.unsupported_dtype(x.dtype(), 0);
}

// out = f(a, b) with broadcasting, both inputs of one dtype in Set; output dtype Out (void: the
// inputs' dtype). Inference has checked that the dtypes agree and the shapes broadcast.
template <unsigned Set, typename Out = void, typename F>
Status binary_kernel(KernelContext& ctx, F f) {
  const Tensor& a = ctx.input(0);
  const Tensor& b = ctx.input(1);
  if (b.dtype() != a.dtype())
    return ctx.error("input 1 has dtype {}, but input 0 has {}", dtype_name(b.dtype()), dtype_name(a.dtype()));
  Tensor& out = ctx.output(0);
  bool shapes_ok = true;
  bool ok = dispatch_types<Set>(a.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    using O = std::conditional_t<std::is_void_v<Out>, T, Out>;
    shapes_ok = broadcast_map<O, T, T>(out, {&a, &b}, f);
  });
  if (!ok) return ctx.unsupported_dtype(a.dtype(), 0);
  if (!shapes_ok)
    return ctx.error("shapes {} and {} do not broadcast to {}", dims_to_string(a.dims()),
                     dims_to_string(b.dims()), dims_to_string(out.dims()));
  return Status::Ok();
}

}  // namespace kiln::cpu
