#include "plan_info.hpp"

#include <cstdio>

#include "cli_util.hpp"
#include "layer_cost.hpp"
#include "plugin/plugin_node.hpp"
#include "util/error.hpp"

namespace kiln::cli {

namespace {

// cudaRuntimeGetVersion: 1000*major + 10*minor.
std::string cuda_version_text(int v) { return fmt::format("{}.{}", v / 1000, (v % 1000) / 10); }
// cuDNN 9: major*10000 + minor*100 + patch; cuDNN 8 and older: major*1000 + minor*100 + patch.
std::string cudnn_version_text(int v) {
  int major_unit = v >= 90000 ? 10000 : 1000;
  return fmt::format("{}.{}.{}", v / major_unit, (v % major_unit) / 100, v % 100);
}
// cublasLtGetVersion: major*10000 + minor*100 + patch.
std::string cublas_version_text(int v) { return fmt::format("{}.{}.{}", v / 10000, (v % 10000) / 100, v % 100); }

// "Conv", "com.x.Foo", or for a plugin layer "Plugin[HSwish v1]".
std::string op_text(const Node& n) {
  std::string op = n.domain.empty() ? n.op_type : n.domain + "." + n.op_type;
  if (n.plugin) op += "[" + n.plugin->name + " v" + n.plugin->version + "]";
  return op;
}

nlohmann::ordered_json value_json(const Value* v) {
  if (!v) return nullptr;  // an absent optional input or output
  nlohmann::ordered_json j = {{"name", v->name}, {"dtype", std::string(dtype_name(v->type.dtype))}};
  if (v->type.shape.has_rank()) {
    nlohmann::ordered_json dims = nlohmann::ordered_json::array();
    for (const Dim& d : v->type.shape.dims()) {
      if (d.known()) dims.push_back(d.value);
      else dims.push_back(d.symbol.empty() ? "?" : d.symbol);
    }
    j["shape"] = dims;
  } else {
    j["shape"] = nullptr;  // unknown rank
  }
  if (v->is_constant()) j["constant"] = true;
  return j;
}

std::string value_text(const Value* v) {
  if (!v) return "-";
  return fmt::format("{} {}{}", v->name.empty() ? "''" : v->name, v->type.to_string(), v->is_constant() ? " const" : "");
}

std::string values_text(const std::vector<Value*>& values) {
  std::vector<std::string> parts;
  for (const Value* v : values) parts.push_back(value_text(v));
  return fmt::format("{}", fmt::join(parts, ", "));
}

const LayerChoice& choice_of(const Plan& plan, size_t i) {
  static const LayerChoice kNone;
  return i < plan.layers.size() ? plan.layers[i] : kNone;
}

}  // namespace

uint64_t plan_weight_bytes(const Plan& plan) {
  uint64_t total = 0;
  if (!plan.graph) return 0;
  for (const auto& v : plan.graph->values())
    if (v->constant) total += v->constant->nbytes();
  return total;
}

std::string target_text(const PlanTarget& t) {
  if (t.backend != "cuda") return t.backend;
  return fmt::format("cuda, {} (sm_{}), CUDA {}, cuDNN {}, cuBLASLt {}", t.device_name.empty() ? "?" : t.device_name,
                     t.compute_capability, cuda_version_text(t.cuda_runtime_version),
                     cudnn_version_text(t.cudnn_version), cublas_version_text(t.cublas_version));
}

std::string precision_counts(const Plan& plan) {
  std::vector<std::pair<std::string, int>> counts;
  for (const LayerChoice& c : plan.layers) {
    auto it = std::find_if(counts.begin(), counts.end(), [&](const auto& p) { return p.first == c.precision; });
    if (it == counts.end()) counts.emplace_back(c.precision, 1);
    else ++it->second;
  }
  std::vector<std::string> parts;
  for (const auto& [p, n] : counts) parts.push_back(fmt::format("{} {}", p.empty() ? "default" : p, n));
  return parts.empty() ? "none" : fmt::format("{}", fmt::join(parts, ", "));
}

nlohmann::ordered_json plan_json(const Plan& plan, const std::string& source) {
  const Graph& g = *plan.graph;
  const PlanTarget& t = plan.target;
  nlohmann::ordered_json j;
  j["source"] = source;
  j["kiln_version"] = plan.kiln_version;
  j["plan_format_version"] = kPlanFormatVersion;
  nlohmann::ordered_json target = {{"backend", t.backend}};
  if (t.backend == "cuda") {
    target["device"] = t.device_name;
    target["compute_capability"] = fmt::format("{}.{}", t.compute_capability / 10, t.compute_capability % 10);
    target["cuda_runtime"] = cuda_version_text(t.cuda_runtime_version);
    target["cudnn"] = cudnn_version_text(t.cudnn_version);
    target["cublaslt"] = cublas_version_text(t.cublas_version);
  }
  j["target"] = target;
  j["build_seconds"] = plan.build_seconds;
  j["build_options"] = nlohmann::ordered_json::parse(plan.options_json.empty() ? "{}" : plan.options_json, nullptr,
                                                     /*allow_exceptions=*/false);
  for (const char* key : {"inputs", "outputs"}) {
    nlohmann::ordered_json list = nlohmann::ordered_json::array();
    for (const Value* v : key[0] == 'i' ? g.inputs : g.outputs) list.push_back(value_json(v));
    j[key] = list;
  }
  nlohmann::ordered_json profiles = nlohmann::ordered_json::array();
  for (const OptimizationProfile& p : plan.profiles) {
    nlohmann::ordered_json jp;
    for (const auto& [name, r] : p.inputs) jp[name] = {{"min", r.min}, {"opt", r.opt}, {"max", r.max}};
    profiles.push_back(jp);
  }
  j["profiles"] = profiles;
  j["memory"] = {{"weights_bytes", plan_weight_bytes(plan)},
                 {"activation_arena_bytes", plan.arena_bytes},
                 {"workspace_limit_bytes", plan.workspace_bytes}};
  nlohmann::ordered_json layers = nlohmann::ordered_json::array();
  int64_t total_flops = 0;
  for (size_t i = 0; i < g.nodes().size(); ++i) {
    const Node& n = *g.nodes()[i];
    const LayerChoice& c = choice_of(plan, i);
    nlohmann::ordered_json ins = nlohmann::ordered_json::array(), outs = nlohmann::ordered_json::array();
    for (const Value* v : n.inputs) ins.push_back(value_json(v));
    for (const Value* v : n.outputs) outs.push_back(value_json(v));
    LayerCost cost = layer_cost(n);
    nlohmann::ordered_json fused = nlohmann::ordered_json::array();
    const std::string fused_list = fused_ops(n);
    for (std::string_view rest = fused_list; !rest.empty();) {
      size_t comma = rest.find(',');
      fused.push_back(std::string(rest.substr(0, comma)));
      rest = comma == std::string_view::npos ? "" : rest.substr(comma + 1);
    }
    nlohmann::ordered_json layer = {{"index", i},
                                    {"name", n.name},
                                    {"op", op_text(n)},
                                    {"precision", c.precision},
                                    {"tactic", c.tactic},
                                    {"inputs", ins},
                                    {"outputs", outs},
                                    {"flops", cost.flops >= 0 ? nlohmann::ordered_json(cost.flops) : nullptr},
                                    {"bytes", cost.bytes >= 0 ? nlohmann::ordered_json(cost.bytes) : nullptr}};
    if (!fused.empty()) layer["fused"] = fused;
    if (cost.flops > 0) total_flops += cost.flops;
    layers.push_back(layer);
  }
  j["total_flops"] = total_flops;
  j["layers"] = layers;
  return j;
}

void print_layers(const Plan& plan) {
  const Graph& g = *plan.graph;
  size_t name_w = 4, op_w = 2, prec_w = 9, tactic_w = 6;
  for (size_t i = 0; i < g.nodes().size(); ++i) {
    const Node& n = *g.nodes()[i];
    name_w = std::max(name_w, n.name.size());
    op_w = std::max(op_w, op_text(n).size());
    prec_w = std::max(prec_w, choice_of(plan, i).precision.size());
    tactic_w = std::max(tactic_w, choice_of(plan, i).tactic.size());
  }
  std::printf("  %4s  %-*s  %-*s  %-*s  %-*s  %s\n", "#", static_cast<int>(name_w), "name", static_cast<int>(op_w),
              "op", static_cast<int>(prec_w), "precision", static_cast<int>(tactic_w), "tactic",
              "inputs -> outputs  | FLOPs, bytes moved  [fused nodes]");
  for (size_t i = 0; i < g.nodes().size(); ++i) {
    const Node& n = *g.nodes()[i];
    const LayerChoice& c = choice_of(plan, i);
    LayerCost cost = layer_cost(n);
    std::string fused = fused_ops(n);
    // Cost and fusion last, so the leading columns keep their layout.
    std::printf("  %4zu  %-*s  %-*s  %-*s  %-*s  %s -> %s  | %s, %s%s\n", i, static_cast<int>(name_w), n.name.c_str(),
                static_cast<int>(op_w), op_text(n).c_str(), static_cast<int>(prec_w),
                c.precision.empty() ? "-" : c.precision.c_str(), static_cast<int>(tactic_w),
                c.tactic.empty() ? "-" : c.tactic.c_str(), values_text(n.inputs).c_str(),
                values_text(n.outputs).c_str(), flops_text(cost.flops).c_str(),
                cost.bytes < 0 ? "-" : format_bytes(static_cast<uint64_t>(cost.bytes)).c_str(),
                fused.empty() ? "" : ("  [fused: " + fused + "]").c_str());
  }
}

void print_plan(const Plan& plan, const std::string& source) {
  const Graph& g = *plan.graph;
  std::printf("plan     %s (kiln %s, plan format %u)\n", source.c_str(), plan.kiln_version.c_str(), kPlanFormatVersion);
  std::printf("target   %s\n", target_text(plan.target).c_str());
  std::printf("built    in %.2f s, options %s\n", plan.build_seconds, plan.options_json.c_str());
  for (const Value* v : g.inputs) std::printf("input    %s\n", value_text(v).c_str());
  for (const Value* v : g.outputs) std::printf("output   %s\n", value_text(v).c_str());
  for (size_t i = 0; i < plan.profiles.size(); ++i)
    std::printf("profile  %zu: %s\n", i, profile_to_string(plan.profiles[i]).c_str());
  if (plan.target.backend == "cpu")  // the CPU allocates activations per run: no arena, no workspace
    std::printf("memory   weights %s\n", format_bytes(plan_weight_bytes(plan)).c_str());
  else
    std::printf("memory   weights %s, activation arena %s, workspace limit %s\n",
                format_bytes(plan_weight_bytes(plan)).c_str(), format_bytes(plan.arena_bytes).c_str(),
                format_bytes(plan.workspace_bytes).c_str());
  int64_t total_flops = 0;
  for (const auto& n : g.nodes()) total_flops += std::max<int64_t>(0, layer_cost(*n).flops);
  std::printf("layers   %zu (%s), %s\n", g.nodes().size(), precision_counts(plan).c_str(),
              flops_text(total_flops).c_str());
  print_layers(plan);
}

}  // namespace kiln::cli
