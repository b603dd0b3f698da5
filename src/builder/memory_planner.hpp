// Activation memory planning: every non-constant value of the top-level graph gets an offset in
// one arena; values whose lifetimes do not overlap share memory.
#pragma once

#include "runtime/plan.hpp"

namespace kiln {

// Ops whose output is its first input reinterpreted (no data movement): the output aliases it.
bool is_view_op(const Node& node);

struct MemoryPlan {
  uint64_t arena_bytes = 0;
  std::vector<ArenaSlot> slots;  // one per planned value (aliases get their source's offset)
};

// Requires static shapes. Graph inputs and outputs are planned too (the context binds them).
Expected<MemoryPlan> plan_memory(const Graph& graph, uint64_t alignment = 256);

}  // namespace kiln
