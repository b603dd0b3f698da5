#include "builder/accuracy_budget.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include "backends/cpu/cpu_executor.hpp"
#include "builder/specialize.hpp"
#include "passes/precision.hpp"
#include "util/error.hpp"

namespace kiln {

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

double relative_l2(const Tensor& ref, const Tensor& test) {
  if (ref.dims() != test.dims()) return kInf;
  std::vector<double> a = ref.to_double_vector(), b = test.to_double_vector();
  double diff2 = 0, ref2 = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    if (!std::isfinite(a[i]) || !std::isfinite(b[i])) {
      if ((std::isnan(a[i]) && std::isnan(b[i])) || a[i] == b[i]) continue;
      return kInf;
    }
    diff2 += (a[i] - b[i]) * (a[i] - b[i]);
    ref2 += a[i] * a[i];
  }
  if (ref2 == 0) return diff2 == 0 ? 0.0 : kInf;
  return std::sqrt(diff2 / ref2);
}

Expected<std::vector<std::vector<Tensor>>> run_batches(GraphPtr g, const Batches& batches) {
  KILN_ASSIGN_OR_RETURN(auto exec, CpuExecutor::create(std::move(g)));
  std::vector<std::vector<Tensor>> out;
  for (size_t b = 0; b < batches.size(); ++b) {
    auto r = exec->run(batches[b]);
    if (!r.ok()) return Status(r.status()).add_context(fmt::format("accuracy budget, calibration batch {}", b));
    out.push_back(std::move(*r));
  }
  return out;
}

}  // namespace

double mean_relative_l2(const std::vector<Tensor>& ref, const std::vector<Tensor>& test) {
  double sum = 0;
  int n = 0;
  for (size_t i = 0; i < ref.size() && i < test.size(); ++i) {
    if (!is_floating(ref[i].dtype())) continue;
    sum += relative_l2(ref[i], test[i]);
    ++n;
  }
  return n ? sum / n : 0.0;
}

Expected<AccuracyBudgetResult> fit_accuracy_budget(const Graph& float_graph, const std::vector<std::string>& candidates,
                                                   const ReduceFn& reduce, const Batches& batches, double budget,
                                                   int max_units) {
  if (batches.empty()) return invalid_argument("the accuracy budget needs at least one calibration batch");
  KILN_ASSIGN_OR_RETURN(auto ref, run_batches(clone_graph(float_graph), batches));
  auto error_of = [&](const std::set<std::string>& reduced) -> Expected<double> {
    KILN_ASSIGN_OR_RETURN(GraphPtr g, reduce(reduced));
    KILN_ASSIGN_OR_RETURN(auto out, run_batches(std::move(g), batches));
    double sum = 0;
    for (size_t b = 0; b < out.size(); ++b) sum += mean_relative_l2(ref[b], out[b]);
    return sum / static_cast<double>(out.size());
  };

  AccuracyBudgetResult r;
  std::set<std::string> reduced(candidates.begin(), candidates.end());
  KILN_ASSIGN_OR_RETURN(r.all_reduced_error, error_of(reduced));
  r.final_error = r.all_reduced_error;
  if (r.final_error <= budget) return r;  // within budget as it is: nothing to measure
  // Units: single layers, or runs of consecutive layers when there are too many to measure alone.
  const size_t n_units = std::min(candidates.size(), static_cast<size_t>(std::max(1, max_units)));
  for (size_t u = 0; u < n_units; ++u) {
    SensitivityUnit unit;
    for (size_t i = u * candidates.size() / n_units; i < (u + 1) * candidates.size() / n_units; ++i)
      unit.nodes.push_back(candidates[i]);
    KILN_ASSIGN_OR_RETURN(unit.error, error_of({unit.nodes.begin(), unit.nodes.end()}));
    r.units.push_back(std::move(unit));
  }
  std::vector<const SensitivityUnit*> order;
  for (const SensitivityUnit& u : r.units) order.push_back(&u);
  std::stable_sort(order.begin(), order.end(),
                   [](const SensitivityUnit* a, const SensitivityUnit* b) { return a->error > b->error; });
  for (const SensitivityUnit* u : order) {
    if (r.final_error <= budget) break;
    for (const std::string& n : u->nodes) reduced.erase(n);
    r.kept.push_back(*u);
    KILN_ASSIGN_OR_RETURN(r.final_error, error_of(reduced));
  }
  r.met = r.final_error <= budget;
  return r;
}

std::vector<std::string> quantization_candidates(const Graph& g, const QuantizationSpec& spec) {
  std::vector<std::string> out;
  for (const auto& n : g.nodes())
    if (n->domain.empty() && spec.op_types.count(n->op_type) && !spec.keep_float.count(precision_key(*n)))
      out.push_back(precision_key(*n));
  return out;
}

ReduceFn int8_reducer(const Graph& float_graph, std::vector<std::string> candidates, QuantizationSpec base,
                      QdqInsertFn insert) {
  return [&float_graph, candidates = std::move(candidates), base = std::move(base),
          insert = std::move(insert)](const std::set<std::string>& reduced) -> Expected<GraphPtr> {
    GraphPtr c = clone_graph(float_graph);
    QuantizationSpec spec = base;
    for (const std::string& key : candidates)
      if (!reduced.count(key)) spec.keep_float.insert(key);
    KILN_RETURN_IF_ERROR(insert(*c, spec).status());
    KILN_RETURN_IF_ERROR(c->topological_sort());
    return c;
  };
}

}  // namespace kiln
