// What a plan holds, for people (`kiln inspect`, the build report) and for tools (--json,
// `bench --export-layer-info`): target and versions, bindings, memory, and every layer with its
// op, precision, tactic and shapes.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "runtime/plan.hpp"

namespace kiln::cli {

// Bytes of the constants (weights) the plan's graph holds.
uint64_t plan_weight_bytes(const Plan& plan);
// "cuda, NVIDIA H100 80GB HBM3 (sm_90), CUDA 12.4, cuDNN 9.1.0, cuBLASLt 12.4.5" or "cpu".
std::string target_text(const PlanTarget& t);
// Layer counts per precision: "tf32 50, fp16 3" (in order of first use).
std::string precision_counts(const Plan& plan);

// The whole plan description; `source` names where it came from (a file, or "MODEL (built in memory)").
nlohmann::ordered_json plan_json(const Plan& plan, const std::string& source);
// The same, as text: a header block, then one line per layer.
void print_plan(const Plan& plan, const std::string& source);
// Only the layer table (`kiln build --verbose`).
void print_layers(const Plan& plan);

}  // namespace kiln::cli
