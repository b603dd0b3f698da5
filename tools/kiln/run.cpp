// `kiln run MODEL|PLAN`: runs a model or a plan once on given or random inputs, prints a summary
// per output and optionally writes the outputs as .npy files. A model runs on the CPU as imported,
// or on CUDA through a plan built in memory for the shapes of its inputs.
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "backend.hpp"
#include "build_flags.hpp"
#include "cli_util.hpp"
#include "commands.hpp"
#include "io/file.hpp"
#include "io/npy.hpp"
#include "onnx/importer.hpp"
#include "run_inputs.hpp"
#include "runtime/engine.hpp"
#include "util/error.hpp"

namespace kiln::cli {

namespace {

struct RunOptions {
  std::string model;
  InputOptions inputs;
  std::string output_dir;
  std::string backend = "auto";
  bool verbose = false;
};

// output_<i>.npy per output in graph-output order, then outputs.json (written last, so its presence
// means the set is complete); every file replaced atomically.
Status write_outputs(const RunOptions& opt, const Graph& g, const std::vector<Tensor>& outs,
                     const char* backend) {
  std::error_code ec;
  std::filesystem::create_directories(opt.output_dir, ec);
  if (ec) return io_error("cannot create output folder '{}': {}", opt.output_dir, ec.message());
  nlohmann::ordered_json list = nlohmann::ordered_json::array();
  for (size_t i = 0; i < outs.size(); ++i) {
    std::string file = fmt::format("output_{}.npy", i);
    Status st = save_npy((std::filesystem::path(opt.output_dir) / file).string(), outs[i]);
    if (!st.ok()) return st.add_context(fmt::format("output '{}'", g.outputs[i]->name));
    list.push_back({{"name", g.outputs[i]->name},
                    {"dtype", std::string(dtype_name(outs[i].dtype()))},
                    {"shape", outs[i].dims()},
                    {"file", file}});
  }
  nlohmann::ordered_json doc = {{"model", opt.model}, {"backend", backend}, {"outputs", list}};
  return write_file_atomic((std::filesystem::path(opt.output_dir) / "outputs.json").string(), doc.dump(2) + "\n");
}

// Binds the inputs, printing where each comes from.
Expected<std::map<std::string, Tensor>> bind_inputs(const Graph& g, const InputOptions& options) {
  KILN_ASSIGN_OR_RETURN(auto inputs, prepare_inputs(g, options));
  std::map<std::string, Tensor> feeds;
  for (const BoundInput& in : inputs) {
    std::string source = in.file.empty() ? fmt::format("random (seed {})", options.seed) : "from " + in.file;
    std::printf("input  '%s': %s  %s\n", in.name.c_str(), in.tensor.describe().c_str(), source.c_str());
    feeds[in.name] = in.tensor;
  }
  return feeds;
}

// What run() did, for the summary and the output files.
struct RunResult {
  std::vector<Tensor> outputs;
  std::string backend;
  std::string first_step;  // "import" for a model, "load" for a plan
  double first_ms = 0, prepare_ms = 0, run_ms = 0;
};

Expected<RunResult> run_model(const RunOptions& opt, BackendKind backend, GraphPtr& graph) {
  RunResult r{.first_step = "import"};
  Timer t_import;
  auto model = import_onnx_file(opt.model);
  if (!model.ok()) {
    Status st = model.status();
    if (st.message().find(opt.model) == std::string::npos) st.add_context("cannot import '" + opt.model + "'");
    return st;
  }
  r.first_ms = t_import.ms();
  graph = model->graph;
  Timer t_prepare;
  KILN_ASSIGN_OR_RETURN(auto runner, create_runner(backend, model->graph));
  r.prepare_ms = t_prepare.ms();
  KILN_ASSIGN_OR_RETURN(auto feeds, bind_inputs(*graph, opt.inputs));
  Timer t_run;  // on CUDA this includes building the plan for these input shapes
  KILN_ASSIGN_OR_RETURN(r.outputs, runner->run(feeds));
  r.run_ms = t_run.ms();
  r.backend = runner->backend_name();
  return r;
}

Expected<RunResult> run_plan(const RunOptions& opt, GraphPtr& graph) {
  RunResult r{.first_step = "load"};
  Timer t_load;
  KILN_ASSIGN_OR_RETURN(Plan plan, load_plan(opt.model));
  r.first_ms = t_load.ms();
  if (opt.backend != "auto" && opt.backend != plan.target.backend)
    return invalid_argument("'{}' is a plan for the {} backend: --backend {} does not apply", opt.model,
                            plan.target.backend, opt.backend);
  graph = plan.graph;
  r.backend = plan.target.backend;
  Timer t_prepare;
  auto engine = Engine::from_plan(std::move(plan));
  if (!engine.ok()) return Status(engine.status()).add_context(opt.model);
  KILN_ASSIGN_OR_RETURN(auto ctx, (*engine)->create_context());
  r.prepare_ms = t_prepare.ms();
  KILN_ASSIGN_OR_RETURN(auto feeds, bind_inputs(*graph, opt.inputs));
  Timer t_run;
  KILN_ASSIGN_OR_RETURN(r.outputs, ctx->run(feeds));
  r.run_ms = t_run.ms();
  return r;
}

int run_command(const RunOptions& opt) {
  Timer total;
  auto backend = parse_backend(opt.backend);
  if (!backend.ok()) return report_error(backend.status());
  if (Status st = check_backend_available(*backend); !st.ok()) return report_error(st);
  if (Status st = check_input_path(opt.model, "model"); !st.ok()) return report_error(st);

  GraphPtr graph;
  auto result = is_plan_file(opt.model) ? run_plan(opt, graph) : run_model(opt, *backend, graph);
  if (!result.ok()) return report_error(result.status());
  const Graph& g = *graph;
  const std::vector<Tensor>& outs = result->outputs;
  for (size_t i = 0; i < outs.size(); ++i) {
    const Tensor& t = outs[i];
    std::printf("output '%s': %s  %s\n", g.outputs[i]->name.c_str(), t.describe().c_str(), tensor_stats(t).c_str());
  }

  Timer t_write;
  if (!opt.output_dir.empty()) {
    Status st = write_outputs(opt, g, outs, result->backend.c_str());
    if (!st.ok()) return report_error(st);
    std::printf("wrote %zu output%s and outputs.json to %s\n", outs.size(), outs.size() == 1 ? "" : "s",
                opt.output_dir.c_str());
  }
  if (opt.verbose) {
    std::printf("backend %s; %s %.2f ms, prepare %.2f ms, run %.2f ms", result->backend.c_str(),
                result->first_step.c_str(), result->first_ms, result->prepare_ms, result->run_ms);
    if (!opt.output_dir.empty()) std::printf(", write %.2f ms", t_write.ms());
    std::printf(", total %.2f ms\n", total.ms());
  }
  return 0;
}

}  // namespace

void add_run_command(CLI::App& app, Action& action) {
  auto opt = std::make_shared<RunOptions>();
  auto* cmd = app.add_subcommand("run", "Run a model or plan once on input files or seeded random inputs");
  cmd->add_option("model", opt->model, "The ONNX model or plan file")->required();
  cmd->add_option("--input,-i", opt->inputs.inputs,
                  "NAME=FILE: an input from a .npy or TensorProto .pb file (repeatable; a bare FILE for a one-input "
                  "model)");
  cmd->add_option("--shapes", opt->inputs.shapes,
                  "NAME:1x3x224x224 for random inputs with dynamic dims (repeatable or comma-separated)");
  cmd->add_option("--seed", opt->inputs.seed, "Seed of the random inputs")->default_val(42);
  cmd->add_option("--output-dir,-o", opt->output_dir, "Write output_<i>.npy and outputs.json here");
  cmd->add_option("--backend", opt->backend,
                  "cpu, cuda or auto (CUDA when available); a model runs on CUDA through a plan built in memory")
      ->default_val("auto");
  cmd->add_flag("--verbose,-v", opt->verbose, "Print timings");
  cmd->callback([&action, opt] { action = [opt] { return run_command(*opt); }; });
}

}  // namespace kiln::cli
