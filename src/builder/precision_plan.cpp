#include "builder/precision_plan.hpp"

#include <map>

#include "builder/accuracy_budget.hpp"
#include "builder/precision_guard.hpp"
#include "builder/specialize.hpp"
#include "util/error.hpp"

namespace kiln {

namespace {

bool quantizable(const Node& n) {
  return n.domain.empty() && (n.op_type == "Conv" || n.op_type == "MatMul" || n.op_type == "Gemm");
}

bool has_float32_output(const Node& n) {
  for (const Value* v : n.outputs)
    if (v && v->type.is_tensor() && v->type.dtype == DType::kFloat32) return true;
  return false;
}

DType float_dtype(const std::string& prec) {
  if (prec == "fp16") return DType::kFloat16;
  if (prec == "bf16") return DType::kBFloat16;
  return DType::kFloat32;
}

// The static dims of a value, or empty when some dim is unknown.
Dims static_dims(const Value* v) {
  if (!v) return {};
  return v->type.shape.to_dims().value_or(Dims{});
}

int64_t product(const Dims& d, size_t from = 0, size_t to = SIZE_MAX) {
  int64_t p = 1;
  for (size_t i = from; i < d.size() && i < to; ++i) p *= d[i];
  return p;
}

std::string describe_unit(const SensitivityUnit& u) {
  if (u.nodes.size() == 1) return "'" + u.nodes[0] + "'";
  return fmt::format("'{}' .. '{}' ({} layers, measured as a group)", u.nodes.front(), u.nodes.back(), u.nodes.size());
}

// Applies the overrides of --layer-precision to `p`.
Status apply_overrides(const Graph& g, const BuildOptions& o, bool obey, bool calibrated, bool can_quantize,
                       PrecisionPlan& p,
                       std::set<std::string>& explicit_nodes) {
  const auto& rules = o.layer_precisions;
  std::vector<bool> matched(rules.size(), false);
  for (const auto& up : g.nodes()) {
    const Node& n = *up;
    const std::string key = precision_key(n);
    int hit = -1;
    for (size_t i = 0; i < rules.size(); ++i)
      if (glob_match(rules[i].first, key)) hit = static_cast<int>(i);  // a later rule wins
    if (hit < 0) continue;
    matched[static_cast<size_t>(hit)] = true;
    const auto& [pattern, prec] = rules[static_cast<size_t>(hit)];
    auto refuse = [&](const std::string& why) -> Status {
      if (obey)
        return invalid_argument("--layer-precision {}:{}: {}: {} (--precision-constraints obey)", pattern, prec,
                                n.describe(), why);
      p.report.push_back(fmt::format("warning: --layer-precision {}:{}: {}: {}; ignored (--precision-constraints "
                                     "prefer)", pattern, prec, n.describe(), why));
      return Status::Ok();
    };
    if (prec == "int8" || prec == "fp8") {
      if (!quantizable(n)) KILN_RETURN_IF_ERROR(refuse(prec + " applies to Conv, MatMul and Gemm only"));
      else if (!calibrated) KILN_RETURN_IF_ERROR(refuse(prec + " needs calibration data (--calib-data)"));
      else if (!can_quantize)
        KILN_RETURN_IF_ERROR(refuse(prec + " needs Q/DQ insertion, which this build does not run (--int8)"));
      else {
        p.quantize.insert(key);
        p.keep_float.erase(key);
        explicit_nodes.insert(key);
        p.report.push_back(fmt::format("layer precision: '{}' ({}) {}", key, n.op_type, prec));
      }
      continue;
    }
    if (!computes_float(n)) {
      KILN_RETURN_IF_ERROR(refuse("it computes no floating-point values"));
      continue;
    }
    p.assignment.nodes[key] = float_dtype(prec);
    explicit_nodes.insert(key);
    if (quantizable(n)) p.keep_float.insert(key);
    p.report.push_back(fmt::format("layer precision: '{}' ({}) {}", key, n.op_type, prec));
  }
  for (size_t i = 0; i < rules.size(); ++i) {
    if (matched[i]) continue;
    std::string msg = fmt::format("--layer-precision {}:{} matches no node (nodes are named as after the graph passes: "
                                  "`kiln inspect MODEL` lists them)", rules[i].first, rules[i].second);
    if (obey) return invalid_argument("{} (--precision-constraints obey)", msg);
    p.report.push_back("warning: " + msg);
  }
  return Status::Ok();
}

// Nodes the backend cannot run in their assigned reduced precision fall back to float32 (prefer)
// or fail the build (obey, for nodes named by --layer-precision).
Status check_backend_support(const Graph& g, const Backend& backend, bool obey,
                             const std::set<std::string>& explicit_nodes, PrecisionPlan& p) {
  std::map<std::string, const Node*> original;
  for (const auto& n : g.nodes()) original.emplace(precision_key(*n), n.get());
  for (int round = 0; round < 4; ++round) {
    GraphPtr c = clone_graph(g);
    KILN_RETURN_IF_ERROR(make_mixed_precision_pass(p.assignment)->run(*c).status());
    bool again = false;
    for (const auto& n : c->nodes()) {
      const std::string prec = layer_precision(*n, false);
      if (prec != "fp16" && prec != "bf16") continue;
      auto it = original.find(precision_key(*n));
      // Casts the pass added, and ops the backend lacks in float32 too (the support check reports those).
      if (it == original.end() || backend.supports(*n) || !backend.supports(*it->second)) continue;
      const std::string& key = it->first;
      std::string why = fmt::format("the {} backend has no {} kernel for {}", backend.name(), prec, n->op_type);
      if (explicit_nodes.count(key)) {
        if (obey)
          return invalid_argument("--layer-precision: {}: {} (--precision-constraints obey)", n->describe(), why);
        p.report.push_back(fmt::format("warning: '{}': {}; it runs in fp32 (--precision-constraints prefer)", key, why));
      } else {
        p.report.push_back(fmt::format("fallback: '{}' ({}) runs in fp32: {}", key, n->op_type, why));
      }
      p.assignment.nodes[key] = DType::kFloat32;
      again = true;
    }
    if (!again) break;
  }
  return Status::Ok();
}

Status apply_accuracy_budget(const Graph& g, const BuildOptions& o, const std::set<std::string>& explicit_nodes,
                             PrecisionPlan& p) {
  if (o.calibration_batches.empty())
    return invalid_argument("--accuracy-budget needs calibration data to measure with (--calib-data DIR)");
  std::vector<std::string> candidates;
  std::map<std::string, std::string> op_of;
  for (const auto& n : g.nodes()) {
    const std::string key = precision_key(*n);
    if (explicit_nodes.count(key) || moves_data(*n) || !has_float32_output(*n) || !n->subgraphs().empty() ||
        p.assignment.of(*n) == DType::kFloat32)
      continue;
    candidates.push_back(key);
    op_of[key] = n->op_type;
  }
  if (candidates.empty()) {
    if (p.assignment.fallback == DType::kFloat32 && p.quantize.empty())
      return invalid_argument("--accuracy-budget chooses which reduced-precision layers stay fp32: give --fp16, --bf16 "
                              "or --best");
    p.report.push_back("accuracy budget: no reduced-precision layer to choose from");
    return Status::Ok();
  }
  Batches batches(o.calibration_batches.begin(),
                  o.calibration_batches.begin() +
                      std::min<size_t>(o.calibration_batches.size(), static_cast<size_t>(std::max(1, o.accuracy_max_batches))));
  const PrecisionAssignment base = p.assignment;
  ReduceFn reduce = [&](const std::set<std::string>& reduced) -> Expected<GraphPtr> {
    GraphPtr c = clone_graph(g);
    PrecisionAssignment a = base;
    for (const std::string& key : candidates)
      if (!reduced.count(key)) a.nodes[key] = DType::kFloat32;
    KILN_RETURN_IF_ERROR(make_mixed_precision_pass(a)->run(*c).status());
    return c;
  };
  if (o.log)
    o.log(fmt::format("      accuracy budget: measuring {} layers on {} calibration batches (CPU)", candidates.size(),
                      batches.size()));
  KILN_ASSIGN_OR_RETURN(AccuracyBudgetResult r,
                        fit_accuracy_budget(g, candidates, reduce, batches, o.accuracy_budget, o.accuracy_max_layers));
  p.report.push_back(fmt::format(
      "accuracy budget {:.3g} (mean relative L2 of the outputs against fp32, {} batches, {} units measured): error "
      "{:.3g} with every layer reduced, {:.3g} with {} unit(s) kept in fp32",
      o.accuracy_budget, batches.size(), r.units.size(), r.all_reduced_error, r.final_error, r.kept.size()));
  for (const SensitivityUnit& u : r.kept) {
    p.report.push_back(fmt::format("  kept fp32: {} ({}) sensitivity {:.3g}", describe_unit(u), op_of[u.nodes[0]],
                                   u.error));
    for (const std::string& key : u.nodes) p.assignment.nodes[key] = DType::kFloat32;
  }
  if (!r.met)
    p.report.push_back(fmt::format("warning: the accuracy budget is not met ({:.3g} > {:.3g}): the layers set by "
                                   "--layer-precision stay as given", r.final_error, o.accuracy_budget));
  return Status::Ok();
}

}  // namespace

bool glob_match(std::string_view pat, std::string_view text) {
  size_t p = 0, t = 0, star = std::string_view::npos, mark = 0;
  while (t < text.size()) {
    if (p < pat.size() && (pat[p] == '?' || pat[p] == text[t])) {
      ++p;
      ++t;
    } else if (p < pat.size() && pat[p] == '*') {
      star = p++;
      mark = t;
    } else if (star != std::string_view::npos) {
      p = star + 1;
      t = ++mark;
    } else {
      return false;
    }
  }
  while (p < pat.size() && pat[p] == '*') ++p;
  return p == pat.size();
}

Expected<std::vector<std::pair<std::string, std::string>>> parse_layer_precisions(const std::vector<std::string>& args) {
  static const std::set<std::string> kKnown{"fp32", "tf32", "fp16", "bf16", "int8", "fp8"};
  std::vector<std::pair<std::string, std::string>> out;
  for (const std::string& arg : args) {
    size_t start = 0;
    while (start <= arg.size()) {
      size_t comma = arg.find(',', start);
      std::string item = arg.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
      start = comma == std::string::npos ? arg.size() + 1 : comma + 1;
      if (item.empty()) continue;
      size_t colon = item.rfind(':');
      if (colon == std::string::npos || colon == 0)
        return invalid_argument("--layer-precision '{}': expected NAME:PRECISION (e.g. conv1:fp32)", item);
      std::string prec = item.substr(colon + 1);
      if (!kKnown.count(prec))
        return invalid_argument("--layer-precision '{}': unknown precision '{}' (fp32, fp16, bf16, int8 or fp8)", item,
                                prec);
      out.emplace_back(item.substr(0, colon), prec == "tf32" ? "fp32" : prec);
    }
  }
  return out;
}

int64_t layer_macs(const Node& n) {
  const Dims y = static_dims(n.outputs.empty() ? nullptr : n.outputs[0]);
  if (y.empty()) return -1;
  if (n.op_type == "Conv") {
    const Dims w = static_dims(n.has_input(1) ? n.inputs[1] : nullptr);
    if (w.size() < 2) return -1;
    return product(y) * product(w, 1);  // each output: C/group * kernel multiply-adds
  }
  const Dims a = static_dims(n.has_input(0) ? n.inputs[0] : nullptr);
  if (a.empty()) return -1;
  if (n.op_type == "MatMul") return product(y) * a.back();
  if (n.op_type == "Gemm" && a.size() == 2) return product(y) * (n.attrs.i("transA", 0) ? a[0] : a[1]);
  return -1;
}

std::set<std::string> best_int8_layers(const Graph& g, std::set<std::string>* small) {
  std::set<std::string> out;
  for (const auto& n : g.nodes()) {
    if (!quantizable(*n)) continue;
    if (layer_macs(*n) >= kBestInt8MinMacs) out.insert(precision_key(*n));
    else if (small) small->insert(precision_key(*n));
  }
  return out;
}

void apply_to_quantization(const PrecisionPlan& plan, QuantizationSpec& spec) {
  spec.keep_float.insert(plan.keep_float.begin(), plan.keep_float.end());
  for (const std::string& key : plan.quantize) spec.keep_float.erase(key);
  spec.quantize.insert(plan.quantize.begin(), plan.quantize.end());  // past the speed rules too
}

Expected<PrecisionPlan> plan_precisions(const Graph& g, const BuildOptions& o, const Backend& backend,
                                        bool can_quantize) {
  if (o.fp16 && o.bf16) return invalid_argument("choose one of --fp16 and --bf16");
  if (o.precision_constraints != "obey" && o.precision_constraints != "prefer")
    return invalid_argument("--precision-constraints '{}': expected obey or prefer", o.precision_constraints);
  const bool obey = o.precision_constraints == "obey";
  const bool calibrated = !o.calibration_batches.empty();
  PrecisionPlan p;
  p.assignment.fallback = o.bf16 ? DType::kBFloat16 : (o.fp16 || o.best) ? DType::kFloat16 : DType::kFloat32;
  const std::string low(o.bf16 ? "bf16" : "fp16");
  if (o.best) {
    if (calibrated && can_quantize) {
      std::set<std::string> small;
      std::set<std::string> q = best_int8_layers(g, &small);
      p.keep_float = small;
      p.report.push_back(fmt::format("--best: int8 for the {} Conv/MatMul/Gemm layers with >= 2^20 multiply-adds ({} "
                                     "smaller stay {}), {} + tf32 elsewhere",
                                     q.size(), small.size(), low, low));
    } else if (calibrated) {
      p.report.push_back(fmt::format("--best: {} + tf32; int8 needs Q/DQ insertion, which this build does not run",
                                     low));
    } else {
      p.report.push_back(fmt::format("--best without calibration data: {} + tf32 (give --calib-data to let --best "
                                     "choose int8 too)", low));
    }
  }
  std::set<std::string> explicit_nodes;
  KILN_RETURN_IF_ERROR(apply_overrides(g, o, obey, calibrated, can_quantize, p, explicit_nodes));
  if (o.fp32_guard && p.assignment.fallback == DType::kBFloat16) {
    // The guarded patterns overflow float16's range; bfloat16 has float32's, and the kernels
    // accumulate in float32, so a bfloat16 result is one rounding like any other value.
    p.report.push_back("fp32 guard: nothing to keep for bf16 (float32's range; sums accumulate in float32)");
  } else if (o.fp32_guard && p.assignment.fallback == DType::kFloat16) {
    for (const GuardedNode& h : find_fp16_hazards(g)) {
      if (explicit_nodes.count(h.node)) {
        p.report.push_back(fmt::format("fp32 guard: '{}' ({}) left as --layer-precision sets it ({})", h.node, h.op,
                                       h.reason));
        continue;
      }
      p.assignment.nodes[h.node] = DType::kFloat32;
      p.report.push_back(fmt::format("fp32 guard: '{}' ({}) kept in fp32: {}", h.node, h.op, h.reason));
    }
  }
  KILN_RETURN_IF_ERROR(check_backend_support(g, backend, obey, explicit_nodes, p));
  if (o.accuracy_budget >= 0) KILN_RETURN_IF_ERROR(apply_accuracy_budget(g, o, explicit_nodes, p));
  p.any_reduced = p.assignment.fallback != DType::kFloat32;
  for (const auto& [key, d] : p.assignment.nodes) p.any_reduced |= d != DType::kFloat32;
  return p;
}

}  // namespace kiln
