// Test-only ops (domain "kiln.test") for the control-flow tests, so that those do not depend on
// other op families: Add, Mul, Less (float32/int64, same dims or one side of one element) and
// Concat0 (axis-0 concatenation, whose output grows when looped).
#include <cstring>

#include "ops/infer_util.hpp"

namespace kiln {
namespace {

// Elementwise float32/int64 op where each side has the output's dims or one element.
template <typename F>
Status binary_kernel(KernelContext& ctx, F f) {
  const Tensor& a = ctx.input(0);
  const Tensor& b = ctx.input(1);
  if (a.dtype() != b.dtype()) return ctx.error("dtype mismatch");
  Tensor& out = ctx.output(0);
  const int64_t n = out.numel();
  const int64_t sa = a.numel() == 1 ? 0 : 1, sb = b.numel() == 1 ? 0 : 1;
  if (a.dtype() == DType::kFloat32) {
    for (int64_t i = 0; i < n; ++i) f(a.data<float>()[i * sa], b.data<float>()[i * sb], &out, i);
  } else if (a.dtype() == DType::kInt64) {
    for (int64_t i = 0; i < n; ++i) f(a.data<int64_t>()[i * sa], b.data<int64_t>()[i * sb], &out, i);
  } else {
    return ctx.unsupported_dtype(a.dtype());
  }
  return Status::Ok();
}

template <typename T>
void store(Tensor* out, int64_t i, T v) {
  if (out->dtype() == DType::kFloat32) out->data<float>()[i] = static_cast<float>(v);
  else if (out->dtype() == DType::kInt64) out->data<int64_t>()[i] = static_cast<int64_t>(v);
  else out->data<bool>()[i] = static_cast<bool>(v);
}

Status add_kernel(KernelContext& ctx) {
  return binary_kernel(ctx, [](auto x, auto y, Tensor* o, int64_t i) { store(o, i, x + y); });
}
Status mul_kernel(KernelContext& ctx) {
  return binary_kernel(ctx, [](auto x, auto y, Tensor* o, int64_t i) { store(o, i, x * y); });
}
Status less_kernel(KernelContext& ctx) {
  return binary_kernel(ctx, [](auto x, auto y, Tensor* o, int64_t i) { store(o, i, x < y); });
}

// Concatenation of two float32 tensors along axis 0: a value whose shape grows in a loop.
Status concat0_infer(InferContext& ctx) {
  Shape s = ctx.input(0).shape;
  if (s.has_rank() && s.rank() > 0) s.dims()[0] = Dim();
  ctx.set_output(0, ctx.input(0).dtype, s);
  return Status::Ok();
}
Status concat0_kernel(KernelContext& ctx) {
  const Tensor& a = ctx.input(0);
  const Tensor& b = ctx.input(1);
  Dims d = a.dims();
  d[0] += b.dims()[0];
  Tensor& out = ctx.allocate_output(0, a.dtype(), d);
  std::memcpy(out.raw_data(), a.raw_data(), a.nbytes());
  std::memcpy(static_cast<char*>(out.raw_data()) + a.nbytes(), b.raw_data(), b.nbytes());
  return Status::Ok();
}

KILN_REGISTER_OP({.name = "Add", .domain = "kiln.test", .min_inputs = 2, .max_inputs = 2,
                  .infer = infer_broadcast});
KILN_REGISTER_OP({.name = "Mul", .domain = "kiln.test", .min_inputs = 2, .max_inputs = 2,
                  .infer = infer_broadcast});
KILN_REGISTER_OP({.name = "Less", .domain = "kiln.test", .min_inputs = 2, .max_inputs = 2,
                  .infer = infer_broadcast_bool});
KILN_REGISTER_OP({.name = "Concat0", .domain = "kiln.test", .min_inputs = 2, .max_inputs = 2,
                  .infer = concat0_infer});
KILN_REGISTER_CPU_KERNEL_DOMAIN("kiln.test", "Add", add_kernel);
KILN_REGISTER_CPU_KERNEL_DOMAIN("kiln.test", "Mul", mul_kernel);
KILN_REGISTER_CPU_KERNEL_DOMAIN("kiln.test", "Less", less_kernel);
KILN_REGISTER_CPU_KERNEL_DOMAIN("kiln.test", "Concat0", concat0_kernel);

}  // namespace
}  // namespace kiln
