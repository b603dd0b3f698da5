// Post-training quantization as explicit Q/DQ: given calibrated ranges, QuantizeLinear ->
// DequantizeLinear pairs go on the float activation inputs of the chosen ops (per-tensor scale,
// zero point 0) and their constant weights become DequantizeLinear(quantized weights, per-output-
// channel scales). The CPU backend then runs the quantized model as simulated quantization (the
// reference), and the CUDA backend's Q/DQ fusion turns the pairs into INT8/FP8 layers: one path for
// calibrated models and for QAT models that already carry Q/DQ.
#pragma once

#include <set>
#include <string>

#include "ir/graph.hpp"
#include "quant/range_table.hpp"
#include "util/error.hpp"

namespace kiln {

struct QuantizationSpec {
  DType qtype = DType::kInt8;                               // kInt8 (later also FP8 E4M3)
  std::set<std::string> op_types{"Conv", "MatMul", "Gemm"};  // ops whose inputs get Q/DQ
  std::set<std::string> keep_float;                         // node names left unquantized
};

// Returns whether the graph changed. Values without a range are left in float (listed by log).
Expected<bool> insert_qdq(Graph& g, const RangeTable& ranges, const QuantizationSpec& spec);

}  // namespace kiln
