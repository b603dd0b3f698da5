// Precision planning: from --fp16/--bf16/--best, --layer-precision with --precision-constraints,
// the float32 guard and --accuracy-budget to one precision per node (for the precision pass) and
// the nodes INT8 quantization must leave in float (QuantizationSpec::keep_float). docs/precision.md.
#pragma once

#include <set>
#include <string>
#include <utility>
#include <vector>

#include "builder/backend.hpp"
#include "builder/build_options.hpp"
#include "passes/precision.hpp"
#include "quant/qdq_insertion.hpp"

namespace kiln {

struct PrecisionPlan {
  PrecisionAssignment assignment;
  std::set<std::string> quantize;     // --layer-precision NAME:int8|fp8 (Conv/MatMul/Gemm)
  std::set<std::string> keep_float;   // quantizable nodes to leave in float (overrides, --best rule)
  std::vector<std::string> report;    // lines for the build report, warnings included
  bool any_reduced = false;           // some node runs in fp16/bf16
};

// '*' matches any run of characters (also '/'), '?' any one character.
bool glob_match(std::string_view pattern, std::string_view text);

// --layer-precision values: "NAME:PREC[,NAME:PREC...]" with PREC one of fp32, fp16, bf16, int8,
// fp8 (tf32 means fp32). The name is everything before the last ':' (names may hold ':').
Expected<std::vector<std::pair<std::string, std::string>>> parse_layer_precisions(const std::vector<std::string>& args);

// The INT8 rule of --best: Conv/MatMul/Gemm doing at least kBestInt8MinMacs multiply-adds (at the
// build shapes) are quantized; smaller ones gain less than the Q/DQ costs and stay float16.
inline constexpr int64_t kBestInt8MinMacs = int64_t{1} << 20;
int64_t layer_macs(const Node& n);  // -1 when the shapes are not known
// The Conv/MatMul/Gemm nodes --best quantizes, and (in `small`) those it leaves in float.
std::set<std::string> best_int8_layers(const Graph& g, std::set<std::string>* small = nullptr);

// The plan for `g` (after the clean-up passes, shapes inferred). Fails, with
// --precision-constraints obey, naming the node and why its precision cannot be honoured; with
// prefer the node falls back (a warning in `report`). Runs the accuracy budget when asked (CPU
// executor over options.calibration_batches). `can_quantize`: the caller runs Q/DQ insertion
// with the plan (apply_to_quantization); without it int8/fp8 requests are refused (obey) or
// ignored with a warning (prefer), and --best stays in float.
Expected<PrecisionPlan> plan_precisions(const Graph& g, const BuildOptions& options, const Backend& backend,
                                        bool can_quantize = false);

// For INT8/FP8 builds: the plan's float nodes (--layer-precision fp32/fp16/bf16, --best's small
// layers) join spec.keep_float and its int8/fp8 nodes leave it and join spec.quantize. Order in the builder: plan_precisions,
// this, insert_qdq, then the precision pass with plan.assignment (Q/DQ nodes take the fallback).
void apply_to_quantization(const PrecisionPlan& plan, QuantizationSpec& spec);

}  // namespace kiln
