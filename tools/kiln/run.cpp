// `kiln run MODEL`: runs a model once on given or random inputs, prints a summary per output and
// optionally writes the outputs as .npy files.
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "backend.hpp"
#include "cli_util.hpp"
#include "commands.hpp"
#include "io/file.hpp"
#include "io/npy.hpp"
#include "onnx/importer.hpp"
#include "run_inputs.hpp"
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

int run_command(const RunOptions& opt) {
  Timer total;
  auto backend = parse_backend(opt.backend);
  if (!backend.ok()) return report_error(backend.status());
  if (Status st = check_backend_available(*backend); !st.ok()) return report_error(st);
  std::error_code ec;
  if (!std::filesystem::exists(opt.model, ec)) return report_error(fmt::format("model '{}' does not exist", opt.model));
  if (std::filesystem::is_directory(opt.model, ec))
    return report_error(fmt::format("model '{}' is a folder, not an ONNX file", opt.model));

  Timer t_import;
  auto model = import_onnx_file(opt.model);
  if (!model.ok()) {
    Status st = model.status();
    if (st.message().find(opt.model) == std::string::npos) st.add_context("cannot import '" + opt.model + "'");
    return report_error(st);
  }
  double import_ms = t_import.ms();
  const Graph& g = *model->graph;

  Timer t_prepare;
  auto runner = create_runner(*backend, model->graph);
  if (!runner.ok()) return report_error(runner.status());
  double prepare_ms = t_prepare.ms();

  auto inputs = prepare_inputs(g, opt.inputs);
  if (!inputs.ok()) return report_error(inputs.status());
  std::map<std::string, Tensor> feeds;
  for (const BoundInput& in : *inputs) {
    std::string source = in.file.empty() ? fmt::format("random (seed {})", opt.inputs.seed) : "from " + in.file;
    std::printf("input  '%s': %s  %s\n", in.name.c_str(), in.tensor.describe().c_str(), source.c_str());
    feeds[in.name] = in.tensor;
  }

  Timer t_run;
  auto outs = (*runner)->run(feeds);
  if (!outs.ok()) return report_error(outs.status());
  double run_ms = t_run.ms();
  for (size_t i = 0; i < outs->size(); ++i) {
    const Tensor& t = (*outs)[i];
    std::printf("output '%s': %s  %s\n", g.outputs[i]->name.c_str(), t.describe().c_str(), tensor_stats(t).c_str());
  }

  Timer t_write;
  if (!opt.output_dir.empty()) {
    Status st = write_outputs(opt, g, *outs, (*runner)->backend_name());
    if (!st.ok()) return report_error(st);
    std::printf("wrote %zu output%s and outputs.json to %s\n", outs->size(), outs->size() == 1 ? "" : "s",
                opt.output_dir.c_str());
  }
  if (opt.verbose) {
    std::printf("backend %s; import %.2f ms, prepare %.2f ms, run %.2f ms", (*runner)->backend_name(), import_ms,
                prepare_ms, run_ms);
    if (!opt.output_dir.empty()) std::printf(", write %.2f ms", t_write.ms());
    std::printf(", total %.2f ms\n", total.ms());
  }
  return 0;
}

}  // namespace

void add_run_command(CLI::App& app, Action& action) {
  auto opt = std::make_shared<RunOptions>();
  auto* cmd = app.add_subcommand("run", "Run a model once on input files or seeded random inputs");
  cmd->add_option("model", opt->model, "The ONNX model file")->required();
  cmd->add_option("--input,-i", opt->inputs.inputs,
                  "NAME=FILE: an input from a .npy or TensorProto .pb file (repeatable; a bare FILE for a one-input "
                  "model)");
  cmd->add_option("--shapes", opt->inputs.shapes,
                  "NAME:1x3x224x224 for random inputs with dynamic dims (repeatable or comma-separated)");
  cmd->add_option("--seed", opt->inputs.seed, "Seed of the random inputs")->default_val(42);
  cmd->add_option("--output-dir,-o", opt->output_dir, "Write output_<i>.npy and outputs.json here");
  cmd->add_option("--backend", opt->backend, "cpu, cuda or auto (CUDA when available)")->default_val("auto");
  cmd->add_flag("--verbose,-v", opt->verbose, "Print timings");
  cmd->callback([&action, opt] { action = [opt] { return run_command(*opt); }; });
}

}  // namespace kiln::cli
