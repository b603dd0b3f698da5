// A plan: a model compiled for one backend (and GPU), as built by the builder and stored on disk.
//
// It holds the optimized IR (static shapes, constants included), what the builder chose per
// layer (tactic, precision), the activation memory plan and the target it was built for.
// On disk: a fixed header, a FlatBuffers table (runtime/plan.fbs), then the weights, aligned so
// they can be used straight from an mmap.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "ir/graph.hpp"
#include "runtime/profile.hpp"

namespace kiln {

inline constexpr uint32_t kPlanFormatVersion = 1;

struct PlanTarget {
  std::string backend;         // "cpu" or "cuda"
  int compute_capability = 0;  // 90 = sm_90; 0 on the CPU
  std::string device_name;
  int cuda_runtime_version = 0;
  int cudnn_version = 0;
  int cublas_version = 0;
};

// What the builder chose for one top-level node.
struct LayerChoice {
  std::string tactic;     // backend-specific ("" = default kernel)
  std::string precision;  // "fp32", "tf32", "fp16", "bf16"
};

struct ArenaSlot {
  std::string value;
  uint64_t offset = 0;
  uint64_t nbytes = 0;
};

struct Plan {
  std::string kiln_version;
  PlanTarget target;
  GraphPtr graph;
  std::vector<LayerChoice> layers;  // one per graph->nodes(), same order
  uint64_t arena_bytes = 0;
  uint64_t workspace_bytes = 0;
  std::vector<ArenaSlot> arena;     // activations' offsets in the arena
  double build_seconds = 0;
  std::string options_json;
  // Shape ranges of the dynamic inputs (empty: every input shape is fixed, or a CPU plan without
  // profiles accepts any). With profiles, the graph's inputs keep their dynamic dims.
  std::vector<OptimizationProfile> profiles;
  // The builder's precision decisions for the build report (guard, overrides, accuracy budget);
  // not stored in the plan file.
  std::vector<std::string> precision_report;
};

// Serializes the plan to `path` atomically (a failure never leaves a half-written plan there).
Status save_plan(const Plan& plan, const std::string& path);
// Same, into memory.
Expected<std::string> serialize_plan(const Plan& plan);

// Reads a plan; constants point into the file's mapping (kept alive by the tensors).
// Errors say which: not a plan, truncated, corrupt (checksum), format or kiln version mismatch.
Expected<Plan> load_plan(const std::string& path);

// The version of this kiln ("0.1.0").
const char* kiln_version();

}  // namespace kiln
