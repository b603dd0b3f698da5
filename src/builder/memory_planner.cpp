#include "builder/memory_planner.hpp"

#include <algorithm>
#include <map>
#include <unordered_map>

#include "util/error.hpp"

namespace kiln {

bool is_view_op(const Node& n) {
  if (!n.domain.empty() || n.inputs.empty() || !n.inputs[0] || n.outputs.empty() || !n.outputs[0]) return false;
  static const char* kViews[] = {"Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity"};
  for (const char* v : kViews)
    if (n.op_type == v) return n.inputs[0]->type.dtype == n.outputs[0]->type.dtype;
  // Inference-mode Dropout without a mask is Identity.
  return n.op_type == "Dropout" && !n.has_output(1) && !n.has_input(2);
}

std::optional<uint64_t> gather_block_offset(const Node& n) {
  if (n.op_type != "Gather" || !n.domain.empty() || !n.has_input(0) || !n.has_input(1) || !n.has_output(0) ||
      n.inputs[0]->is_constant() || !n.inputs[1]->is_constant())
    return std::nullopt;
  const Value* x = n.inputs[0];
  auto dims = x->type.shape.to_dims();
  if (!dims || x->type.dtype != n.outputs[0]->type.dtype || n.inputs[1]->constant->numel() != 1)
    return std::nullopt;
  const int64_t rank = static_cast<int64_t>(dims->size());
  int64_t axis = n.attrs.i("axis", 0);
  if (axis < 0) axis += rank;
  if (axis < 0 || axis >= rank) return std::nullopt;
  for (int64_t i = 0; i < axis; ++i)
    if ((*dims)[static_cast<size_t>(i)] != 1) return std::nullopt;  // several blocks, not one
  auto idx = n.inputs[1]->constant->to_int64_vector();
  if (!idx.ok() || idx->size() != 1) return std::nullopt;
  const int64_t axis_dim = (*dims)[static_cast<size_t>(axis)];
  int64_t i = (*idx)[0] < 0 ? (*idx)[0] + axis_dim : (*idx)[0];
  if (i < 0 || i >= axis_dim) return std::nullopt;
  int64_t inner = 1;
  for (int64_t d = axis + 1; d < rank; ++d) inner *= (*dims)[static_cast<size_t>(d)];
  return static_cast<uint64_t>(i * inner) * dtype_size(x->type.dtype);
}

namespace {
struct Interval {
  const Value* value;
  uint64_t bytes;
  size_t first, last;  // node indices: produced at `first`, last read at `last`
};
}  // namespace

Expected<MemoryPlan> plan_memory(const Graph& g, uint64_t alignment) {
  MemorySegment all;
  all.end = g.nodes().size();
  return plan_memory(g, all, alignment);
}

Expected<MemoryPlan> plan_memory(const Graph& g, const MemorySegment& seg, uint64_t alignment) {
  const auto& nodes = g.nodes();
  const size_t end = std::min(seg.end, nodes.size());
  auto external = [&](const Value* v) { return seg.external && seg.external(v); };
  auto value_bytes = [&](const Value* v) -> uint64_t {
    auto dims = v->type.shape.to_dims();
    if (dims) return static_cast<uint64_t>(dims_numel(*dims)) * dtype_size(v->type.dtype);
    auto it = seg.max_bytes.find(v);
    return it != seg.max_bytes.end() ? it->second : 0;
  };
  // Each aliasing value's source and byte offset in it (view ops, and Gathers of one block).
  std::unordered_map<const Value*, std::pair<const Value*, uint64_t>> root;
  auto find_root_offset = [&](const Value* v) {
    uint64_t off = 0;
    for (auto it = root.find(v); it != root.end(); it = root.find(v)) {
      off += it->second.second;
      v = it->second.first;
    }
    return std::pair<const Value*, uint64_t>{v, off};
  };
  auto find_root = [&](const Value* v) { return find_root_offset(v).first; };
  std::unordered_map<const Value*, Interval> live;
  auto touch = [&](const Value* v, size_t at) {
    if (!v || v->constant) return;
    const Value* r = find_root(v);
    if (external(r)) return;
    auto it = live.find(r);
    if (it == live.end()) {
      live.emplace(r, Interval{r, value_bytes(r), at, at});
    } else {
      it->second.first = std::min(it->second.first, at);
      it->second.last = std::max(it->second.last, at);
    }
  };
  if (seg.plan_inputs)
    for (const Value* in : g.inputs) touch(in, seg.begin);
  for (size_t i = seg.begin; i < end; ++i) {
    const Node& n = *nodes[i];
    for (const Value* o : n.outputs)
      if (o && !o->constant && !o->type.shape.is_static() && !seg.max_bytes.count(o))
        return unsupported("{}: output '{}' has no static shape ({}): the backend plans memory ahead",
                           n.describe(), o->name, o->type.shape.to_string());
    // A view of a value planned in an earlier segment gets memory of its own (the layer copies).
    const bool from_outside = n.inputs.empty() || !n.inputs[0] || external(find_root(n.inputs[0]));
    if (from_outside) {
    } else if (is_view_op(n) && !n.inputs[0]->constant) {
      root[n.outputs[0]] = {n.inputs[0], 0};
    } else if (auto off = gather_block_offset(n); off && *off % alignment == 0) {
      // Only at aligned offsets: kernels and libraries may rely on aligned buffers.
      root[n.outputs[0]] = {n.inputs[0], *off};
    }
    for (const Value* v : n.inputs) touch(v, i);
    for (const Graph* sg : n.subgraphs())
      for (const Value* v : sg->outer_scope_values()) touch(v, i);
    for (const Value* o : n.outputs) touch(o, i);
  }
  // Values read after the segment (later segments, graph outputs) live to its end.
  std::unordered_map<const Value*, bool> produced_here;
  for (size_t i = seg.begin; i < end; ++i)
    for (const Value* o : nodes[i]->outputs)
      if (o) produced_here[o] = true;
  for (size_t i = end; i < nodes.size(); ++i) {
    for (const Value* v : nodes[i]->inputs)
      if (v && produced_here.count(v)) touch(v, end);
    for (const Graph* sg : nodes[i]->subgraphs())
      for (const Value* v : sg->outer_scope_values())
        if (produced_here.count(v)) touch(v, end);
  }
  for (const Value* o : g.outputs)
    if (produced_here.count(o) || (seg.plan_inputs && !external(o))) touch(o, end);  // outputs live to the end
  if (seg.plan_inputs)
    for (const Value* in : g.inputs) touch(in, end);  // the caller's inputs stay valid for the whole run

  // Greedy best fit: largest first, each placed at the lowest offset not overlapping any
  // already-placed interval that is live at the same time.
  std::vector<Interval> order;
  for (auto& [v, iv] : live) order.push_back(iv);
  std::sort(order.begin(), order.end(), [](const Interval& a, const Interval& b) {
    return a.bytes != b.bytes ? a.bytes > b.bytes : a.value->name < b.value->name;
  });
  struct Placed { uint64_t offset, bytes; size_t first, last; };
  std::vector<Placed> placed;
  MemoryPlan plan;
  std::unordered_map<const Value*, uint64_t> offset_of;
  for (const Interval& iv : order) {
    uint64_t size = (iv.bytes + alignment - 1) / alignment * alignment;
    std::vector<std::pair<uint64_t, uint64_t>> busy;
    for (const Placed& p : placed)
      if (!(p.last < iv.first || iv.last < p.first)) busy.emplace_back(p.offset, p.offset + p.bytes);
    std::sort(busy.begin(), busy.end());
    uint64_t offset = 0;
    for (auto [b, e] : busy) {
      if (offset + size <= b) break;
      offset = std::max(offset, e);
    }
    placed.push_back({offset, size, iv.first, iv.last});
    offset_of[iv.value] = offset;
    plan.arena_bytes = std::max(plan.arena_bytes, offset + size);
  }
  auto add_slot = [&](const Value* v) {
    if (!v || v->constant) return;
    const auto [r, sub] = find_root_offset(v);
    auto it = offset_of.find(r);
    if (it == offset_of.end()) return;
    plan.slots.push_back({v->name, it->second + sub, value_bytes(v)});
  };
  if (seg.plan_inputs)
    for (const Value* in : g.inputs) add_slot(in);
  for (size_t i = seg.begin; i < end; ++i)
    for (const Value* o : nodes[i]->outputs) add_slot(o);
  return plan;
}

}  // namespace kiln
