// Shape/type inference shared by the elementwise op families (binary, variadic, logic, Where).
#pragma once

#include "ops/infer_util.hpp"

namespace kiln {

// Inputs [first, end) that are present must all have input `first`'s dtype (when known).
inline Status check_same_dtype(const InferContext& ctx, size_t first, size_t end) {
  DType want = ctx.input(first).dtype;
  for (size_t i = first + 1; i < end && i < ctx.num_inputs(); ++i) {
    if (!ctx.has_input(i)) continue;
    DType got = ctx.input(i).dtype;
    if (want != DType::kUndefined && got != want)
      return ctx.error("input {} has dtype {}, but input {} has {}", i, dtype_name(got), first,
                       dtype_name(want));
  }
  return Status::Ok();
}

// Same-dtype inputs broadcast together; the output has their dtype.
inline Status infer_broadcast_same_dtype(InferContext& ctx) {
  KILN_RETURN_IF_ERROR(check_same_dtype(ctx, 0, ctx.num_inputs()));
  return infer_broadcast(ctx);
}

// Same-dtype inputs broadcast together; the output is bool (comparisons, logic).
inline Status infer_compare(InferContext& ctx) {
  KILN_RETURN_IF_ERROR(check_same_dtype(ctx, 0, ctx.num_inputs()));
  return infer_broadcast_bool(ctx);
}

}  // namespace kiln
