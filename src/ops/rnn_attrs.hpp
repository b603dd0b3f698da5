// Attributes of the recurrent ops RNN, GRU and LSTM (opset-14+ form), parsed and validated in one
// place so shape inference and every backend accept and reject the same nodes.
#pragma once

#include <optional>
#include <vector>

#include "ir/graph.hpp"

namespace kiln {

enum class RnnKind { kRnn, kGru, kLstm };
enum class RnnDirection { kForward, kReverse, kBidirectional };

enum class RnnActKind {
  kRelu, kTanh, kSigmoid, kAffine, kLeakyRelu, kThresholdedRelu, kScaledTanh, kHardSigmoid, kElu,
  kSoftsign, kSoftplus,
};

// One activation function with its alpha/beta (the defaults of the ONNX op of that name where the
// list does not give them).
struct RnnActivation {
  RnnActKind kind = RnnActKind::kTanh;
  float alpha = 0.f;
  float beta = 0.f;
};

struct RnnAttrs {
  RnnKind kind = RnnKind::kRnn;
  RnnDirection direction = RnnDirection::kForward;
  int num_directions = 1;
  int gates = 1;                 // weight blocks per direction: RNN 1 (i), GRU 3 (zrh), LSTM 4 (iofc)
  int acts_per_direction = 1;    // RNN f; GRU f, g; LSTM f, g, h
  std::optional<int64_t> hidden_size;
  int64_t layout = 0;            // 0: [seq, batch, ...]; 1: [batch, seq, ...]
  std::optional<float> clip;     // bounds the inputs of the gate activations to [-clip, clip]
  bool linear_before_reset = false;  // GRU
  bool input_forget = false;         // LSTM: f = 1 - i
  // acts_per_direction entries per direction, forward direction first.
  std::vector<RnnActivation> activations;

  // Direction d runs backwards in time (the reverse op, or the second half of bidirectional).
  bool reversed(int d) const {
    return direction == RnnDirection::kReverse || (direction == RnnDirection::kBidirectional && d == 1);
  }
  const RnnActivation& activation(int d, int k) const {
    return activations[static_cast<size_t>(d * acts_per_direction + k)];
  }
};

// Parses node.attrs for node.op_type RNN/GRU/LSTM; errors name the node and the attribute.
Expected<RnnAttrs> parse_rnn_attrs(const Node& node);

}  // namespace kiln
