// Einsum equation parsing, shared by the op's inference and its kernels.
#pragma once

#include <string>
#include <vector>

#include "kiln/status.hpp"

namespace kiln {

// An equation with ellipses expanded: every dim of every operand gets a label id. Letters are
// ids 0..51 in ASCII order ('A'..'Z', 'a'..'z'); the broadcast dims an ellipsis stands for are
// ids 52.. (right-aligned across operands, as in numpy broadcasting).
struct EinsumSpec {
  std::vector<std::vector<int>> inputs;  // label of each dim of each operand
  std::vector<int> output;               // labels of the output dims (distinct)
  int num_labels = 0;                    // ids are < num_labels
};

inline constexpr int kEinsumEllipsisBase = 52;

// Parses `equation` for operands of the given ranks. The message of an error says what is wrong
// (the caller names the node).
Expected<EinsumSpec> parse_einsum(const std::string& equation, const std::vector<size_t>& ranks);

}  // namespace kiln
