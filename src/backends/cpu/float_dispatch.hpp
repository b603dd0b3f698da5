// Dispatch over the floating-point dtypes for kernels that support only those.
#pragma once

#include "ops/op_registry.hpp"

namespace kiln::cpu {

// Calls fn(TypeTag<T>{}) for float32/float64/float16/bfloat16 (kernels compute the last two in
// float through compute_t); any other dtype of input `input` is reported unsupported.
template <typename Fn>
Status dispatch_floating(KernelContext& ctx, DType t, Fn&& fn, size_t input = 0) {
  switch (t) {
    case DType::kFloat32: fn(TypeTag<float>{}); return Status::Ok();
    case DType::kFloat64: fn(TypeTag<double>{}); return Status::Ok();
    case DType::kFloat16: fn(TypeTag<Half>{}); return Status::Ok();
    case DType::kBFloat16: fn(TypeTag<BFloat16>{}); return Status::Ok();
    default: return ctx.unsupported_dtype(t, input);
  }
}

}  // namespace kiln::cpu
