// --accuracy-budget: which reduced-precision layers must go back to float32 so that the whole
// model's error stays within a budget. Metric: the relative L2 error of each float output against
// the float32 model on the CPU executor, averaged over the outputs and the calibration batches.
//
// Each candidate layer's sensitivity is the error of the model with only that layer reduced (with
// more candidates than `max_units`, consecutive layers are measured and kept as groups); then the
// most sensitive units are kept in float32, one at a time, until the error of the model with all
// the others reduced is within the budget. Cost: 1 run of the batches when the fully reduced model
// meets the budget, else (1 + units + kept units).
#pragma once

#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "ir/graph.hpp"
#include "ir/tensor.hpp"
#include "quant/qdq_insertion.hpp"

namespace kiln {

using Batches = std::vector<std::map<std::string, Tensor>>;

// The model to measure with exactly the `reduced` candidates in reduced precision (quantized, for
// INT8) and every other candidate in float.
using ReduceFn = std::function<Expected<GraphPtr>(const std::set<std::string>& reduced)>;

struct SensitivityUnit {
  std::vector<std::string> nodes;  // one layer, or a group of consecutive ones
  double error = 0;                // of the model with only these reduced
};

struct AccuracyBudgetResult {
  double all_reduced_error = 0;        // every candidate reduced
  double final_error = 0;              // with the kept units in float
  std::vector<SensitivityUnit> kept;   // most sensitive first
  std::vector<SensitivityUnit> units;  // every measured unit, in graph order (none when the fully
                                       // reduced model meets the budget)
  bool met = true;                     // final_error <= budget
};

// Mean relative L2 error of `test` against `ref` over their floating-point outputs (infinite when
// one has a NaN/Inf where the other has not).
double mean_relative_l2(const std::vector<Tensor>& ref, const std::vector<Tensor>& test);

Expected<AccuracyBudgetResult> fit_accuracy_budget(const Graph& float_graph, const std::vector<std::string>& candidates,
                                                   const ReduceFn& reduce, const Batches& batches, double budget,
                                                   int max_units);

// INT8 (or FP8): Q/DQ insertion as a function, e.g. calib's
//   [&](Graph& g, const QuantizationSpec& s) { return insert_qdq(g, ranges, s); }
using QdqInsertFn = std::function<Expected<bool>(Graph&, const QuantizationSpec&)>;

// The quantization candidates of `g`: nodes of spec.op_types not in spec.keep_float, in graph order.
std::vector<std::string> quantization_candidates(const Graph& g, const QuantizationSpec& spec);

// The ReduceFn of an INT8 accuracy budget: a copy of `float_graph` (which must outlive the
// function) quantized by `insert`, with every candidate not in `reduced` added to keep_float. The
// kept units of fit_accuracy_budget then go into the build's QuantizationSpec::keep_float.
ReduceFn int8_reducer(const Graph& float_graph, std::vector<std::string> candidates, QuantizationSpec base,
                      QdqInsertFn insert);

}  // namespace kiln
