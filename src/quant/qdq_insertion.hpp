// Post-training quantization as explicit Q/DQ: given calibrated ranges, QuantizeLinear ->
// DequantizeLinear pairs go on the float activation inputs of the chosen ops (per-tensor scale,
// zero point 0) and their constant weights become DequantizeLinear(quantized weights, per-output-
// channel scales). The CPU backend then runs the quantized model as simulated quantization (the
// reference), and the CUDA backend's Q/DQ fusion turns the pairs into INT8/FP8 layers: one path for
// calibrated models and for QAT models that already carry Q/DQ.
#pragma once

#include <set>
#include <string>
#include <utility>
#include <vector>

#include "ir/graph.hpp"
#include "quant/range_table.hpp"
#include "util/error.hpp"

namespace kiln {

// What insert_qdq did: the nodes it quantized, and those it left float with the reason.
struct QuantizationReport {
  std::vector<std::string> quantized;                            // node descriptions
  std::vector<std::pair<std::string, std::string>> kept_float;   // node description, why
};

struct QuantizationSpec {
  DType qtype = DType::kInt8;                               // kInt8 (later also FP8 E4M3)
  std::set<std::string> op_types{"Conv", "MatMul", "Gemm"};  // ops whose inputs get Q/DQ
  std::set<std::string> keep_float;                         // precision_key()s (node names) left float
  // precision_key()s quantized even where a speed rule would leave them float (the < 16 input
  // channel Conv rule): --layer-precision NAME:int8. keep_float still wins.
  std::set<std::string> quantize;
  // INT8: an Add of a quantized Conv's output and a value v that is quantized for another reader
  // (a residual block's input, also read by the next block's Conv) reads v through v's Q/DQ pair.
  // Then v's producer can write int8 and the residual is read as int8 (TensorRT does the same).
  bool quantize_residuals = true;
  QuantizationReport* report = nullptr;                     // filled when set
};

// The largest magnitude of a quantized type (int8: 127): scale = amax / qmax.
float quantized_max(DType qtype);

// Top-level nodes only. Activation inputs (float32, not constant) need a range in `ranges`; constant
// float32 weights are quantized here: per output channel (Conv: axis 0; Gemm B: axis 0 with transB=1,
// else 1; MatMul B: its last axis), other constant inputs per tensor. A node whose inputs cannot all
// be quantized (no range, not float32, already behind a DequantizeLinear) stays float, with the
// reason in the report. INT8 leaves a Conv float where qconv_int8_worthwhile says it does not pay
// (a 3-channel 3x3 conv; unless spec.quantize names it). One Q/DQ pair per value, shared by its
// readers (and, with spec.quantize_residuals, by residual Adds). INT8: a MaxPool whose output has
// a pair gets one of the same scale on its input (the same values; its producer can write int8).
// Returns whether the graph changed.
Expected<bool> insert_qdq(Graph& g, const RangeTable& ranges, const QuantizationSpec& spec);

}  // namespace kiln
