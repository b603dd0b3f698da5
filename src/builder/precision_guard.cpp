#include "builder/precision_guard.hpp"

#include <map>
#include <set>

#include "ops/reduce.hpp"
#include "passes/precision.hpp"

namespace kiln {

namespace {

// Reductions that add values up (their result grows with the element count).
bool is_sum(const Node& n) {
  static const std::set<std::string> kOps{"ReduceSum", "ReduceMean", "ReduceL2", "ReduceSumSquare"};
  return n.domain.empty() && kOps.count(n.op_type) > 0;
}

// Elements folded into each output of a Reduce*: -1 when a reduced dim is unknown.
int64_t reduced_elements(const Node& n) {
  const Value* x = n.inputs.empty() ? nullptr : n.inputs[0];
  if (!x || !x->type.shape.has_rank()) return -1;
  std::vector<int64_t> axes;
  if (n.has_input(1)) {
    if (!n.inputs[1]->constant) return -1;
    auto v = n.inputs[1]->constant->to_int64_vector();
    if (!v.ok()) return -1;
    axes = std::move(*v);
  }
  const int64_t rank = static_cast<int64_t>(x->type.shape.rank());
  auto mask = reduce_axes_mask(n, rank, axes, n.attrs.i("noop_with_empty_axes", 0) != 0);
  if (!mask.ok()) return -1;
  int64_t count = 1;
  for (int64_t i = 0; i < rank; ++i) {
    if (!(*mask)[static_cast<size_t>(i)]) continue;
    const Dim& d = x->type.shape[static_cast<size_t>(i)];
    if (!d.known()) return -1;
    count *= d.value;
  }
  return count;
}

bool is_square(const Node& n) {
  if (!n.domain.empty()) return false;
  if (n.op_type == "Mul") return n.inputs.size() == 2 && n.inputs[0] == n.inputs[1];
  if (n.op_type == "Pow" && n.has_input(1) && n.inputs[1]->constant && n.inputs[1]->constant->numel() == 1)
    return n.inputs[1]->constant->to_double_vector()[0] == 2.0;
  return false;
}

// The single reader of `v`, if it has exactly one in `g`.
const Node* only_consumer(const Graph& g, const Value* v) {
  auto readers = g.consumers(v);
  return readers.size() == 1 ? readers[0] : nullptr;
}

}  // namespace

std::vector<GuardedNode> find_fp16_hazards(const Graph& g) {
  std::map<const Node*, std::string> why;
  auto keep = [&](const Node* n, const std::string& reason) {
    if (n) why.emplace(n, reason);  // the first reason found stays
  };
  for (const auto& up : g.nodes()) {
    const Node& n = *up;
    if (!is_sum(n)) continue;
    const Node* prod = n.has_input(0) ? n.inputs[0]->producer : nullptr;
    if (n.op_type == "ReduceSumSquare") keep(&n, "sum of squares: exceeds float16's 65504 once |x| > 256");
    if (prod && is_square(*prod)) {
      const std::string reason = "decomposed normalization (" + prod->op_type + " x*x -> " + n.op_type +
                                 "): the sum of squares exceeds float16's 65504 once |x| > 256";
      keep(prod, reason);
      keep(&n, reason);
      // The variance's epsilon and square root, where its result is back in x's range.
      const Node* next = only_consumer(g, n.outputs[0]);
      if (next && next->op_type == "Add") {
        keep(next, reason);
        next = next->outputs.empty() ? nullptr : only_consumer(g, next->outputs[0]);
      }
      if (next && next->op_type == "Sqrt") keep(next, reason);
    } else if (prod && (prod->op_type == "Exp" || prod->op_type == "Pow")) {
      const std::string reason = prod->op_type + " feeding " + n.op_type +
                                 ": exponentials overflow float16 (max 65504) and their sum more so";
      keep(prod, reason);
      keep(&n, reason);
    }
    const int64_t count = reduced_elements(n);
    if (count < 0)
      keep(&n, n.op_type + " over a number of elements unknown at build time (could exceed " +
                   std::to_string(kGuardReduceElements) + ")");
    else if (count > kGuardReduceElements)
      keep(&n, n.op_type + " over " + std::to_string(count) + " elements (> " +
                   std::to_string(kGuardReduceElements) + "): the sum leaves float16's range and precision");
  }
  std::vector<GuardedNode> out;
  for (const auto& up : g.nodes())
    if (auto it = why.find(up.get()); it != why.end())
      out.push_back({precision_key(*up), up->op_type, it->second});
  return out;
}

}  // namespace kiln
