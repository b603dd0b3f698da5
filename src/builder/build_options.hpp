// What `kiln build` (and kiln::compile) can be asked for.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "ir/shape.hpp"
#include "quant/calibrate.hpp"
#include "quant/qdq_insertion.hpp"
#include "ir/tensor.hpp"
#include "runtime/profile.hpp"

namespace kiln {

struct BuildOptions {
  std::string backend = "cpu";   // "cpu" or "cuda"
  bool fp16 = false;             // allow float16 layers (activations and weights in float16)
  bool bf16 = false;             // allow bfloat16 layers
  bool tf32 = true;              // allow TF32 tensor-core math for float32 layers
  // FP8 E4M3 GEMMs (CUDA, Hopper) for MatMul/Gemm with FP8 Q/DQ; float16 (bfloat16 with bf16) for
  // the rest. Needs a model with FP8 Q/DQ (QAT or quantized offline); see docs/fp8.md.
  bool fp8 = false;
  // INT8 post-training quantization: calibrate the float graph (calibration.backend), then put
  // Q/DQ on the inputs of Conv/MatMul/Gemm (quant/qdq_insertion.hpp).
  bool int8 = false;
  CalibrationOptions calibration;  // --calib-data/-batch/-batches/-preprocess/-algo/-cache/-backend
  QuantizationReport* int8_report = nullptr;  // when set, filled with what was quantized and why not
  // Mixed precision (docs/precision.md). Per-node precisions: node name or glob ('*', '?') ->
  // "fp32", "fp16", "bf16", "int8" or "fp8", in the order given (a later match wins).
  std::vector<std::pair<std::string, std::string>> layer_precisions;
  std::string precision_constraints = "prefer";  // "prefer" (fall back with a warning) or "obey" (fail)
  bool fp32_guard = true;        // keep overflow-prone patterns in float32 with --fp16/--bf16/--best
  bool best = false;             // every precision allowed: fp16 (bf16 with --bf16) + tf32, int8 with calibration
  // --accuracy-budget: the largest mean relative L2 error of the outputs against float32 (< 0: off).
  double accuracy_budget = -1;
  int accuracy_max_layers = 32;  // layers measured one by one; the rest are measured in groups
  int accuracy_max_batches = 4;  // calibration batches the budget runs (the first ones)
  // Calibration inputs (graph input name -> tensor per batch) for the accuracy budget and --best.
  std::vector<std::map<std::string, Tensor>> calibration_batches;
  std::map<std::string, Dims> input_shapes;  // fixes dynamic input dims
  // Shape ranges for dynamic inputs (--min/--opt/--max-shapes); the plan accepts any shape within
  // one of them. Empty: a static-shape backend fixes dynamic dims (--shapes, else 1).
  std::vector<OptimizationProfile> profiles;
  uint64_t workspace_bytes = 1ull << 30;     // the most scratch memory one layer may use
  std::string timing_cache;      // tactic timings file, read and updated when set
  std::set<std::string> disabled_passes;    // graph passes to skip, by name (see known_passes())
  std::vector<std::string> outputs;         // keep only these graph outputs (all when empty)
  bool fold_random = false;                 // constant-fold random-number ops (fixes their values)
  std::set<std::string> dump_ir_after;      // print the IR after these passes ("all": every pass)
  bool pass_log = false;                    // per-pass timing and modified counts on `log`
  std::function<void(std::string_view)> log;  // progress lines (and IR dumps)
};

// Whether an optimization profile gives the input's range (then --shapes must not fix it).
inline bool in_profiles(const BuildOptions& o, const std::string& input) {
  for (const OptimizationProfile& p : o.profiles)
    if (p.inputs.count(input)) return true;
  return false;
}

}  // namespace kiln
