// Activation memory planning: every non-constant value of the top-level graph gets an offset in
// one arena; values whose lifetimes do not overlap share memory.
#pragma once

#include <functional>
#include <optional>
#include <unordered_map>

#include "runtime/plan.hpp"

namespace kiln {

// Ops whose output is its first input reinterpreted (no data movement): the output aliases it.
bool is_view_op(const Node& node);
// A Gather of one constant index whose dims before the axis are all 1 reads one contiguous block
// of its (non-constant) input: the block's byte offset, which the output may alias.
std::optional<uint64_t> gather_block_offset(const Node& node);

struct MemoryPlan {
  uint64_t arena_bytes = 0;
  std::vector<ArenaSlot> slots;  // one per planned value (aliases get their source's offset)
};

// Requires static shapes. Graph inputs and outputs are planned too (the context binds them).
Expected<MemoryPlan> plan_memory(const Graph& graph, uint64_t alignment = 256);

// One segment of a graph run in stages (data-dependent shapes, docs/dynamic-shapes.md): the
// values that nodes [begin, end) produce, in an arena of their own. Values the segment reads from
// earlier segments (`external`, planned there) are left out; values it produces that later nodes
// or the graph outputs read live to the segment's end. `max_bytes` sizes the outputs whose shape
// is not static yet (a data-dependent op's at its upper bound). Graph inputs are planned when
// `plan_inputs` (the first segment).
struct MemorySegment {
  size_t begin = 0, end = 0;
  std::function<bool(const Value*)> external;
  std::unordered_map<const Value*, uint64_t> max_bytes;
  bool plan_inputs = true;
};
Expected<MemoryPlan> plan_memory(const Graph& graph, const MemorySegment& segment, uint64_t alignment = 256);

}  // namespace kiln
