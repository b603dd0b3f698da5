// Pad and CenterCropPad: per-axis maps from output to source indices (-1 = fill value), then a
// row-by-row copy by element size. Negative pads crop first; the modes then apply to what is left.
#include <cstring>

#include "backends/cpu/copy_util.hpp"
#include "ops/pad.hpp"

namespace kiln {
namespace {

enum class PadMode { kConstant, kReflect, kEdge, kWrap };

// Source index (in the uncropped axis) for each output index of one axis.
std::vector<int64_t> axis_map(int64_t dim, int64_t out_dim, const PadAmount& p, PadMode mode) {
  const int64_t lo = std::max<int64_t>(0, -p.begin);           // first kept source index
  const int64_t n = dim - lo - std::max<int64_t>(0, -p.end);   // kept elements
  const int64_t before = std::max<int64_t>(0, p.begin);
  std::vector<int64_t> map(static_cast<size_t>(out_dim));
  for (int64_t o = 0; o < out_dim; ++o) {
    int64_t q = o - before;  // index into the kept range
    if (q < 0 || q >= n) {
      switch (mode) {
        case PadMode::kConstant: q = -1; break;
        case PadMode::kEdge: q = q < 0 ? 0 : n - 1; break;
        case PadMode::kWrap: q = ((q % n) + n) % n; break;
        case PadMode::kReflect: {
          if (n == 1) { q = 0; break; }
          const int64_t period = 2 * (n - 1);
          q = ((q % period) + period) % period;
          if (q >= n) q = period - q;
          break;
        }
      }
    }
    map[static_cast<size_t>(o)] = q < 0 ? -1 : q + lo;
  }
  return map;
}

Status pad_into(KernelContext& ctx, const std::vector<PadAmount>& amounts, PadMode mode, const void* fill) {
  const Tensor& in = ctx.input(0);
  Tensor& out = ctx.output(0);
  const int rank = in.rank();
  if (out.numel() == 0) return Status::Ok();
  if (rank == 0) {
    std::memcpy(out.raw_data(), in.raw_data(), dtype_size(in.dtype()));
    return Status::Ok();
  }
  std::vector<std::vector<int64_t>> maps;
  for (int k = 0; k < rank; ++k)
    maps.push_back(axis_map(in.dim(k), out.dim(k), amounts[static_cast<size_t>(k)], mode));
  const std::vector<int64_t> strides = contiguous_strides(in.dims());
  const Dims outer(out.dims().begin(), out.dims().end() - 1);
  const std::vector<int64_t>& inner_map = maps.back();
  bool ok = dispatch_elem_size(dtype_size(in.dtype()), [&](auto tag) {
    using U = typename decltype(tag)::type;
    U value{};
    if (fill) std::memcpy(&value, fill, sizeof(U));
    const U* src = in.data<U>();
    U* dst = out.data<U>();
    std::vector<int64_t> idx(outer.size(), 0);
    do {
      int64_t row = 0;
      bool filled = false;
      for (size_t k = 0; k < outer.size(); ++k) {
        int64_t s = maps[k][static_cast<size_t>(idx[k])];
        if (s < 0) filled = true;
        else row += s * strides[k];
      }
      for (int64_t s : inner_map) *dst++ = filled || s < 0 ? value : src[row + s];
    } while (next_index(idx, outer));
  });
  return ok ? Status::Ok() : ctx.unsupported_dtype(in.dtype());
}

Status pad_kernel(KernelContext& ctx) {
  const std::string m = ctx.attrs().s("mode", "constant");
  const PadMode mode = m == "reflect" ? PadMode::kReflect : m == "edge" ? PadMode::kEdge
                       : m == "wrap"  ? PadMode::kWrap : PadMode::kConstant;
  KILN_ASSIGN_OR_RETURN(auto pads, ctx.input(1).to_int64_vector());
  std::optional<std::vector<int64_t>> axes;
  if (ctx.has_input(3)) {
    KILN_ASSIGN_OR_RETURN(axes, ctx.input(3).to_int64_vector());
  }
  KILN_ASSIGN_OR_RETURN(auto amounts, pad_amounts(ctx.node(), ctx.input(0).rank(), pads, axes));
  const void* fill = nullptr;
  if (ctx.has_input(2) && ctx.input(2).numel() > 0) {
    if (ctx.input(2).dtype() != ctx.input(0).dtype())
      return ctx.error("constant_value {} must have the data's dtype {}", ctx.input(2).describe(),
                       dtype_name(ctx.input(0).dtype()));
    fill = ctx.input(2).raw_data();
  }
  return pad_into(ctx, amounts, mode, fill);
}

Status center_crop_pad_kernel(KernelContext& ctx) {
  KILN_ASSIGN_OR_RETURN(auto shape, ctx.input(1).to_int64_vector());
  KILN_ASSIGN_OR_RETURN(auto amounts, center_crop_pad_amounts(ctx.node(), ctx.input(0).dims(), shape));
  return pad_into(ctx, amounts, PadMode::kConstant, nullptr);
}

}  // namespace
}  // namespace kiln

KILN_REGISTER_CPU_KERNEL("Pad", kiln::pad_kernel);
KILN_REGISTER_CPU_KERNEL("CenterCropPad", kiln::center_crop_pad_kernel);
