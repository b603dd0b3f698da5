#include "ops/rnn_attrs.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <string>

#include "util/error.hpp"

namespace kiln {

namespace {

struct ActInfo {
  const char* name;
  RnnActKind kind;
  bool uses_alpha, uses_beta;
  float alpha, beta;  // defaults: those of the ONNX op of the same name
};

constexpr ActInfo kActs[] = {
    {"relu", RnnActKind::kRelu, false, false, 0.f, 0.f},
    {"tanh", RnnActKind::kTanh, false, false, 0.f, 0.f},
    {"sigmoid", RnnActKind::kSigmoid, false, false, 0.f, 0.f},
    {"affine", RnnActKind::kAffine, true, true, 1.f, 0.f},
    {"leakyrelu", RnnActKind::kLeakyRelu, true, false, 0.01f, 0.f},
    {"thresholdedrelu", RnnActKind::kThresholdedRelu, true, false, 1.f, 0.f},
    {"scaledtanh", RnnActKind::kScaledTanh, true, true, 1.f, 1.f},
    {"hardsigmoid", RnnActKind::kHardSigmoid, true, true, 0.2f, 0.5f},
    {"elu", RnnActKind::kElu, true, false, 1.f, 0.f},
    {"softsign", RnnActKind::kSoftsign, false, false, 0.f, 0.f},
    {"softplus", RnnActKind::kSoftplus, false, false, 0.f, 0.f},
};

Status attr_error(const Node& n, const std::string& msg) {
  return Status(StatusCode::kInvalidModel, n.describe() + ": " + msg);
}

// An attribute present with another type than the op defines is a malformed model.
template <typename T>
Status check_type(const Node& n, const char* name, const char* type_name) {
  if (n.attrs.has(name) && !n.attrs.get_ptr<T>(name))
    return attr_error(n, fmt::format("attribute {} must be {}", name, type_name));
  return Status::Ok();
}

Status parse_activations(const Node& n, RnnAttrs& a) {
  std::vector<std::string> names = n.attrs.strings("activations");
  const size_t want = static_cast<size_t>(a.acts_per_direction * a.num_directions);
  if (names.empty()) {
    static const char* const kDefaults[3][3] = {{"tanh"}, {"sigmoid", "tanh"}, {"sigmoid", "tanh", "tanh"}};
    const int k = a.kind == RnnKind::kRnn ? 0 : a.kind == RnnKind::kGru ? 1 : 2;
    for (int d = 0; d < a.num_directions; ++d)
      for (int i = 0; i < a.acts_per_direction; ++i) names.emplace_back(kDefaults[k][i]);
  } else if (names.size() != want) {
    return attr_error(n, fmt::format("attribute activations has {} entries, expected {} ({} per direction, "
                                     "{} direction{})",
                                     names.size(), want, a.acts_per_direction, a.num_directions,
                                     a.num_directions == 1 ? "" : "s"));
  }
  // alpha/beta values are consumed in order by the activations that take them.
  const std::vector<float> alphas = n.attrs.floats("activation_alpha");
  const std::vector<float> betas = n.attrs.floats("activation_beta");
  size_t next_alpha = 0, next_beta = 0;
  for (const std::string& name : names) {
    std::string lower = name;
    std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
    const ActInfo* info = nullptr;
    for (const ActInfo& ai : kActs)
      if (lower == ai.name) info = &ai;
    if (!info) return Status(StatusCode::kUnsupported, n.describe() + ": unknown activation function '" + name + "'");
    RnnActivation act{info->kind, info->alpha, info->beta};
    if (info->uses_alpha && next_alpha < alphas.size()) act.alpha = alphas[next_alpha++];
    if (info->uses_beta && next_beta < betas.size()) act.beta = betas[next_beta++];
    a.activations.push_back(act);
  }
  // Surplus values mean the model expects another pairing of values to functions: refuse to guess.
  if (next_alpha < alphas.size() || next_beta < betas.size())
    return attr_error(n, fmt::format("activation_alpha/activation_beta have {}/{} values, but the activations "
                                     "[{}] take {}/{}",
                                     alphas.size(), betas.size(), fmt::join(names, ", "), next_alpha, next_beta));
  return Status::Ok();
}

}  // namespace

Expected<RnnAttrs> parse_rnn_attrs(const Node& n) {
  RnnAttrs a;
  if (n.op_type == "RNN") {
    a.kind = RnnKind::kRnn, a.gates = 1, a.acts_per_direction = 1;
  } else if (n.op_type == "GRU") {
    a.kind = RnnKind::kGru, a.gates = 3, a.acts_per_direction = 2;
  } else if (n.op_type == "LSTM") {
    a.kind = RnnKind::kLstm, a.gates = 4, a.acts_per_direction = 3;
  } else {
    return internal_error("{}: not a recurrent op", n.describe());
  }
  KILN_RETURN_IF_ERROR(check_type<std::string>(n, "direction", "a string"));
  KILN_RETURN_IF_ERROR(check_type<int64_t>(n, "hidden_size", "an int"));
  KILN_RETURN_IF_ERROR(check_type<int64_t>(n, "layout", "an int"));
  KILN_RETURN_IF_ERROR(check_type<float>(n, "clip", "a float"));
  KILN_RETURN_IF_ERROR(check_type<int64_t>(n, "linear_before_reset", "an int"));
  KILN_RETURN_IF_ERROR(check_type<int64_t>(n, "input_forget", "an int"));
  KILN_RETURN_IF_ERROR(check_type<std::vector<std::string>>(n, "activations", "a list of strings"));
  KILN_RETURN_IF_ERROR(check_type<std::vector<float>>(n, "activation_alpha", "a list of floats"));
  KILN_RETURN_IF_ERROR(check_type<std::vector<float>>(n, "activation_beta", "a list of floats"));

  const std::string dir = n.attrs.s("direction", "forward");
  if (dir == "forward") a.direction = RnnDirection::kForward;
  else if (dir == "reverse") a.direction = RnnDirection::kReverse;
  else if (dir == "bidirectional") a.direction = RnnDirection::kBidirectional;
  else return attr_error(n, "attribute direction must be forward, reverse or bidirectional, got '" + dir + "'");
  a.num_directions = a.direction == RnnDirection::kBidirectional ? 2 : 1;

  if (n.attrs.has("hidden_size")) {
    const int64_t h = n.attrs.i("hidden_size");
    if (h <= 0) return attr_error(n, fmt::format("attribute hidden_size must be positive, got {}", h));
    a.hidden_size = h;
  }
  a.layout = n.attrs.i("layout", 0);
  if (a.layout != 0 && a.layout != 1)
    return attr_error(n, fmt::format("attribute layout must be 0 or 1, got {}", a.layout));
  if (n.attrs.has("clip")) {
    const float c = n.attrs.f("clip");
    if (!(c > 0.f)) return attr_error(n, fmt::format("attribute clip must be positive, got {}", c));
    a.clip = c;
  }
  a.linear_before_reset = n.attrs.i("linear_before_reset", 0) != 0;
  const int64_t input_forget = n.attrs.i("input_forget", 0);
  if (input_forget != 0 && input_forget != 1)
    return attr_error(n, fmt::format("attribute input_forget must be 0 or 1, got {}", input_forget));
  a.input_forget = input_forget == 1;
  KILN_RETURN_IF_ERROR(parse_activations(n, a));
  return a;
}

}  // namespace kiln
