// Einsum: equation parsing (implicit and explicit output, repeated labels, ellipsis) and shape
// inference.
#include "ops/einsum.hpp"

#include <algorithm>

#include "ops/infer_util.hpp"

namespace kiln {

namespace {

int letter_id(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return 26 + (c - 'a');
  return -1;
}

struct Term {
  std::vector<int> letters;  // label ids; kEllipsis marks where "..." stands
  bool has_ellipsis = false;
  size_t num_letters = 0;
};
constexpr int kEllipsis = -1;

Expected<Term> parse_term(const std::string& s) {
  Term t;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '.') {
      if (s.compare(i, 3, "...") != 0) return invalid_model("'{}': a '.' that is not part of '...'", s);
      if (t.has_ellipsis) return invalid_model("'{}' has more than one ellipsis", s);
      t.has_ellipsis = true;
      t.letters.push_back(kEllipsis);
      i += 2;
      continue;
    }
    int id = letter_id(s[i]);
    if (id < 0) return invalid_model("'{}': '{}' is not a letter", s, s[i]);
    t.letters.push_back(id);
    ++t.num_letters;
  }
  return t;
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out(1);
  for (char c : s) {
    if (c == sep) out.emplace_back();
    else out.back() += c;
  }
  return out;
}

}  // namespace

Expected<EinsumSpec> parse_einsum(const std::string& equation, const std::vector<size_t>& ranks) {
  std::string eq;
  for (char c : equation)
    if (c != ' ') eq += c;
  const size_t arrow = eq.find("->");
  const bool explicit_out = arrow != std::string::npos;
  const std::string lhs = explicit_out ? eq.substr(0, arrow) : eq;
  const std::vector<std::string> terms = split(lhs, ',');
  if (terms.size() != ranks.size())
    return invalid_model("equation '{}' has {} operand terms for {} inputs", equation, terms.size(), ranks.size());

  std::vector<Term> parsed;
  size_t ell_rank = 0;  // the broadcast rank of all ellipses together
  for (size_t k = 0; k < terms.size(); ++k) {
    KILN_ASSIGN_OR_RETURN(Term t, parse_term(terms[k]));
    if (t.has_ellipsis ? t.num_letters > ranks[k] : t.num_letters != ranks[k])
      return invalid_model("term '{}' of equation '{}' does not fit input {} of rank {}", terms[k], equation, k,
                           ranks[k]);
    if (t.has_ellipsis) ell_rank = std::max(ell_rank, ranks[k] - t.num_letters);
    parsed.push_back(std::move(t));
  }

  EinsumSpec spec;
  spec.num_labels = kEinsumEllipsisBase + static_cast<int>(ell_rank);
  std::vector<int> count(static_cast<size_t>(spec.num_labels), 0);
  for (size_t k = 0; k < parsed.size(); ++k) {
    std::vector<int> labels;
    for (int id : parsed[k].letters) {
      if (id != kEllipsis) {
        labels.push_back(id);
        continue;
      }
      const size_t e = ranks[k] - parsed[k].num_letters;
      for (size_t j = 0; j < e; ++j) labels.push_back(kEinsumEllipsisBase + static_cast<int>(ell_rank - e + j));
    }
    for (int id : labels) ++count[static_cast<size_t>(id)];
    spec.inputs.push_back(std::move(labels));
  }

  if (explicit_out) {
    KILN_ASSIGN_OR_RETURN(Term out, parse_term(eq.substr(arrow + 2)));
    std::vector<bool> seen(static_cast<size_t>(spec.num_labels), false);
    for (int id : out.letters) {
      if (id == kEllipsis) {
        for (size_t j = 0; j < ell_rank; ++j) spec.output.push_back(kEinsumEllipsisBase + static_cast<int>(j));
        continue;
      }
      if (count[static_cast<size_t>(id)] == 0)
        return invalid_model("output label of equation '{}' does not occur in any input", equation);
      if (seen[static_cast<size_t>(id)]) return invalid_model("equation '{}' repeats an output label", equation);
      seen[static_cast<size_t>(id)] = true;
      spec.output.push_back(id);
    }
  } else {
    // Implicit output: the broadcast dims, then the letters that occur once, alphabetically.
    for (size_t j = 0; j < ell_rank; ++j) spec.output.push_back(kEinsumEllipsisBase + static_cast<int>(j));
    for (int id = 0; id < kEinsumEllipsisBase; ++id)
      if (count[static_cast<size_t>(id)] == 1) spec.output.push_back(id);
  }
  return spec;
}

namespace {

Status infer_einsum(InferContext& ctx) {
  const std::string equation = ctx.attrs().s("equation");
  if (equation.empty()) return ctx.error("attribute 'equation' is missing");
  const DType dt = ctx.input(0).dtype;
  std::vector<size_t> ranks;
  for (size_t k = 0; k < ctx.num_inputs(); ++k) {
    if (!ctx.has_input(k)) return ctx.error("input {} is missing", k);
    if (ctx.input(k).dtype != dt)
      return ctx.error("inputs must share one dtype: input {} is {}, input 0 is {}", k,
                       dtype_name(ctx.input(k).dtype), dtype_name(dt));
    if (!ctx.input(k).shape.has_rank()) {
      ctx.set_output(0, dt, Shape::unknown_rank());
      return Status::Ok();
    }
    ranks.push_back(ctx.input(k).shape.rank());
  }
  auto spec = parse_einsum(equation, ranks);
  if (!spec) return ctx.error("{}", spec.status().message());
  // The size of each label: letters must agree; broadcast (ellipsis) dims may also be 1.
  std::vector<Dim> size(static_cast<size_t>(spec->num_labels), Dim());
  std::vector<bool> is_one(static_cast<size_t>(spec->num_labels), true);
  for (size_t k = 0; k < ranks.size(); ++k) {
    for (size_t d = 0; d < ranks[k]; ++d) {
      const int id = spec->inputs[k][d];
      const Dim& dim = ctx.input(k).shape[d];
      Dim& s = size[static_cast<size_t>(id)];
      const bool broadcast = id >= kEinsumEllipsisBase;
      if (broadcast && dim.known() && dim.value == 1) continue;
      is_one[static_cast<size_t>(id)] = false;
      if (!s.known() && s.symbol.empty()) s = dim;
      else if (dim.known() && s.known() && dim.value != s.value)
        return ctx.error("equation '{}': dim {} of input {} has size {}, but its label has size {} elsewhere",
                         equation, d, k, dim.value, s.value);
      else if (dim.known() && !s.known()) s = dim;
    }
  }
  std::vector<Dim> out;
  for (int id : spec->output) out.push_back(is_one[static_cast<size_t>(id)] ? Dim(1) : size[static_cast<size_t>(id)]);
  ctx.set_output(0, dt, Shape(std::move(out)));
  return Status::Ok();
}

}  // namespace
}  // namespace kiln

KILN_REGISTER_OP({.name = "Einsum", .min_inputs = 1, .infer = kiln::infer_einsum});
