// MaxPool, AveragePool, LpPool and the Global pools on the CPU, over N spatial dims.
#include <cmath>
#include <limits>
#include <vector>

#include "ops/op_registry.hpp"
#include "ops/window_geometry.hpp"

namespace kiln {
namespace {

// For every output position of one (n, c) plane: the plane offsets of the window taps that fall
// inside the input, and how many taps fall inside the padded extent (count_include_pad).
// Built once per call and shared by all planes.
struct WindowTable {
  std::vector<int64_t> start;    // CSR: taps of output o are offsets[start[o] .. start[o + 1])
  std::vector<int64_t> offsets;
  std::vector<int64_t> padded_count;
};

WindowTable build_window_table(const Window& w) {
  const size_t nd = w.rank();
  // Per axis and output index: the valid input positions and the padded-extent count.
  std::vector<std::vector<std::vector<int64_t>>> axis_pos(nd);
  std::vector<std::vector<int64_t>> axis_padded(nd);
  for (size_t i = 0; i < nd; ++i) {
    for (int64_t o = 0; o < w.out[i]; ++o) {
      std::vector<int64_t> pos;
      int64_t padded = 0;
      for (int64_t k = 0; k < w.kernel[i]; ++k) {
        int64_t p = o * w.strides[i] + k * w.dilations[i] - w.pads_begin[i];
        if (p < w.in[i] + w.pads_end[i]) ++padded;
        if (p >= 0 && p < w.in[i]) pos.push_back(p);
      }
      axis_pos[i].push_back(std::move(pos));
      axis_padded[i].push_back(padded);
    }
  }
  int64_t out_size = 1;
  for (int64_t v : w.out) out_size *= v;
  WindowTable t;
  t.start.reserve(static_cast<size_t>(out_size) + 1);
  t.padded_count.reserve(static_cast<size_t>(out_size));
  Dims opos(nd, 0);
  for (int64_t o = 0; o < out_size; ++o) {
    t.start.push_back(static_cast<int64_t>(t.offsets.size()));
    int64_t padded = 1;
    bool empty = false;
    for (size_t i = 0; i < nd; ++i) {
      padded *= axis_padded[i][static_cast<size_t>(opos[i])];
      empty |= axis_pos[i][static_cast<size_t>(opos[i])].empty();
    }
    t.padded_count.push_back(padded);
    if (!empty) {
      // Cartesian product of the per-axis positions, row-major.
      Dims tap(nd, 0);
      while (true) {
        int64_t off = 0;
        for (size_t i = 0; i < nd; ++i) off = off * w.in[i] + axis_pos[i][static_cast<size_t>(opos[i])][static_cast<size_t>(tap[i])];
        t.offsets.push_back(off);
        size_t i = nd;
        while (i-- > 0) {
          if (++tap[i] < static_cast<int64_t>(axis_pos[i][static_cast<size_t>(opos[i])].size())) break;
          tap[i] = 0;
        }
        if (i == static_cast<size_t>(-1)) break;
      }
    }
    for (size_t i = nd; i-- > 0;) {
      if (++opos[i] < w.out[i]) break;
      opos[i] = 0;
    }
  }
  t.start.push_back(static_cast<int64_t>(t.offsets.size()));
  return t;
}

Dims spatial(const Dims& d) { return Dims(d.begin() + 2, d.end()); }

// Row-major plane offset -> column-major (first spatial dim fastest), for storage_order = 1.
int64_t column_major(int64_t off, const Dims& in) {
  int64_t result = 0, scale = 1;
  std::vector<int64_t> coord(in.size());
  for (size_t i = in.size(); i-- > 0;) {
    coord[i] = off % in[i];
    off /= in[i];
  }
  for (size_t i = 0; i < in.size(); ++i) {
    result += coord[i] * scale;
    scale *= in[i];
  }
  return result;
}

enum class PoolKind { kMax, kAverage, kLp };

template <PoolKind kKind>
Status pool_kernel(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  const DType dt = x.dtype();
  const bool floating = is_floating(dt);
  if (!floating && !(kKind == PoolKind::kMax && (dt == DType::kInt8 || dt == DType::kUInt8)))
    return ctx.unsupported_dtype(dt, 0);
  const bool ceil_mode = ctx.attrs().i("ceil_mode", 0) != 0;
  KILN_ASSIGN_OR_RETURN(Window w, resolve_window(ctx.node(), spatial(x.dims()), nullptr, ceil_mode));
  const WindowTable table = build_window_table(w);
  const bool include_pad = ctx.attrs().i("count_include_pad", 0) != 0;
  const double p = static_cast<double>(ctx.attrs().i("p", 2));
  const bool col_major = ctx.attrs().i("storage_order", 0) == 1;
  Tensor& y = ctx.output(0);
  Tensor* indices = kKind == PoolKind::kMax && ctx.num_outputs() > 1 && ctx.node().has_output(1) ? &ctx.output(1) : nullptr;
  const int64_t planes = x.dim(0) * x.dim(1);
  int64_t in_size = 1, out_size = 1;
  for (size_t i = 0; i < w.rank(); ++i) {
    in_size *= w.in[i];
    out_size *= w.out[i];
  }
  dispatch_dtype(dt, [&](auto tag) {
    using T = typename decltype(tag)::type;
    using C = compute_t<T>;
    if constexpr (std::is_same_v<T, bool>) return;
    else {
      const T* xd = x.data<T>();
      T* yd = y.data<T>();
      int64_t* id = indices ? indices->data<int64_t>() : nullptr;
      for (int64_t pl = 0; pl < planes; ++pl) {
        const T* xp = xd + pl * in_size;
        for (int64_t o = 0; o < out_size; ++o) {
          const int64_t* taps = table.offsets.data() + table.start[static_cast<size_t>(o)];
          const int64_t count = table.start[static_cast<size_t>(o) + 1] - table.start[static_cast<size_t>(o)];
          C result;
          if constexpr (kKind == PoolKind::kMax) {
            C best = std::numeric_limits<C>::lowest();
            int64_t best_off = count > 0 ? taps[0] : 0;
            for (int64_t t = 0; t < count; ++t) {
              C v = static_cast<C>(xp[taps[t]]);
              if (v > best || (t == 0 && !(v <= best))) {  // the first tap seeds NaN comparisons
                best = v;
                best_off = taps[t];
              }
            }
            result = best;
            if (id) id[pl * out_size + o] = pl * in_size + (col_major ? column_major(best_off, w.in) : best_off);
          } else if constexpr (kKind == PoolKind::kAverage) {
            C sum = 0;
            for (int64_t t = 0; t < count; ++t) sum += static_cast<C>(xp[taps[t]]);
            int64_t div = include_pad ? table.padded_count[static_cast<size_t>(o)] : count;
            result = div > 0 ? sum / static_cast<C>(div) : C(0);
          } else {
            double sum = 0;
            for (int64_t t = 0; t < count; ++t) sum += std::pow(std::abs(static_cast<double>(xp[taps[t]])), p);
            result = static_cast<C>(std::pow(sum, 1.0 / p));
          }
          yd[pl * out_size + o] = static_cast<T>(result);
        }
      }
    }
  });
  return Status::Ok();
}

template <PoolKind kKind>
Status global_pool_kernel(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  const DType dt = x.dtype();
  if (!is_floating(dt)) return ctx.unsupported_dtype(dt, 0);
  const int64_t planes = x.dim(0) * x.dim(1);
  const int64_t size = planes > 0 ? x.numel() / planes : 0;
  const double p = static_cast<double>(ctx.attrs().i("p", 2));
  Tensor& y = ctx.output(0);
  dispatch_dtype(dt, [&](auto tag) {
    using T = typename decltype(tag)::type;
    using C = compute_t<T>;
    if constexpr (std::is_floating_point_v<C>) {
      const T* xd = x.data<T>();
      T* yd = y.data<T>();
      for (int64_t pl = 0; pl < planes; ++pl) {
        const T* xp = xd + pl * size;
        C r;
        if constexpr (kKind == PoolKind::kMax) {
          r = size > 0 ? static_cast<C>(xp[0]) : C(0);
          for (int64_t i = 1; i < size; ++i) r = std::max(r, static_cast<C>(xp[i]));
        } else if constexpr (kKind == PoolKind::kAverage) {
          double sum = 0;  // long reductions (large feature maps) keep precision in double
          for (int64_t i = 0; i < size; ++i) sum += static_cast<double>(xp[i]);
          r = static_cast<C>(size > 0 ? sum / static_cast<double>(size) : 0.0);
        } else {
          double sum = 0;
          for (int64_t i = 0; i < size; ++i) sum += std::pow(std::abs(static_cast<double>(xp[i])), p);
          r = static_cast<C>(std::pow(sum, 1.0 / p));
        }
        yd[pl] = static_cast<T>(r);
      }
    }
  });
  return Status::Ok();
}

}  // namespace
}  // namespace kiln

KILN_REGISTER_CPU_KERNEL("MaxPool", kiln::pool_kernel<kiln::PoolKind::kMax>);
KILN_REGISTER_CPU_KERNEL("AveragePool", kiln::pool_kernel<kiln::PoolKind::kAverage>);
KILN_REGISTER_CPU_KERNEL("LpPool", kiln::pool_kernel<kiln::PoolKind::kLp>);
KILN_REGISTER_CPU_KERNEL("GlobalMaxPool", kiln::global_pool_kernel<kiln::PoolKind::kMax>);
KILN_REGISTER_CPU_KERNEL("GlobalAveragePool", kiln::global_pool_kernel<kiln::PoolKind::kAverage>);
KILN_REGISTER_CPU_KERNEL("GlobalLpPool", kiln::global_pool_kernel<kiln::PoolKind::kLp>);
