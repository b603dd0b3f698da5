// Transpose, DepthToSpace, SpaceToDepth: each is a permuted strided copy of a (reshaped) input.
#include "backends/cpu/copy_util.hpp"
#include "ops/op_registry.hpp"

namespace kiln {
namespace {

// out = transpose(reshape(in, dims), perm), written contiguously into output 0.
Status permute_into_output(KernelContext& ctx, const Dims& dims, const std::vector<int64_t>& perm) {
  const Tensor& in = ctx.input(0);
  Tensor& out = ctx.output(0);
  std::vector<int64_t> in_strides = contiguous_strides(dims), strides;
  Dims out_dims;
  for (int64_t p : perm) {
    out_dims.push_back(dims[static_cast<size_t>(p)]);
    strides.push_back(in_strides[static_cast<size_t>(p)]);
  }
  if (dtype_size(in.dtype()) == 0) return ctx.unsupported_dtype(in.dtype());
  strided_copy(out.raw_data(), in.raw_data(), out_dims, strides, dtype_size(in.dtype()));
  return Status::Ok();
}

Status transpose_kernel(KernelContext& ctx) {
  const int rank = ctx.input(0).rank();
  std::vector<int64_t> perm = ctx.attrs().ints("perm");
  if (!ctx.attrs().has("perm"))
    for (int i = rank - 1; i >= 0; --i) perm.push_back(i);
  return permute_into_output(ctx, ctx.input(0).dims(), perm);
}

Status depth_to_space_kernel(KernelContext& ctx) {
  const Dims& d = ctx.input(0).dims();
  const int64_t b = ctx.attrs().i("blocksize"), c = d[1] / (b * b);
  if (ctx.attrs().s("mode", "DCR") == "DCR")
    return permute_into_output(ctx, {d[0], b, b, c, d[2], d[3]}, {0, 3, 4, 1, 5, 2});
  return permute_into_output(ctx, {d[0], c, b, b, d[2], d[3]}, {0, 1, 4, 2, 5, 3});
}

Status space_to_depth_kernel(KernelContext& ctx) {
  const Dims& d = ctx.input(0).dims();
  const int64_t b = ctx.attrs().i("blocksize");
  return permute_into_output(ctx, {d[0], d[1], d[2] / b, b, d[3] / b, b}, {0, 3, 5, 1, 2, 4});
}

}  // namespace
}  // namespace kiln

KILN_REGISTER_CPU_KERNEL("Transpose", kiln::transpose_kernel);
KILN_REGISTER_CPU_KERNEL("DepthToSpace", kiln::depth_to_space_kernel);
KILN_REGISTER_CPU_KERNEL("SpaceToDepth", kiln::space_to_depth_kernel);
