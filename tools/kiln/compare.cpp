// `kiln compare MODEL --configs A,B,...`: runs one model under several backend/precision configs
// (or prebuilt plans) on the same inputs and reports how far each config's outputs are from the
// first config's (the reference). With --per-layer, CPU configs also keep every intermediate value
// so the first layer whose error grows past --layer-tol can be named.
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "backend.hpp"
#include "backends/cpu/cpu_executor.hpp"
#include "build_flags.hpp"
#include "builder/builder.hpp"
#include "cli_util.hpp"
#include "commands.hpp"
#include "compare_metrics.hpp"
#include "io/file.hpp"
#include "onnx/importer.hpp"
#include "run_inputs.hpp"
#include "runtime/engine.hpp"
#include "util/error.hpp"

namespace kiln::cli {

namespace {

struct CompareOptions {
  std::string model;
  std::vector<std::string> configs;
  InputOptions inputs;
  std::string json;
  double fail_above = -1;  // < 0: never fail on error size
  bool per_layer = false;
  double layer_tol = 1e-2;
};

// One parsed --configs entry: BACKEND:PRECISION, or plan:PATH.
struct Config {
  std::string label;
  std::string backend;    // "cpu" or "cuda"; empty for a plan
  std::string precision;  // "fp32", "fp16", "bf16"
  std::string plan_path;
};

Expected<Config> parse_config(const std::string& s) {
  Config c{.label = s};
  if (s.rfind("plan:", 0) == 0) {
    c.plan_path = s.substr(5);
    if (c.plan_path.empty()) return invalid_argument("config '{}': plan: needs a path", s);
    return c;
  }
  size_t colon = s.find(':');
  c.backend = s.substr(0, colon);
  c.precision = colon == std::string::npos ? "fp32" : s.substr(colon + 1);
  if (c.backend != "cpu" && c.backend != "cuda")
    return invalid_argument("unknown config '{}' (use cpu:fp32, cpu:fp16, cuda:fp32, cuda:fp16, cuda:bf16 or plan:PATH)",
                            s);
  if (c.precision != "fp32" && c.precision != "fp16" && c.precision != "bf16")
    return invalid_argument("config '{}': unknown precision '{}' (use fp32, fp16 or bf16)", s, c.precision);
  if (c.backend == "cuda") {
    Status st = check_backend_available(BackendKind::kCuda);
    if (!st.ok()) {
      // check_backend_available's hint about --backend does not apply here.
      std::string msg = st.message();
      msg = msg.substr(0, msg.find(" (use --backend"));
      return unsupported("config '{}': {}", s, msg);
    }
  }
  return c;
}

// What one config produced: named values (the graph outputs, and intermediates with --per-layer).
struct ConfigRun {
  std::vector<std::string> output_names;
  std::map<std::string, Tensor> values;
  // Intermediates in topological order, with the op type of their producer.
  std::vector<std::pair<std::string, std::string>> layers;
  bool has_layers = false;
};

Expected<Plan> make_plan(const Config& c, const std::string& model_path, const std::vector<BoundInput>& bound) {
  if (!c.plan_path.empty()) {
    KILN_RETURN_IF_ERROR(check_input_path(c.plan_path, "plan"));
    if (!is_plan_file(c.plan_path)) return invalid_argument("config '{}': '{}' is not a kiln plan", c.label, c.plan_path);
    return load_plan(c.plan_path);
  }
  auto model = import_onnx_file(model_path);
  if (!model.ok()) return Status(model.status()).add_context("cannot import '" + model_path + "'");
  BuildOptions o;
  o.backend = c.backend;
  o.fp16 = c.precision == "fp16";
  o.bf16 = c.precision == "bf16";
  o.tf32 = false;  // fp32 means fp32: TF32 would blur the reference
  for (const BoundInput& b : bound) o.input_shapes[b.name] = b.tensor.dims();
  return build_plan(std::move(model).value(), o);
}

Expected<ConfigRun> run_config(const Config& c, const CompareOptions& opt, const std::vector<BoundInput>& bound) {
  auto plan = make_plan(c, opt.model, bound);
  if (!plan.ok()) return Status(plan.status()).add_context("config '" + c.label + "'");
  std::map<std::string, Tensor> feeds;
  for (const BoundInput& b : bound) feeds[b.name] = b.tensor;
  ConfigRun r;
  Graph& g = *plan->graph;
  for (const Value* v : g.outputs) r.output_names.push_back(v->name);
  std::vector<Tensor> outs;
  if (opt.per_layer && plan->target.backend == "cpu") {
    // Every intermediate becomes a graph output, so the executor keeps it.
    std::set<const Value*> seen(g.outputs.begin(), g.outputs.end());
    for (const auto& n : g.nodes())
      for (Value* v : n->outputs)
        if (v && !v->name.empty() && v->type.is_tensor() && seen.insert(v).second) {
          g.outputs.push_back(v);
          r.layers.emplace_back(v->name, n->op_type);
        }
    r.has_layers = true;
    auto exec = CpuExecutor::create(plan->graph);
    if (!exec.ok()) return Status(exec.status()).add_context("config '" + c.label + "'");
    auto res = (*exec)->run(feeds);
    if (!res.ok()) return Status(res.status()).add_context("config '" + c.label + "'");
    outs = std::move(res).value();
    for (size_t i = 0; i < outs.size(); ++i) r.values[g.outputs[i]->name] = outs[i];
    return r;
  }
  auto engine = Engine::from_plan(std::move(plan).value());
  if (!engine.ok()) return Status(engine.status()).add_context("config '" + c.label + "'");
  KILN_ASSIGN_OR_RETURN(auto ctx, (*engine)->create_context());
  auto res = ctx->run(feeds);
  if (!res.ok()) return Status(res.status()).add_context("config '" + c.label + "'");
  outs = std::move(res).value();
  for (size_t i = 0; i < outs.size() && i < r.output_names.size(); ++i) r.values[r.output_names[i]] = outs[i];
  return r;
}

// JSON numbers cannot be inf/NaN: those become strings.
nlohmann::ordered_json num(double v) {
  if (std::isfinite(v)) return v;
  return std::isnan(v) ? "nan" : (v > 0 ? "inf" : "-inf");
}

nlohmann::ordered_json metrics_json(const CompareMetrics& m) {
  nlohmann::ordered_json j = {{"count", m.count},       {"max_abs", num(m.max_abs)}, {"mean_abs", num(m.mean_abs)},
                              {"rel_l2", num(m.rel_l2)}, {"cosine", num(m.cosine)}};
  j["top1"] = m.top1 ? nlohmann::ordered_json(*m.top1) : nlohmann::ordered_json(nullptr);
  if (m.nonfinite) j["nonfinite"] = m.nonfinite;
  return j;
}

Status compare(const CompareOptions& opt, int& exit_code) {
  KILN_RETURN_IF_ERROR(check_input_path(opt.model, "model"));
  std::vector<Config> configs;
  for (const std::string& s : opt.configs) {
    KILN_ASSIGN_OR_RETURN(Config c, parse_config(s));
    configs.push_back(std::move(c));
  }
  if (configs.size() < 2) return invalid_argument("--configs needs at least two configs (the first is the reference)");
  if (is_plan_file(opt.model))
    for (const Config& c : configs)
      if (c.plan_path.empty())
        return invalid_argument("'{}' is a plan: config '{}' needs the ONNX model (give the model, and the plan as "
                                "plan:PATH)",
                                opt.model, c.label);

  // Inputs from the model's declared inputs (a plan as the model argument works too).
  GraphPtr input_graph;
  if (is_plan_file(opt.model)) {
    KILN_ASSIGN_OR_RETURN(Plan p, load_plan(opt.model));
    input_graph = p.graph;
  } else {
    auto model = import_onnx_file(opt.model);
    if (!model.ok()) return Status(model.status()).add_context("cannot import '" + opt.model + "'");
    input_graph = model->graph;
  }
  KILN_ASSIGN_OR_RETURN(auto bound, prepare_inputs(*input_graph, opt.inputs));
  for (const BoundInput& in : bound) {
    std::string source = in.file.empty() ? fmt::format("random (seed {})", opt.inputs.seed) : "from " + in.file;
    std::printf("input  '%s': %s  %s\n", in.name.c_str(), in.tensor.describe().c_str(), source.c_str());
  }

  std::vector<ConfigRun> runs;
  for (const Config& c : configs) {
    KILN_ASSIGN_OR_RETURN(ConfigRun r, run_config(c, opt, bound));
    runs.push_back(std::move(r));
  }
  const ConfigRun& ref = runs[0];

  nlohmann::ordered_json doc = {{"model", opt.model}, {"reference", configs[0].label}};
  nlohmann::ordered_json jcmp = nlohmann::ordered_json::array();
  std::printf("\nreference: %s\n", configs[0].label.c_str());
  std::printf("%-24s %-12s %12s %12s %12s %10s %8s\n", "output", "config", "max_abs", "mean_abs", "rel_l2", "cosine",
              "top1");
  bool over = false;
  for (size_t ci = 1; ci < configs.size(); ++ci) {
    const ConfigRun& run = runs[ci];
    nlohmann::ordered_json entry = {{"config", configs[ci].label}};
    nlohmann::ordered_json jouts = nlohmann::ordered_json::array();
    for (const std::string& name : ref.output_names) {
      auto it = run.values.find(name);
      if (it == run.values.end())
        return invalid_argument("config '{}' has no output '{}' (the reference's)", configs[ci].label, name);
      auto m = compare_tensors(ref.values.at(name), it->second);
      if (!m.ok()) return Status(m.status()).add_context(fmt::format("output '{}', config '{}'", name, configs[ci].label));
      if (opt.fail_above >= 0 && !(m->rel_l2 <= opt.fail_above)) over = true;
      std::string top1 = m->top1 ? fmt::format("{:.4f}", *m->top1) : "-";
      std::printf("%-24s %-12s %12.4g %12.4g %12.4g %10.6f %8s\n", name.c_str(), configs[ci].label.c_str(), m->max_abs,
                  m->mean_abs, m->rel_l2, m->cosine, top1.c_str());
      if (m->nonfinite)
        std::printf("  %lld element(s) are NaN/Inf in only one of the two (or differ in sign of Inf)\n",
                    static_cast<long long>(m->nonfinite));
      nlohmann::ordered_json jo = {{"name", name}};
      jo.update(metrics_json(*m));
      jouts.push_back(jo);
    }
    entry["outputs"] = jouts;

    if (opt.per_layer) {
      nlohmann::ordered_json jl = nlohmann::ordered_json::array();
      nlohmann::ordered_json first = nullptr;
      if (!ref.has_layers || !run.has_layers) {
        std::printf("per-layer: skipped for %s (only CPU configs keep intermediates)\n", configs[ci].label.c_str());
      } else {
        for (const auto& [name, op] : ref.layers) {
          auto a = ref.values.find(name);
          auto b = run.values.find(name);
          if (a == ref.values.end() || b == run.values.end()) continue;
          auto m = compare_tensors(a->second, b->second);
          if (!m.ok()) continue;  // a value whose shape a pass changed is not comparable
          nlohmann::ordered_json j = {{"name", name}, {"op", op}};
          j.update(metrics_json(*m));
          jl.push_back(j);
          if (first.is_null() && !(m->rel_l2 <= opt.layer_tol))
            first = {{"name", name}, {"op", op}, {"rel_l2", num(m->rel_l2)}, {"nonfinite", m->nonfinite}};
        }
        if (first.is_null())
          std::printf("per-layer %s: %zu common layers, none above rel_l2 %g\n", configs[ci].label.c_str(), jl.size(),
                      opt.layer_tol);
        else
          std::printf("per-layer %s: %zu common layers; first above rel_l2 %g: '%s' (%s) rel_l2 %.4g%s\n",
                      configs[ci].label.c_str(), jl.size(), opt.layer_tol, first["name"].get<std::string>().c_str(),
                      first["op"].get<std::string>().c_str(),
                      first["rel_l2"].is_number() ? first["rel_l2"].get<double>() : INFINITY,
                      first["nonfinite"].get<int64_t>() > 0
                          ? fmt::format(" ({} NaN/Inf in only one config)", first["nonfinite"].get<int64_t>()).c_str()
                          : "");
      }
      entry["layers"] = jl;
      entry["first_layer_above_tol"] = first;
    }
    jcmp.push_back(entry);
  }
  doc["layer_tol"] = opt.layer_tol;
  doc["comparisons"] = jcmp;
  if (!opt.json.empty()) {
    Status st = write_file_atomic(opt.json, doc.dump(2) + "\n");
    if (!st.ok()) return st.add_context("--json");
    std::printf("wrote %s\n", opt.json.c_str());
  }
  if (over) {
    std::printf("FAIL: a rel_l2 is above --fail-above %g\n", opt.fail_above);
    exit_code = 1;
  }
  return Status::Ok();
}

}  // namespace

void add_compare_command(CLI::App& app, Action& action) {
  auto opt = std::make_shared<CompareOptions>();
  auto* cmd = app.add_subcommand("compare", "Compare a model's outputs across backends and precisions");
  cmd->add_option("model", opt->model, "The ONNX model (a plan when every config is plan:PATH)")->required();
  cmd->add_option("--configs", opt->configs,
                  "Comma-separated configs; the first is the reference: cpu:fp32, cpu:fp16, cpu:bf16, cuda:fp32, "
                  "cuda:fp16, cuda:bf16, plan:PATH")
      ->delimiter(',')
      ->default_str("cpu:fp32,cpu:fp16");
  cmd->add_option("--input,-i", opt->inputs.inputs,
                  "NAME=FILE: an input from a .npy or TensorProto .pb file (repeatable; a bare FILE for a one-input "
                  "model)");
  cmd->add_option("--shapes", opt->inputs.shapes,
                  "NAME:1x3x224x224 for random inputs with dynamic dims (repeatable or comma-separated)");
  cmd->add_option("--seed", opt->inputs.seed, "Seed of the random inputs")->default_val(42);
  cmd->add_option("--json", opt->json, "Write the metrics as JSON to this file");
  cmd->add_option("--fail-above", opt->fail_above, "Exit with status 1 when any output's rel L2 error exceeds this");
  cmd->add_flag("--per-layer", opt->per_layer,
                "Also compare every intermediate value present in both configs and name the first layer above "
                "--layer-tol (CPU configs and CPU plans only: CUDA configs and plans compare outputs only)");
  cmd->add_option("--layer-tol", opt->layer_tol, "rel L2 above which --per-layer names a layer")->default_val(1e-2);
  cmd->callback([&action, opt] {
    action = [opt] {
      if (opt->configs.empty()) opt->configs = {"cpu:fp32", "cpu:fp16"};
      int code = 0;
      Status st = compare(*opt, code);
      if (!st.ok()) return report_error(st);
      return code;
    };
  });
}

}  // namespace kiln::cli
