// The builder: model -> optimized, typed graph -> plan for one backend.
#pragma once

#include "builder/build_options.hpp"
#include "runtime/plan.hpp"

namespace kiln {

// Fixes input shapes, runs the graph passes (constant folding evaluates shape arithmetic on the
// host), assigns precisions, checks that the backend supports every op (listing those it does
// not), picks tactics and plans activation memory.
Expected<Plan> build_plan(Model model, const BuildOptions& options);

}  // namespace kiln
