// Gather, GatherElements, GatherND: element moves by size, indices checked against the data.
#include <cstring>

#include "backends/cpu/copy_util.hpp"
#include "ops/op_registry.hpp"

namespace kiln {
namespace {

// The indices as int64 with negative values wrapped; error naming the bad index.
Expected<std::vector<int64_t>> wrapped_indices(const KernelContext& ctx, const Tensor& t, int64_t dim, int64_t axis) {
  KILN_ASSIGN_OR_RETURN(auto v, t.to_int64_vector());
  for (int64_t& i : v) {
    if (i < -dim || i >= dim) return ctx.error("index {} is out of range for axis {} of size {}", i, axis, dim);
    if (i < 0) i += dim;
  }
  return v;
}

Status gather_kernel(KernelContext& ctx) {
  const Tensor& data = ctx.input(0);
  const int64_t rank = data.rank();
  int64_t axis = ctx.attrs().i("axis", 0);
  if (axis < 0) axis += rank;
  const int64_t dim = data.dims()[static_cast<size_t>(axis)];
  KILN_ASSIGN_OR_RETURN(auto idx, wrapped_indices(ctx, ctx.input(1), dim, axis));
  int64_t outer = 1, inner = 1;
  for (int64_t k = 0; k < rank; ++k) {
    if (k < axis) outer *= data.dims()[static_cast<size_t>(k)];
    if (k > axis) inner *= data.dims()[static_cast<size_t>(k)];
  }
  const size_t es = dtype_size(data.dtype());
  if (es == 0) return ctx.unsupported_dtype(data.dtype());
  const size_t block = static_cast<size_t>(inner) * es;
  const char* src = static_cast<const char*>(data.raw_data());
  char* dst = static_cast<char*>(ctx.output(0).raw_data());
  for (int64_t o = 0; o < outer; ++o) {
    for (int64_t j : idx) {
      std::memcpy(dst, src + static_cast<size_t>(o * dim + j) * block, block);
      dst += block;
    }
  }
  return Status::Ok();
}

Status gather_elements_kernel(KernelContext& ctx) {
  const Tensor& data = ctx.input(0);
  const Tensor& indices = ctx.input(1);
  const int64_t rank = data.rank();
  int64_t axis = ctx.attrs().i("axis", 0);
  if (axis < 0) axis += rank;
  for (int64_t k = 0; k < rank; ++k)
    if (k != axis && indices.dims()[static_cast<size_t>(k)] > data.dims()[static_cast<size_t>(k)])
      return ctx.error("indices shape {} exceeds data shape {} at axis {}", dims_to_string(indices.dims()),
                       dims_to_string(data.dims()), k);
  KILN_ASSIGN_OR_RETURN(auto idx, wrapped_indices(ctx, indices, data.dims()[static_cast<size_t>(axis)], axis));
  Tensor& out = ctx.output(0);
  if (idx.empty()) return Status::Ok();
  const std::vector<int64_t> strides = contiguous_strides(data.dims());
  bool ok = dispatch_elem_size(dtype_size(data.dtype()), [&](auto tag) {
    using U = typename decltype(tag)::type;
    const U* src = data.data<U>();
    U* dst = out.data<U>();
    std::vector<int64_t> pos(static_cast<size_t>(rank), 0);
    size_t n = 0;
    do {
      int64_t off = 0;
      for (int64_t k = 0; k < rank; ++k)
        off += (k == axis ? idx[n] : pos[static_cast<size_t>(k)]) * strides[static_cast<size_t>(k)];
      dst[n++] = src[off];
    } while (next_index(pos, indices.dims()));
  });
  return ok ? Status::Ok() : ctx.unsupported_dtype(data.dtype());
}

Status gather_nd_kernel(KernelContext& ctx) {
  const Tensor& data = ctx.input(0);
  const Tensor& indices = ctx.input(1);
  const int64_t b = ctx.attrs().i("batch_dims", 0);
  const int64_t q = indices.rank(), k = indices.dims().back();
  KILN_ASSIGN_OR_RETURN(auto idx, indices.to_int64_vector());
  const std::vector<int64_t> strides = contiguous_strides(data.dims());
  int64_t batches = 1, tuples_per_batch = 1;
  for (int64_t i = 0; i < b; ++i) batches *= data.dims()[static_cast<size_t>(i)];
  for (int64_t i = b; i < q - 1; ++i) tuples_per_batch *= indices.dims()[static_cast<size_t>(i)];
  const int64_t batch_stride = b > 0 ? strides[static_cast<size_t>(b - 1)] : 0;
  const int64_t slice = strides[static_cast<size_t>(b + k - 1)];  // elements of data.dims[b+k:]
  const size_t es = dtype_size(data.dtype());
  if (es == 0) return ctx.unsupported_dtype(data.dtype());
  const char* src = static_cast<const char*>(data.raw_data());
  char* dst = static_cast<char*>(ctx.output(0).raw_data());
  const int64_t* tuple = idx.data();
  for (int64_t bi = 0; bi < batches; ++bi) {
    for (int64_t t = 0; t < tuples_per_batch; ++t, tuple += k) {
      int64_t off = bi * batch_stride;
      for (int64_t j = 0; j < k; ++j) {
        const int64_t dim = data.dims()[static_cast<size_t>(b + j)];
        int64_t i = tuple[j];
        if (i < -dim || i >= dim) return ctx.error("index {} is out of range for axis {} of size {}", i, b + j, dim);
        off += (i < 0 ? i + dim : i) * strides[static_cast<size_t>(b + j)];
      }
      std::memcpy(dst, src + static_cast<size_t>(off) * es, static_cast<size_t>(slice) * es);
      dst += static_cast<size_t>(slice) * es;
    }
  }
  return Status::Ok();
}

}  // namespace
}  // namespace kiln

KILN_REGISTER_CPU_KERNEL("Gather", kiln::gather_kernel);
KILN_REGISTER_CPU_KERNEL("GatherElements", kiln::gather_elements_kernel);
KILN_REGISTER_CPU_KERNEL("GatherND", kiln::gather_nd_kernel);
