// Shape, Size, Constant, ConstantOfShape, Range, EyeLike.
#include <cstring>

#include "backends/cpu/copy_util.hpp"
#include "ops/tensor_infer_util.hpp"

namespace kiln {
namespace {

Status shape_kernel(KernelContext& ctx) {
  const Dims& d = ctx.input(0).dims();
  const int64_t rank = static_cast<int64_t>(d.size());
  auto clamp = [rank](int64_t v) { return std::clamp(v < 0 ? v + rank : v, int64_t{0}, rank); };
  const int64_t start = clamp(ctx.attrs().i("start", 0));
  const int64_t end = clamp(ctx.attrs().i("end", rank));
  Tensor& out = ctx.output(0);
  for (int64_t i = start; i < end; ++i) out.data<int64_t>()[i - start] = d[static_cast<size_t>(i)];
  return Status::Ok();
}

Status size_kernel(KernelContext& ctx) {
  *ctx.output(0).data<int64_t>() = ctx.input(0).numel();
  return Status::Ok();
}

// The tensor is shared with the attribute (tensors are never written after they are made).
Status constant_kernel(KernelContext& ctx) {
  KILN_ASSIGN_OR_RETURN(Tensor t, constant_attr_value(ctx.node()));
  ctx.set_output(0, std::move(t));
  return Status::Ok();
}

Status constant_of_shape_kernel(KernelContext& ctx) {
  Tensor& out = ctx.output(0);
  const Tensor* value = ctx.attrs().tensor("value");
  if (!value) {  // default: float 0
    std::memset(out.raw_data(), 0, out.nbytes());
    return Status::Ok();
  }
  bool ok = dispatch_elem_size(dtype_size(out.dtype()), [&](auto tag) {
    using U = typename decltype(tag)::type;
    U v;
    std::memcpy(&v, value->raw_data(), sizeof(U));
    U* p = out.data<U>();
    for (int64_t i = 0; i < out.numel(); ++i) p[i] = v;
  });
  return ok ? Status::Ok() : ctx.unsupported_dtype(out.dtype());
}

Status range_kernel(KernelContext& ctx) {
  Tensor& out = ctx.output(0);
  const DType t = out.dtype();
  if (t != DType::kFloat32 && t != DType::kFloat64 && t != DType::kInt16 && t != DType::kInt32 &&
      t != DType::kInt64)
    return ctx.unsupported_dtype(t);
  dispatch_dtype(t, [&](auto tag) {
    using T = typename decltype(tag)::type;
    if constexpr (std::is_integral_v<T>) {
      const int64_t s = ctx.input(0).data<T>()[0], d = ctx.input(2).data<T>()[0];
      for (int64_t i = 0; i < out.numel(); ++i) out.data<T>()[i] = static_cast<T>(s + i * d);
    } else {
      const double s = ctx.input(0).scalar_as_double(), d = ctx.input(2).scalar_as_double();
      for (int64_t i = 0; i < out.numel(); ++i) out.data<T>()[i] = static_cast<T>(s + static_cast<double>(i) * d);
    }
  });
  return Status::Ok();
}

Status eye_like_kernel(KernelContext& ctx) {
  Tensor& out = ctx.output(0);
  std::memset(out.raw_data(), 0, out.nbytes());
  const int64_t rows = out.dim(0), cols = out.dim(1), k = ctx.attrs().i("k", 0);
  bool ok = dispatch_dtype(out.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    T one;
    if constexpr (std::is_same_v<T, Half> || std::is_same_v<T, BFloat16>) one = T(1.0f);
    else one = static_cast<T>(1);
    for (int64_t r = 0; r < rows; ++r) {
      int64_t c = r + k;
      if (c >= 0 && c < cols) out.data<T>()[r * cols + c] = one;
    }
  });
  return ok ? Status::Ok() : ctx.unsupported_dtype(out.dtype());
}

}  // namespace
}  // namespace kiln

KILN_REGISTER_CPU_KERNEL("Shape", kiln::shape_kernel);
KILN_REGISTER_CPU_KERNEL("Size", kiln::size_kernel);
KILN_REGISTER_CPU_KERNEL("Constant", kiln::constant_kernel);
KILN_REGISTER_CPU_KERNEL("ConstantOfShape", kiln::constant_of_shape_kernel);
KILN_REGISTER_CPU_KERNEL("Range", kiln::range_kernel);
KILN_REGISTER_CPU_KERNEL("EyeLike", kiln::eye_like_kernel);
