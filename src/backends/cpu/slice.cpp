// Slice: a strided copy (negative steps walk backwards), any dtype.
#include "backends/cpu/copy_util.hpp"
#include "ops/slice.hpp"

namespace kiln {
namespace {

Status slice_kernel(KernelContext& ctx) {
  const Tensor& in = ctx.input(0);
  auto list = [&](size_t i) -> std::optional<std::vector<int64_t>> {
    if (!ctx.has_input(i)) return std::nullopt;
    auto v = ctx.input(i).to_int64_vector();
    return v ? std::optional(*v) : std::nullopt;
  };
  auto starts = list(1), ends = list(2);
  if (!starts || !ends) return ctx.error("starts and ends must be integer tensors");
  KILN_ASSIGN_OR_RETURN(auto specs, slice_specs(ctx.node(), in.rank(), *starts, *ends, list(3), list(4)));
  std::vector<int64_t> strides = contiguous_strides(in.dims());
  Dims dims = in.dims();
  int64_t offset = 0;
  for (const SliceSpec& s : specs) {
    const size_t a = static_cast<size_t>(s.axis);
    SliceRange r = slice_range(dims[a], s);
    dims[a] = r.count;
    if (r.count > 0) offset += r.first * strides[a];
    // With one element the step is never taken (and a huge step would overflow).
    strides[a] = r.count > 1 ? strides[a] * s.step : 0;
  }
  Tensor& out = ctx.output(0);
  if (out.dims() != dims) return ctx.error("inferred shape {} differs from {}", out.describe(), dims_to_string(dims));
  const size_t es = dtype_size(in.dtype());
  if (es == 0) return ctx.unsupported_dtype(in.dtype());
  strided_copy(out.raw_data(), static_cast<const char*>(in.raw_data()) + static_cast<size_t>(offset) * es, dims,
               strides, es);
  return Status::Ok();
}

}  // namespace
}  // namespace kiln

KILN_REGISTER_CPU_KERNEL("Slice", kiln::slice_kernel);
