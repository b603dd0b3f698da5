// ScatterND and ScatterElements: the output starts as a copy of data; updates are written (or
// combined with the reduction) in index order, so later duplicates win for reduction "none".
#include <cstring>

#include "backends/cpu/copy_util.hpp"
#include "ops/op_registry.hpp"

namespace kiln {
namespace {

enum class Reduction { kNone, kAdd, kMul, kMax, kMin };

Reduction reduction_of(const KernelContext& ctx) {
  const std::string r = ctx.attrs().s("reduction", "none");
  return r == "add" ? Reduction::kAdd : r == "mul" ? Reduction::kMul : r == "max" ? Reduction::kMax
         : r == "min" ? Reduction::kMin : Reduction::kNone;
}

// Applies dst[d] op= src[s] for each (d, s) pair produced by `for_each(fn)`.
template <typename ForEach>
Status apply_updates(KernelContext& ctx, Reduction red, ForEach&& for_each) {
  const Tensor& data = ctx.input(0);
  const Tensor& updates = ctx.input(2);
  Tensor& out = ctx.output(0);
  std::memcpy(out.raw_data(), data.raw_data(), data.nbytes());
  if (red == Reduction::kNone) {
    bool ok = dispatch_elem_size(dtype_size(data.dtype()), [&](auto tag) {
      using U = typename decltype(tag)::type;
      U* d = out.data<U>();
      const U* s = updates.data<U>();
      for_each([&](int64_t di, int64_t si) { d[di] = s[si]; });
    });
    return ok ? Status::Ok() : ctx.unsupported_dtype(data.dtype());
  }
  if (data.dtype() == DType::kBool) return ctx.unsupported_dtype(data.dtype());
  bool ok = dispatch_dtype(data.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    using C = compute_t<T>;
    T* d = out.data<T>();
    const T* s = updates.data<T>();
    for_each([&](int64_t di, int64_t si) {
      const C a = static_cast<C>(d[di]), b = static_cast<C>(s[si]);
      C r = a;
      switch (red) {
        case Reduction::kAdd: r = static_cast<C>(a + b); break;
        case Reduction::kMul: r = static_cast<C>(a * b); break;
        case Reduction::kMax: r = std::max(a, b); break;
        case Reduction::kMin: r = std::min(a, b); break;
        case Reduction::kNone: r = b; break;
      }
      if constexpr (std::is_same_v<T, Half> || std::is_same_v<T, BFloat16>) d[di] = T(r);
      else d[di] = r;
    });
  });
  return ok ? Status::Ok() : ctx.unsupported_dtype(data.dtype());
}

Status scatter_nd_kernel(KernelContext& ctx) {
  const Tensor& data = ctx.input(0);
  const Tensor& indices = ctx.input(1);
  const int64_t k = indices.dims().back();
  int64_t tuples = 1;
  for (int i = 0; i + 1 < indices.rank(); ++i) tuples *= indices.dims()[static_cast<size_t>(i)];
  const std::vector<int64_t> strides = contiguous_strides(data.dims());
  const int64_t slice = k > 0 ? strides[static_cast<size_t>(k - 1)] : data.numel();
  if (ctx.input(2).numel() != tuples * slice)
    return ctx.error("updates {} do not match data {} and indices {}", ctx.input(2).describe(), data.describe(),
                     indices.describe());
  KILN_ASSIGN_OR_RETURN(auto idx, indices.to_int64_vector());
  // Resolve every tuple to a flat offset first so that a bad index fails before any write.
  std::vector<int64_t> offsets(static_cast<size_t>(tuples));
  for (int64_t t = 0; t < tuples; ++t) {
    int64_t off = 0;
    for (int64_t j = 0; j < k; ++j) {
      const int64_t dim = data.dims()[static_cast<size_t>(j)];
      int64_t i = idx[static_cast<size_t>(t * k + j)];
      if (i < -dim || i >= dim) return ctx.error("index {} is out of range for axis {} of size {}", i, j, dim);
      off += (i < 0 ? i + dim : i) * strides[static_cast<size_t>(j)];
    }
    offsets[static_cast<size_t>(t)] = off;
  }
  return apply_updates(ctx, reduction_of(ctx), [&](auto&& op) {
    for (int64_t t = 0; t < tuples; ++t)
      for (int64_t e = 0; e < slice; ++e) op(offsets[static_cast<size_t>(t)] + e, t * slice + e);
  });
}

Status scatter_elements_kernel(KernelContext& ctx) {
  const Tensor& data = ctx.input(0);
  const Tensor& indices = ctx.input(1);
  const int64_t rank = data.rank();
  int64_t axis = ctx.attrs().i("axis", 0);
  if (axis < 0) axis += rank;
  if (ctx.input(2).dims() != indices.dims())
    return ctx.error("updates {} must have the shape of indices {}", ctx.input(2).describe(), indices.describe());
  for (int64_t k = 0; k < rank; ++k)
    if (k != axis && indices.dims()[static_cast<size_t>(k)] > data.dims()[static_cast<size_t>(k)])
      return ctx.error("indices shape {} exceeds data shape {} at axis {}", dims_to_string(indices.dims()),
                       dims_to_string(data.dims()), k);
  KILN_ASSIGN_OR_RETURN(auto idx, indices.to_int64_vector());
  const int64_t dim = data.dims()[static_cast<size_t>(axis)];
  const std::vector<int64_t> strides = contiguous_strides(data.dims());
  std::vector<int64_t> offsets(idx.size());
  if (!idx.empty()) {
    std::vector<int64_t> pos(static_cast<size_t>(rank), 0);
    size_t n = 0;
    do {
      int64_t i = idx[n];
      if (i < -dim || i >= dim) return ctx.error("index {} is out of range for axis {} of size {}", i, axis, dim);
      int64_t off = 0;
      for (int64_t k = 0; k < rank; ++k)
        off += (k == axis ? (i < 0 ? i + dim : i) : pos[static_cast<size_t>(k)]) * strides[static_cast<size_t>(k)];
      offsets[n++] = off;
    } while (next_index(pos, indices.dims()));
  }
  return apply_updates(ctx, reduction_of(ctx), [&](auto&& op) {
    for (size_t n = 0; n < offsets.size(); ++n) op(offsets[n], static_cast<int64_t>(n));
  });
}

}  // namespace
}  // namespace kiln

KILN_REGISTER_CPU_KERNEL("ScatterND", kiln::scatter_nd_kernel);
KILN_REGISTER_CPU_KERNEL("ScatterElements", kiln::scatter_elements_kernel);
