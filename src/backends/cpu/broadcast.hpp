// Numpy-style broadcasting iteration for CPU kernels.
//
//   // out = a + b with broadcasting; Half/BFloat16 elements arrive as float.
//   if (!cpu::broadcast_map<float, float, float>(out, {&a, &b}, [](float x, float y) { return x + y; }))
//     return ctx.error("cannot broadcast {} and {}", a.describe(), b.describe());
//
// The shapes are first collapsed: size-1 output dims are dropped and adjacent dims that every
// operand walks the same way are merged. So same-shape operands become one contiguous loop, a
// scalar operand one loop with stride 0, and only true N-d broadcasts pay for an index counter.
#pragma once

#include <array>
#include <cstdint>
#include <tuple>
#include <utility>
#include <vector>

#include "backends/cpu/element_types.hpp"
#include "ir/tensor.hpp"

namespace kiln::cpu {

// The element strides (0 along broadcast dims) of N operands over a collapsed output shape.
template <size_t N>
struct BroadcastLayout {
  Dims shape;                    // collapsed output dims, outermost first; never empty
  std::array<Dims, N> strides;   // per operand, one stride per collapsed dim
};

// Computes the layout of `ins` broadcast to `out`. False when an operand does not broadcast to
// `out` (more dims than out, or a dim that is neither 1 nor out's).
template <size_t N>
bool make_broadcast_layout(const Dims& out, const std::array<const Dims*, N>& ins,
                           BroadcastLayout<N>& layout) {
  const size_t rank = out.size();
  std::array<Dims, N> full;
  for (size_t k = 0; k < N; ++k) {
    const Dims& in = *ins[k];
    if (in.size() > rank) return false;
    full[k].assign(rank, 0);
    int64_t stride = 1;
    for (size_t d = rank; d-- > 0;) {
      const size_t lead = rank - in.size();
      if (d < lead) break;  // missing leading dims broadcast (stride 0)
      const int64_t dim = in[d - lead];
      if (dim == out[d]) full[k][d] = dim == 1 ? 0 : stride;
      else if (dim != 1) return false;
      stride *= dim;
    }
  }
  layout.shape.clear();
  for (auto& s : layout.strides) s.clear();
  for (size_t d = 0; d < rank; ++d) {
    if (out[d] == 1) continue;  // contributes nothing to any offset
    bool merge = !layout.shape.empty();
    for (size_t k = 0; k < N && merge; ++k)
      merge = layout.strides[k].back() == full[k][d] * out[d];
    if (merge) {
      layout.shape.back() *= out[d];
      for (size_t k = 0; k < N; ++k) layout.strides[k].back() = full[k][d];
    } else {
      layout.shape.push_back(out[d]);
      for (size_t k = 0; k < N; ++k) layout.strides[k].push_back(full[k][d]);
    }
  }
  if (layout.shape.empty()) {  // a scalar (or all-ones) output: one element
    layout.shape.push_back(1);
    for (auto& s : layout.strides) s.push_back(0);
  }
  return true;
}

// Calls fn(out_offset, in_offsets, count, in_strides) for each run of the innermost collapsed dim:
// output elements [out_offset, out_offset + count) read operand k at in_offsets[k] + j * in_strides[k].
template <size_t N, typename Fn>
void for_each_broadcast_run(const BroadcastLayout<N>& layout, Fn&& fn) {
  const size_t rank = layout.shape.size();
  const int64_t inner = layout.shape[rank - 1];
  const int64_t total = dims_numel(layout.shape);
  if (total == 0) return;
  std::array<int64_t, N> inner_stride{};
  for (size_t k = 0; k < N; ++k) inner_stride[k] = layout.strides[k][rank - 1];
  std::array<int64_t, N> off{};
  Dims idx(rank, 0);
  for (int64_t out_off = 0; out_off < total; out_off += inner) {
    fn(out_off, off, inner, inner_stride);
    for (size_t d = rank - 1; d-- > 0;) {  // odometer over the outer dims
      for (size_t k = 0; k < N; ++k) off[k] += layout.strides[k][d];
      if (++idx[d] < layout.shape[d]) break;
      for (size_t k = 0; k < N; ++k) off[k] -= layout.strides[k][d] * layout.shape[d];
      idx[d] = 0;
    }
  }
}

namespace detail {
template <typename TO, typename... TI, typename F, size_t... K>
bool broadcast_map_impl(Tensor& out, const std::array<const Tensor*, sizeof...(TI)>& ins, F& f,
                        std::index_sequence<K...>) {
  constexpr size_t N = sizeof...(TI);
  BroadcastLayout<N> layout;
  if (!make_broadcast_layout<N>(out.dims(), {&ins[K]->dims()...}, layout)) return false;
  TO* o = out.data<TO>();
  const std::tuple<const TI*...> p{ins[K]->template data<TI>()...};
  for_each_broadcast_run(layout, [&](int64_t oo, const std::array<int64_t, N>& off, int64_t n,
                                     const std::array<int64_t, N>& st) {
    if (((st[K] == 1) && ...)) {  // contiguous operands: a loop the compiler can vectorize
      const std::tuple<const TI*...> q{std::get<K>(p) + off[K]...};
      for (int64_t j = 0; j < n; ++j) o[oo + j] = store<TO>(f(load(std::get<K>(q)[j])...));
    } else {
      for (int64_t j = 0; j < n; ++j)
        o[oo + j] = store<TO>(f(load(std::get<K>(p)[off[K] + j * st[K]])...));
    }
  });
  return true;
}
}  // namespace detail

// out[i] = f(in_0[..], ..., in_{N-1}[..]) over out's shape, each operand broadcast to it. TO and
// TI... are the element types of out and of the operands (out's dims must already be the
// broadcast shape); f receives compute-type values (float for Half/BFloat16) and its result is
// stored with cpu::store. `out` may be one of the operands when it has out's shape. Returns false
// (writing nothing) when an operand does not broadcast to out's dims.
template <typename TO, typename... TI, typename F>
[[nodiscard]] bool broadcast_map(Tensor& out, const std::array<const Tensor*, sizeof...(TI)>& ins, F&& f) {
  return detail::broadcast_map_impl<TO, TI...>(out, ins, f, std::index_sequence_for<TI...>{});
}

}  // namespace kiln::cpu
