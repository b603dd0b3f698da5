// Concat and Split: block copies along one axis, any dtype.
#include <cstring>

#include "ops/op_registry.hpp"

namespace kiln {
namespace {

size_t positive_axis(int64_t axis, int rank) { return static_cast<size_t>(axis < 0 ? axis + rank : axis); }

Status concat_kernel(KernelContext& ctx) {
  Tensor& out = ctx.output(0);
  const size_t es = dtype_size(out.dtype());
  if (es == 0) return ctx.unsupported_dtype(out.dtype());
  const size_t axis = positive_axis(ctx.attrs().i("axis"), out.rank());
  auto [outer, inner] = dims_outer_inner(out.dims(), axis);
  char* dst = static_cast<char*>(out.raw_data());
  for (int64_t o = 0; o < outer; ++o) {
    for (size_t i = 0; i < ctx.num_inputs(); ++i) {
      const Tensor& in = ctx.input(i);
      const size_t block = static_cast<size_t>(in.dims()[axis] * inner) * es;
      std::memcpy(dst, static_cast<const char*>(in.raw_data()) + static_cast<size_t>(o) * block, block);
      dst += block;
    }
  }
  return Status::Ok();
}

Status split_kernel(KernelContext& ctx) {
  const Tensor& in = ctx.input(0);
  const size_t es = dtype_size(in.dtype());
  if (es == 0) return ctx.unsupported_dtype(in.dtype());
  const size_t axis = positive_axis(ctx.attrs().i("axis", 0), in.rank());
  auto [outer, inner] = dims_outer_inner(in.dims(), axis);
  const size_t in_block = static_cast<size_t>(in.dims()[axis] * inner) * es;
  size_t offset = 0;  // bytes into one input block
  for (size_t i = 0; i < ctx.num_outputs(); ++i) {
    Tensor& out = ctx.output(i);
    const size_t block = static_cast<size_t>(out.dims()[axis] * inner) * es;
    const char* src = static_cast<const char*>(in.raw_data()) + offset;
    char* dst = static_cast<char*>(out.raw_data());
    for (int64_t o = 0; o < outer; ++o) std::memcpy(dst + static_cast<size_t>(o) * block, src + static_cast<size_t>(o) * in_block, block);
    offset += block;
  }
  return Status::Ok();
}

}  // namespace
}  // namespace kiln

KILN_REGISTER_CPU_KERNEL("Concat", kiln::concat_kernel);
KILN_REGISTER_CPU_KERNEL("Split", kiln::split_kernel);
