// Calibration for post-training quantization: the float graph runs over the calibration batches
// (on the CPU executor, or as a float32 CUDA plan), a histogram per float value records |x|, and a
// calibrator turns each into an amax. A calibration cache, when present and made with the same
// algorithm, replaces all of it.
//
//   CalibrationOptions c;
//   c.data.dir = "calib/"; c.data.batch = 8; c.algorithm = "entropy"; c.cache = "model.cache";
//   KILN_ASSIGN_OR_RETURN(RangeTable ranges, calibrate(graph, c));
//   KILN_ASSIGN_OR_RETURN(bool changed, insert_qdq(graph, ranges, QuantizationSpec{}));
#pragma once

#include <functional>
#include <map>
#include <set>
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
  // --calib-backend: where the float32 graph runs, "cpu" or "cuda" (same histograms and calibrators
  // either way). Empty: "cpu" here; the builder makes it the build's backend (cpu when that cannot
  // run here).
  std::string backend;
  // Backend "cuda" chosen by default (not asked for): a CUDA plan that cannot be built or run (e.g.
  // out of memory: every observed value stays live) is a warning, and the CPU calibrates instead.
  bool backend_fallback = false;
  // For the CUDA plan (the builder copies its own): scratch limit, tactic timing cache, passes to skip.
  uint64_t workspace_bytes = 1ull << 30;
  std::string timing_cache;
  std::set<std::string> disabled_passes;
};

// `backend` checked: "cpu" or "cuda" (empty: "cpu"). An unknown name, or "cuda" where no CUDA
// backend can run (a CPU-only build or machine), is an error saying so.
Expected<std::string> check_calibration_backend(const std::string& backend);

// Runs `g` (float32) over the batches and returns the amax of every float32 graph input and
// top-level node output with a non-zero range. One histogram per value is kept, not the tensors;
// one batch's intermediates are held at a time (they are the run's outputs). `o` says where it
// runs (backend and, for "cuda", the plan's options; its data and cache are not read).
Expected<RangeTable> collect_ranges(const Graph& g, const std::vector<std::map<std::string, Tensor>>& batches,
                                    const CalibrationAlgorithm& algo,
                                    const std::function<void(std::string_view)>& log = {},
                                    const CalibrationOptions& o = {});

// The cache when it exists, names the same algorithm and only values of `g`; otherwise loads the
// data, calibrates, and writes the cache (when one is named). A cache that does not fit is a
// warning on the log and is replaced.
Expected<RangeTable> calibrate(const Graph& g, const CalibrationOptions& o);

}  // namespace kiln
