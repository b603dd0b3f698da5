// The calibration cache: a text file holding a RangeTable, so that a later build skips
// calibration (and builds the same plan).
//
//   kiln-calibration-cache 1 entropy
//   conv1_out: 0x1.8p+2
//
// One "value name: amax" line per value, amax as a C99 hexadecimal float (exact round trip). The
// name is everything before the last ": ". Written atomically (temporary file, then rename).
#pragma once

#include <string>

#include "quant/range_table.hpp"
#include "util/error.hpp"

namespace kiln {

Status write_calibration_cache(const std::string& path, const RangeTable& ranges);
Expected<RangeTable> read_calibration_cache(const std::string& path);

}  // namespace kiln
