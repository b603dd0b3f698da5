// `kiln run` inputs: --input NAME=FILE bindings, --shapes for dynamic dims, seeded random data.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "ir/graph.hpp"

namespace kiln::cli {

struct InputOptions {
  std::vector<std::string> inputs;  // raw --input values: NAME=FILE (or FILE for a one-input model)
  std::vector<std::string> shapes;  // raw --shapes values: NAME:1x3x224x224[,NAME2:...]
  uint64_t seed = 0;
};

struct BoundInput {
  std::string name;
  Tensor tensor;
  std::string file;  // empty: random data
};

// Splits "--input" at the '=' that makes sense for this graph: the last '=' whose left side is an
// input name and whose right side is an existing file, else the last whose left side is an input
// name, else the one whose right side is an existing file (then the name is unknown: an error).
// A bare FILE binds the only input of a one-input graph.
Expected<std::pair<std::string, std::string>> split_input_binding(const Graph& g, const std::string& arg);

// "a:1x3,b:2" and repeated options -> (name, dims); a name may contain ':' (split at the last one)
// and ',' (a piece without ':' joins the next). "x:" or "x:scalar" is a 0-d tensor.
Expected<std::vector<std::pair<std::string, Dims>>> parse_shapes(const std::vector<std::string>& args);

// Every graph input, in graph order: loaded from its file (checked against the declared dtype and
// shape, symbolic dims consistent across inputs), or random with the shape from --shapes, the
// declared dims, or symbols another input fixed. Errors name the input and, for files, the file.
Expected<std::vector<BoundInput>> prepare_inputs(const Graph& g, const InputOptions& options);

}  // namespace kiln::cli
