// Expand and Tile as strided copies: broadcast and repeated axes read with stride 0.
#include "backends/cpu/copy_util.hpp"
#include "ops/op_registry.hpp"

namespace kiln {
namespace {

Status expand_kernel(KernelContext& ctx) {
  const Tensor& in = ctx.input(0);
  Tensor& out = ctx.output(0);
  const size_t es = dtype_size(in.dtype());
  if (es == 0) return ctx.unsupported_dtype(in.dtype());
  const std::vector<int64_t> in_strides = contiguous_strides(in.dims());
  std::vector<int64_t> strides(static_cast<size_t>(out.rank()), 0);
  const size_t off = static_cast<size_t>(out.rank() - in.rank());
  for (size_t i = 0; i < static_cast<size_t>(in.rank()); ++i)
    if (in.dims()[i] != 1) strides[off + i] = in_strides[i];
  strided_copy(out.raw_data(), in.raw_data(), out.dims(), strides, es);
  return Status::Ok();
}

// The output [r0*d0, r1*d1, ...] has the layout of [r0, d0, r1, d1, ...]: copy with the repeat axes
// read at stride 0.
Status tile_kernel(KernelContext& ctx) {
  const Tensor& in = ctx.input(0);
  Tensor& out = ctx.output(0);
  const size_t es = dtype_size(in.dtype());
  if (es == 0) return ctx.unsupported_dtype(in.dtype());
  KILN_ASSIGN_OR_RETURN(auto repeats, ctx.input(1).to_int64_vector());
  const std::vector<int64_t> in_strides = contiguous_strides(in.dims());
  Dims dims;
  std::vector<int64_t> strides;
  for (size_t i = 0; i < static_cast<size_t>(in.rank()); ++i) {
    dims.insert(dims.end(), {repeats[i], in.dims()[i]});
    strides.insert(strides.end(), {0, in_strides[i]});
  }
  strided_copy(out.raw_data(), in.raw_data(), dims, strides, es);
  return Status::Ok();
}

}  // namespace
}  // namespace kiln

KILN_REGISTER_CPU_KERNEL("Expand", kiln::expand_kernel);
KILN_REGISTER_CPU_KERNEL("Tile", kiln::tile_kernel);
