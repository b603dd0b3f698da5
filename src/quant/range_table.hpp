// Calibrated dynamic ranges: for each float value (by name) the absolute maximum that a calibrator
// (min-max, entropy, percentile) chose over the calibration set. Quantization scales derive from it:
// INT8 scale = amax / 127, FP8 E4M3 scale = amax / 448.
#pragma once

#include <map>
#include <string>

namespace kiln {

struct RangeTable {
  std::string algorithm;               // "minmax", "entropy", "percentile=99.99"
  std::map<std::string, float> amax;   // value name -> absolute maximum (> 0)
};

}  // namespace kiln
