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

namespace {
struct Interval {
  const Value* value;
  uint64_t bytes;
  size_t first, last;  // node indices: produced at `first`, last read at `last`
};
}  // namespace

Expected<MemoryPlan> plan_memory(const Graph& g, uint64_t alignment) {
  const auto& nodes = g.nodes();
  const size_t end = nodes.size();
  // Root of each value after following view-op aliases.
  std::unordered_map<const Value*, const Value*> root;
  auto find_root = [&](const Value* v) {
    while (root.count(v)) v = root[v];
    return v;
  };
  std::unordered_map<const Value*, Interval> live;
  auto touch = [&](const Value* v, size_t at) {
    if (!v || v->constant) return;
    const Value* r = find_root(v);
    auto it = live.find(r);
    if (it == live.end()) {
      auto dims = r->type.shape.to_dims();
      uint64_t bytes = dims ? static_cast<uint64_t>(dims_numel(*dims)) * dtype_size(r->type.dtype) : 0;
      live.emplace(r, Interval{r, bytes, at, at});
    } else {
      it->second.first = std::min(it->second.first, at);
      it->second.last = std::max(it->second.last, at);
    }
  };
  for (const Value* in : g.inputs) touch(in, 0);
  for (size_t i = 0; i < end; ++i) {
    const Node& n = *nodes[i];
    for (const Value* o : n.outputs)
      if (o && !o->constant && !o->type.shape.is_static())
        return unsupported("{}: output '{}' has no static shape ({}): the backend plans memory ahead",
                           n.describe(), o->name, o->type.shape.to_string());
    if (is_view_op(n) && !n.inputs[0]->constant) root[n.outputs[0]] = find_root(n.inputs[0]);
    for (const Value* v : n.inputs) touch(v, i);
    for (const Graph* sg : n.subgraphs())
      for (const Value* v : sg->outer_scope_values()) touch(v, i);
    for (const Value* o : n.outputs) touch(o, i);
  }
  for (const Value* o : g.outputs) touch(o, end);  // outputs live to the end
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
    const Value* r = find_root(v);
    auto it = offset_of.find(r);
    if (it == offset_of.end()) return;
    auto dims = v->type.shape.to_dims();
    uint64_t bytes = dims ? static_cast<uint64_t>(dims_numel(*dims)) * dtype_size(v->type.dtype) : 0;
    plan.slots.push_back({v->name, it->second, bytes});
  };
  for (const Value* in : g.inputs) add_slot(in);
  for (const auto& n : nodes)
    for (const Value* o : n->outputs) add_slot(o);
  return plan;
}

}  // namespace kiln
