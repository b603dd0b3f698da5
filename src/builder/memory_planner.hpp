// Activation memory planning: every non-constant value of the top-level graph gets an offset in
// one arena; values whose lifetimes do not overlap share memory.
#pragma once

#include <optional>

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

}  // namespace kiln
