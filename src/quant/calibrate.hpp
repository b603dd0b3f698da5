// Calibration for post-training quantization: the float graph runs on the CPU executor over the
// calibration batches, a histogram per float value records |x|, and a calibrator turns each into
// an amax. A calibration cache, when present and made with the same algorithm, replaces all of it.
//
//   CalibrationOptions c;
//   c.data.dir = "calib/"; c.data.batch = 8; c.algorithm = "entropy"; c.cache = "model.cache";
//   KILN_ASSIGN_OR_RETURN(RangeTable ranges, calibrate(graph, c));
//   KILN_ASSIGN_OR_RETURN(bool changed, insert_qdq(graph, ranges, QuantizationSpec{}));
#pragma once

#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "ir/graph.hpp"
#include "quant/calibration_data.hpp"
#include "quant/calibrator.hpp"
#include "quant/range_table.hpp"
#include "util/error.hpp"

namespace kiln {

struct CalibrationOptions {
  CalibrationDataOptions data;       // the batches (data.log also receives progress lines)
  std::string algorithm = "entropy";  // --calib-algo: minmax, entropy, percentile=P
  std::string cache;                 // --calib-cache: read when it fits, else written after calibrating
};

// Runs `g` (float32, on the CPU executor) over the batches and returns the amax of every float32
// graph input and top-level node output with a non-zero range. One histogram per value is kept,
// not the tensors; the executor holds one batch's intermediates at a time (they are its outputs).
Expected<RangeTable> collect_ranges(const Graph& g, const std::vector<std::map<std::string, Tensor>>& batches,
                                    const CalibrationAlgorithm& algo,
                                    const std::function<void(std::string_view)>& log = {});

// The cache when it exists, names the same algorithm and only values of `g`; otherwise loads the
// data, calibrates, and writes the cache (when one is named). A cache that does not fit is a
// warning on the log and is replaced.
Expected<RangeTable> calibrate(const Graph& g, const CalibrationOptions& o);

}  // namespace kiln
