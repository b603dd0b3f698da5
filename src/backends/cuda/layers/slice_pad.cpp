// Slice, Pad, Expand and Tile as per-axis index maps (any dtype, rank <= 8). The maps come from
// static shapes and constant inputs; a node whose maps do not reproduce its inferred output
// shape is left unsupported rather than guessed.
#include <algorithm>

#include "backends/cuda/layers/axis_map_layer.hpp"

namespace kiln::cuda {
namespace {

struct Shapes {
  Dims in, out;
};

std::optional<Shapes> io_shapes(const Node& n) {
  if (!n.has_input(0) || !n.has_output(0) || !all_static(n)) return std::nullopt;
  const DType t = n.inputs[0]->type.dtype;
  const size_t es = dtype_size(t);
  if (n.outputs[0]->type.dtype != t || !(es == 1 || es == 2 || es == 4 || es == 8)) return std::nullopt;
  Shapes s{*static_dims(n.inputs[0]), *static_dims(n.outputs[0])};
  if (s.out.size() > static_cast<size_t>(8)) return std::nullopt;
  return s;
}

AxisMaps identity_maps(const Dims& d) {
  AxisMaps m(d.size());
  for (size_t k = 0; k < d.size(); ++k)
    for (int64_t i = 0; i < d[k]; ++i) m[k].push_back(i);
  return m;
}

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }  // a >= 0, b > 0

// Slice (opset 13+): starts/ends/axes/steps inputs, clamped as the spec says.
std::optional<AxisMaps> slice_maps(const Node& n) {
  auto s = io_shapes(n);
  if (!s || s->in.size() != s->out.size()) return std::nullopt;
  auto starts = constant_ints(n, 1), ends = constant_ints(n, 2);
  if (!starts || !ends || starts->size() != ends->size()) return std::nullopt;
  const int64_t rank = static_cast<int64_t>(s->in.size());
  std::vector<int64_t> axes, steps(starts->size(), 1);
  if (!input_absent(n, 3)) {
    auto a = constant_ints(n, 3);
    if (!a) return std::nullopt;
    axes = *a;
  } else {
    for (size_t i = 0; i < starts->size(); ++i) axes.push_back(static_cast<int64_t>(i));
  }
  if (!input_absent(n, 4)) {
    auto st = constant_ints(n, 4);
    if (!st) return std::nullopt;
    steps = *st;
  }
  if (axes.size() != starts->size() || steps.size() != starts->size()) return std::nullopt;
  AxisMaps maps = identity_maps(s->in);
  std::vector<bool> seen(static_cast<size_t>(rank), false);
  for (size_t j = 0; j < axes.size(); ++j) {
    int64_t a = axes[j] < 0 ? axes[j] + rank : axes[j];
    if (a < 0 || a >= rank || seen[static_cast<size_t>(a)] || steps[j] == 0) return std::nullopt;
    seen[static_cast<size_t>(a)] = true;
    const int64_t dim = s->in[static_cast<size_t>(a)], step = steps[j];
    int64_t start = (*starts)[j], end = (*ends)[j];
    if (start < 0) start += dim;
    if (end < 0) end += dim;
    int64_t count;
    if (step > 0) {
      start = std::clamp<int64_t>(start, 0, dim);
      end = std::clamp<int64_t>(end, 0, dim);
      count = end > start ? ceil_div(end - start, step) : 0;
    } else {
      start = std::clamp<int64_t>(start, 0, dim - 1);
      end = std::clamp<int64_t>(end, -1, dim - 1);
      count = start > end ? ceil_div(start - end, -step) : 0;
    }
    if (count != s->out[static_cast<size_t>(a)]) return std::nullopt;
    auto& m = maps[static_cast<size_t>(a)];
    m.clear();
    for (int64_t i = 0; i < count; ++i) m.push_back(start + i * step);
  }
  for (size_t k = 0; k < maps.size(); ++k)
    if (static_cast<int64_t>(maps[k].size()) != s->out[k]) return std::nullopt;
  return maps;
}

// Expand: input dims right-aligned against the output; a dim of 1 repeats.
std::optional<AxisMaps> expand_maps(const Node& n) {
  auto s = io_shapes(n);
  if (!s || s->in.size() > s->out.size()) return std::nullopt;
  const size_t lead = s->out.size() - s->in.size();
  AxisMaps maps(s->in.size());
  for (size_t k = 0; k < s->in.size(); ++k) {
    const int64_t in = s->in[k], out = s->out[lead + k];
    if (in != out && in != 1) return std::nullopt;
    for (int64_t i = 0; i < out; ++i) maps[k].push_back(in == 1 ? 0 : i);
  }
  // Leading output axes the input lacks: one input dim of size 1 each (the layer reads the input
  // as if reshaped to the output's rank).
  AxisMaps full(lead, AxisMaps::value_type{});
  for (size_t k = 0; k < lead; ++k) full[k].assign(static_cast<size_t>(s->out[k]), 0);
  for (auto& m : maps) full.push_back(std::move(m));
  return full;
}

std::optional<AxisMaps> tile_maps(const Node& n) {
  auto s = io_shapes(n);
  if (!s || s->in.size() != s->out.size()) return std::nullopt;
  AxisMaps maps(s->in.size());
  for (size_t k = 0; k < s->in.size(); ++k) {
    const int64_t in = s->in[k], out = s->out[k];
    if (in == 0 ? out != 0 : out % in != 0) return std::nullopt;
    for (int64_t i = 0; i < out; ++i) maps[k].push_back(i % in);
  }
  return maps;
}

// Pad (opset 18+): pads input [begins..., ends...] over `axes` (all when absent); negative
// amounts crop; constant/reflect/edge/wrap.
std::optional<AxisMaps> pad_maps(const Node& n) {
  auto s = io_shapes(n);
  if (!s || s->in.size() != s->out.size()) return std::nullopt;
  const std::string mode = n.attrs.s("mode", "constant");
  if (mode != "constant" && mode != "reflect" && mode != "edge" && mode != "wrap") return std::nullopt;
  const int64_t rank = static_cast<int64_t>(s->in.size());
  auto pads = constant_ints(n, 1);
  if (!pads) {
    if (!input_absent(n, 1)) return std::nullopt;
    pads = std::vector<int64_t>{};
  }
  std::vector<int64_t> axes;
  if (!input_absent(n, 3)) {
    auto a = constant_ints(n, 3);
    if (!a) return std::nullopt;
    axes = *a;
  } else {
    for (int64_t i = 0; i < rank; ++i) axes.push_back(i);
  }
  if (pads->size() != 2 * axes.size() && !pads->empty()) return std::nullopt;
  std::vector<int64_t> begin(static_cast<size_t>(rank), 0), end(static_cast<size_t>(rank), 0);
  for (size_t j = 0; j < axes.size() && !pads->empty(); ++j) {
    const int64_t a = axes[j] < 0 ? axes[j] + rank : axes[j];
    if (a < 0 || a >= rank) return std::nullopt;
    begin[static_cast<size_t>(a)] = (*pads)[j];
    end[static_cast<size_t>(a)] = (*pads)[axes.size() + j];
  }
  AxisMaps maps(static_cast<size_t>(rank));
  for (size_t k = 0; k < maps.size(); ++k) {
    const int64_t dim = s->in[k], out = s->out[k];
    const int64_t lo = std::max<int64_t>(0, -begin[k]);                 // first kept source index
    const int64_t kept = dim - lo - std::max<int64_t>(0, -end[k]);       // kept source elements
    const int64_t before = std::max<int64_t>(0, begin[k]);
    if (kept < 0 || out != kept + before + std::max<int64_t>(0, end[k])) return std::nullopt;
    if (mode != "constant" && kept == 0 && out > 0) return std::nullopt;  // nothing to reflect or repeat
    for (int64_t o = 0; o < out; ++o) {
      int64_t q = o - before;
      if (q < 0 || q >= kept) {
        if (mode == "constant") {
          q = -1;
        } else if (mode == "edge") {
          q = q < 0 ? 0 : kept - 1;
        } else if (mode == "wrap") {
          q = ((q % kept) + kept) % kept;
        } else if (kept == 1) {
          q = 0;
        } else {  // reflect, without repeating the edge element
          const int64_t period = 2 * (kept - 1);
          q = ((q % period) + period) % period;
          if (q >= kept) q = period - q;
        }
      }
      maps[k].push_back(q < 0 ? -1 : q + lo);
    }
  }
  return maps;
}

bool pad_fill_fits(const Node& n) {
  if (input_absent(n, 2)) return true;
  auto d = static_dims(n.inputs[2]);
  return n.inputs[2]->type.dtype == n.inputs[0]->type.dtype && d && dims_numel(*d) == 1;
}

using MapsFn = std::optional<AxisMaps> (*)(const Node&);

CudaLayerFactory map_factory(MapsFn fn, bool pad) {
  return CudaLayerFactory{
      .supports = [fn, pad](const Node& n) { return fn(n).has_value() && (!pad || pad_fill_fits(n)); },
      .tactics = nullptr,
      .create = [fn, pad](const Node& n, const LayerChoice&) -> Expected<std::unique_ptr<CudaLayer>> {
        auto maps = fn(n);
        if (!maps) return invalid_model("{}: cannot map this node's elements", n.describe());
        // Expand reads its input as if reshaped to the output's rank (leading unit dims).
        Dims in = *static_dims(n.inputs[0]);
        while (in.size() < maps->size()) in.insert(in.begin(), 1);
        return make_axis_map_layer(in, *maps, pad && !input_absent(n, 2) ? 2 : -1);
      }};
}

}  // namespace
}  // namespace kiln::cuda

KILN_REGISTER_CUDA_LAYER("Slice", kiln::cuda::map_factory(kiln::cuda::slice_maps, false));
KILN_REGISTER_CUDA_LAYER("Expand", kiln::cuda::map_factory(kiln::cuda::expand_maps, false));
KILN_REGISTER_CUDA_LAYER("Tile", kiln::cuda::map_factory(kiln::cuda::tile_maps, false));
KILN_REGISTER_CUDA_LAYER("Pad", kiln::cuda::map_factory(kiln::cuda::pad_maps, true));
