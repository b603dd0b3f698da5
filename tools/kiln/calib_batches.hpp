// Calibration batches from a folder of .npy files, for the accuracy budget and --best.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "ir/graph.hpp"

namespace kiln::cli {

// For a one-input model every *.npy in `dir` (sorted by name) is one batch; for several inputs
// `dir` holds a subfolder per input name whose files are matched in sorted order. At most
// `max_batches` are read (0: all). Errors name the folder or file at fault; shapes and dtypes are
// checked when the batches run.
Expected<std::vector<std::map<std::string, Tensor>>> load_npy_batches(const Graph& g, const std::string& dir,
                                                                      int max_batches);

}  // namespace kiln::cli
