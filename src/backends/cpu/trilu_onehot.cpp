// Trilu, OneHot, ReverseSequence.
#include <cmath>
#include <cstring>

#include "backends/cpu/copy_util.hpp"
#include "ops/op_registry.hpp"

namespace kiln {
namespace {

// Copies the input and zeroes what falls outside the triangle (a zero is all-zero bytes in every dtype).
Status trilu_kernel(KernelContext& ctx) {
  const Tensor& in = ctx.input(0);
  Tensor& out = ctx.output(0);
  const size_t es = dtype_size(in.dtype());
  if (es == 0) return ctx.unsupported_dtype(in.dtype());
  int64_t k = 0;
  if (ctx.has_input(1)) {
    KILN_ASSIGN_OR_RETURN(auto kv, ctx.input(1).to_int64_vector());
    if (kv.size() != 1) return ctx.error("k must be a scalar, got {}", ctx.input(1).describe());
    k = kv[0];
  }
  const bool upper = ctx.attrs().i("upper", 1) != 0;
  std::memcpy(out.raw_data(), in.raw_data(), in.nbytes());
  const int64_t rows = in.dims()[static_cast<size_t>(in.rank() - 2)], cols = in.dims().back();
  if (rows * cols == 0) return Status::Ok();
  const int64_t mats = in.numel() / (rows * cols);
  char* p = static_cast<char*>(out.raw_data());
  for (int64_t m = 0; m < mats; ++m) {
    for (int64_t i = 0; i < rows; ++i) {
      // Upper keeps j >= i + k; lower keeps j <= i + k. Zero the rest of the row.
      char* row = p + static_cast<size_t>((m * rows + i) * cols) * es;
      const int64_t edge = std::clamp<int64_t>(upper ? i + k : i + k + 1, 0, cols);
      if (upper) std::memset(row, 0, static_cast<size_t>(edge) * es);
      else std::memset(row + static_cast<size_t>(edge) * es, 0, static_cast<size_t>(cols - edge) * es);
    }
  }
  return Status::Ok();
}

Status one_hot_kernel(KernelContext& ctx) {
  const Tensor& indices = ctx.input(0);
  const Tensor& values = ctx.input(2);
  Tensor& out = ctx.output(0);
  const size_t es = dtype_size(values.dtype());
  if (es == 0) return ctx.unsupported_dtype(values.dtype(), 2);
  if (values.numel() != 2) return ctx.error("values must hold 2 elements, got {}", values.describe());
  const int64_t depth = static_cast<int64_t>(ctx.input(1).scalar_as_double());
  const int64_t out_rank = out.rank();
  int64_t axis = ctx.attrs().i("axis", -1);
  if (axis < 0) axis += out_rank;
  int64_t outer = 1, inner = 1;
  for (int64_t k = 0; k < indices.rank(); ++k) (k < axis ? outer : inner) *= indices.dims()[static_cast<size_t>(k)];
  // Indices may be any numeric type: floating values are truncated toward zero.
  const std::vector<double> idx = indices.to_double_vector();
  const char* off = static_cast<const char*>(values.raw_data());
  const char* on = off + es;
  char* dst = static_cast<char*>(out.raw_data());
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t d = 0; d < depth; ++d)
      for (int64_t i = 0; i < inner; ++i) {
        int64_t v = static_cast<int64_t>(std::trunc(idx[static_cast<size_t>(o * inner + i)]));
        if (v < 0) v += depth;
        std::memcpy(dst, v == d ? on : off, es);
        dst += es;
      }
  return Status::Ok();
}

Status reverse_sequence_kernel(KernelContext& ctx) {
  const Tensor& in = ctx.input(0);
  Tensor& out = ctx.output(0);
  const size_t es = dtype_size(in.dtype());
  if (es == 0) return ctx.unsupported_dtype(in.dtype());
  const int64_t batch_axis = ctx.attrs().i("batch_axis", 1);
  KILN_ASSIGN_OR_RETURN(auto lens, ctx.input(1).to_int64_vector());
  const int64_t batch = in.dims()[static_cast<size_t>(batch_axis)], time = in.dims()[static_cast<size_t>(1 - batch_axis)];
  if (static_cast<int64_t>(lens.size()) != batch)
    return ctx.error("sequence_lens has {} values, but the batch dim is {}", lens.size(), batch);
  int64_t inner = 1;
  for (int k = 2; k < in.rank(); ++k) inner *= in.dims()[static_cast<size_t>(k)];
  const size_t block = static_cast<size_t>(inner) * es;
  // Offset (in blocks) of (batch b, time t) for either layout.
  auto at = [&](int64_t b, int64_t t) { return batch_axis == 0 ? b * time + t : t * batch + b; };
  const char* src = static_cast<const char*>(in.raw_data());
  char* dst = static_cast<char*>(out.raw_data());
  for (int64_t b = 0; b < batch; ++b) {
    const int64_t len = lens[static_cast<size_t>(b)];
    if (len < 0 || len > time) return ctx.error("sequence_lens[{}] = {} is outside [0, {}]", b, len, time);
    for (int64_t t = 0; t < time; ++t) {
      const int64_t from = t < len ? len - 1 - t : t;
      std::memcpy(dst + static_cast<size_t>(at(b, t)) * block, src + static_cast<size_t>(at(b, from)) * block, block);
    }
  }
  return Status::Ok();
}

}  // namespace
}  // namespace kiln

KILN_REGISTER_CPU_KERNEL("Trilu", kiln::trilu_kernel);
KILN_REGISTER_CPU_KERNEL("OneHot", kiln::one_hot_kernel);
KILN_REGISTER_CPU_KERNEL("ReverseSequence", kiln::reverse_sequence_kernel);
