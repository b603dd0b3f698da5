// Compress, NonZero, Unique: data-dependent output sizes, allocated by the kernels.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>

#include "backends/cpu/copy_util.hpp"
#include "ops/op_registry.hpp"

namespace kiln {
namespace {

Status compress_kernel(KernelContext& ctx) {
  const Tensor& in = ctx.input(0);
  const Tensor& cond = ctx.input(1);
  if (cond.dtype() != DType::kBool) return ctx.error("condition must be bool, got {}", cond.describe());
  const size_t es = dtype_size(in.dtype());
  if (es == 0) return ctx.unsupported_dtype(in.dtype());
  const bool has_axis = ctx.attrs().has("axis");
  int64_t axis = ctx.attrs().i("axis", 0);
  if (axis < 0) axis += in.rank();
  const int64_t dim = has_axis ? in.dims()[static_cast<size_t>(axis)] : in.numel();
  if (cond.numel() > dim)
    return ctx.error("condition has {} values, more than the {} elements it selects from", cond.numel(), dim);
  std::vector<int64_t> keep;
  for (int64_t i = 0; i < cond.numel(); ++i)
    if (cond.data<bool>()[i]) keep.push_back(i);
  Dims out_dims = has_axis ? in.dims() : Dims{};
  if (has_axis) out_dims[static_cast<size_t>(axis)] = static_cast<int64_t>(keep.size());
  else out_dims.push_back(static_cast<int64_t>(keep.size()));
  Tensor& out = ctx.allocate_output(0, in.dtype(), out_dims);
  int64_t outer = 1, inner = 1;
  for (int64_t k = 0; has_axis && k < in.rank(); ++k) {
    if (k < axis) outer *= in.dims()[static_cast<size_t>(k)];
    if (k > axis) inner *= in.dims()[static_cast<size_t>(k)];
  }
  const size_t block = static_cast<size_t>(inner) * es;
  const char* src = static_cast<const char*>(in.raw_data());
  char* dst = static_cast<char*>(out.raw_data());
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i : keep) {
      std::memcpy(dst, src + static_cast<size_t>(o * dim + i) * block, block);
      dst += block;
    }
  return Status::Ok();
}

Status non_zero_kernel(KernelContext& ctx) {
  const Tensor& in = ctx.input(0);
  std::vector<int64_t> flat;
  bool ok = dispatch_dtype(in.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* p = in.data<T>();
    for (int64_t i = 0; i < in.numel(); ++i)
      if (static_cast<compute_t<T>>(p[i]) != compute_t<T>(0)) flat.push_back(i);
  });
  if (!ok) return ctx.unsupported_dtype(in.dtype());
  const Dims dims = in.rank() == 0 ? Dims{1} : in.dims();
  const int64_t n = static_cast<int64_t>(flat.size()), r = static_cast<int64_t>(dims.size());
  Tensor& out = ctx.allocate_output(0, DType::kInt64, {r, n});
  int64_t* p = out.data<int64_t>();
  for (int64_t j = 0; j < n; ++j) {
    int64_t f = flat[static_cast<size_t>(j)];
    for (int64_t k = r - 1; k >= 0; --k) {
      p[k * n + j] = f % dims[static_cast<size_t>(k)];
      f /= dims[static_cast<size_t>(k)];
    }
  }
  return Status::Ok();
}

// Unique over elements (no axis) or over slices along an axis. Slices are compared element by
// element in row-major order of the other dims; with sorted=1 the output is in ascending order.
Status unique_kernel(KernelContext& ctx) {
  const Tensor& in = ctx.input(0);
  const bool has_axis = ctx.attrs().has("axis");
  int64_t axis = ctx.attrs().i("axis", 0);
  if (axis < 0) axis += in.rank();
  int64_t outer = 1, n = in.numel(), inner = 1;
  if (has_axis) {
    n = in.dims()[static_cast<size_t>(axis)];
    for (int64_t k = 0; k < in.rank(); ++k) {
      if (k < axis) outer *= in.dims()[static_cast<size_t>(k)];
      if (k > axis) inner *= in.dims()[static_cast<size_t>(k)];
    }
  }
  // Slice s, element e (e over outer*inner) sits at ((o * n + s) * inner + i).
  auto offset = [&](int64_t s, int64_t e) { return ((e / inner) * n + s) * inner + e % inner; };
  const int64_t len = outer * inner;
  std::vector<int64_t> order(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), 0);
  std::vector<int64_t> group(static_cast<size_t>(n));  // each slice's representative (first occurrence)
  bool ok = dispatch_dtype(in.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    using C = compute_t<T>;
    const T* p = in.data<T>();
    auto cmp = [&](int64_t a, int64_t b) {  // -1, 0, 1
      for (int64_t e = 0; e < len; ++e) {
        C x = static_cast<C>(p[offset(a, e)]), y = static_cast<C>(p[offset(b, e)]);
        if constexpr (std::is_floating_point_v<C>) {
          // NaNs sort last and equal each other, keeping the order strict.
          if (std::isnan(x) || std::isnan(y)) {
            if (std::isnan(x) && std::isnan(y)) continue;
            return std::isnan(x) ? 1 : -1;
          }
        }
        if (x < y) return -1;
        if (y < x) return 1;
      }
      return 0;
    };
    std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return cmp(a, b) < 0; });
    for (size_t i = 0; i < order.size(); ++i)
      group[static_cast<size_t>(order[i])] = i > 0 && cmp(order[i - 1], order[i]) == 0 ? group[static_cast<size_t>(order[i - 1])] : order[i];
  });
  if (!ok) return ctx.unsupported_dtype(in.dtype());
  // Distinct slices by first occurrence, in sorted order (sorted=1) or order of appearance.
  std::vector<int64_t> firsts;
  if (ctx.attrs().i("sorted", 1) != 0) {
    for (int64_t s : order)
      if (group[static_cast<size_t>(s)] == s) firsts.push_back(s);
  } else {
    for (int64_t s = 0; s < n; ++s)
      if (group[static_cast<size_t>(s)] == s) firsts.push_back(s);
  }
  const int64_t u = static_cast<int64_t>(firsts.size());
  std::vector<int64_t> position(static_cast<size_t>(n), 0), counts(static_cast<size_t>(u), 0);
  for (int64_t i = 0; i < u; ++i) position[static_cast<size_t>(firsts[static_cast<size_t>(i)])] = i;
  for (int64_t s = 0; s < n; ++s) ++counts[static_cast<size_t>(position[static_cast<size_t>(group[static_cast<size_t>(s)])])];

  Dims y_dims = has_axis ? in.dims() : Dims{u};
  if (has_axis) y_dims[static_cast<size_t>(axis)] = u;
  Tensor& y = ctx.allocate_output(0, in.dtype(), y_dims);
  const size_t es = dtype_size(in.dtype());
  const char* src = static_cast<const char*>(in.raw_data());
  char* dst = static_cast<char*>(y.raw_data());
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t s : firsts) {
      std::memcpy(dst, src + static_cast<size_t>((o * n + s) * inner) * es, static_cast<size_t>(inner) * es);
      dst += static_cast<size_t>(inner) * es;
    }
  auto write = [&](size_t out, const std::vector<int64_t>& v) {
    if (out < ctx.num_outputs()) {
      Tensor& t = ctx.allocate_output(out, DType::kInt64, {static_cast<int64_t>(v.size())});
      std::copy(v.begin(), v.end(), t.data<int64_t>());
    }
  };
  std::vector<int64_t> inverse(static_cast<size_t>(n));
  for (int64_t s = 0; s < n; ++s) inverse[static_cast<size_t>(s)] = position[static_cast<size_t>(group[static_cast<size_t>(s)])];
  write(1, firsts);
  write(2, inverse);
  write(3, counts);
  return Status::Ok();
}

}  // namespace
}  // namespace kiln

KILN_REGISTER_CPU_KERNEL("Compress", kiln::compress_kernel);
KILN_REGISTER_CPU_KERNEL("NonZero", kiln::non_zero_kernel);
KILN_REGISTER_CPU_KERNEL("Unique", kiln::unique_kernel);
