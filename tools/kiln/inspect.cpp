// `kiln inspect PLAN|MODEL`: what a plan holds (target, versions, bindings, memory, and each layer's
// op, precision, tactic, shapes, FLOPs, bytes moved and the nodes a fused layer came from). A model
// is built in memory first, with the build options; `--before` shows a model's graph as imported.
#include <cstdio>

#include "build_flags.hpp"
#include "cli_util.hpp"
#include "commands.hpp"
#include "onnx/importer.hpp"
#include "ops/shape_inference.hpp"
#include "plan_info.hpp"
#include "util/error.hpp"

namespace kiln::cli {

namespace {

struct InspectOptions {
  std::string path;
  BuildFlags build;
  bool json = false;
  bool before = false;
};

// The imported graph, shaped by --shapes, before any pass.
int inspect_before(const InspectOptions& opt, const BuildOptions& options) {
  if (Status st = check_input_path(opt.path, "model"); !st.ok()) return report_error(st);
  if (is_plan_file(opt.path))
    return report_error(fmt::format("--before needs an ONNX model; '{}' is a plan, built already", opt.path));
  auto model = import_onnx_file(opt.path);
  if (!model.ok()) return report_error(model.status());
  Graph& g = *model->graph;
  for (const auto& [name, dims] : options.input_shapes)
    for (Value* v : g.inputs)
      if (v->name == name) v->type.shape = Shape::from_dims(dims);
  if (Status st = infer_shapes(g); !st.ok()) return report_error(st);
  Plan p;
  p.graph = model->graph;
  std::string source = opt.path + " (before passes)";
  if (opt.json) {
    auto full = plan_json(p, source);
    nlohmann::ordered_json j;
    for (const char* key : {"source", "inputs", "outputs", "total_flops", "layers"}) j[key] = full[key];
    std::printf("%s\n", j.dump(2).c_str());
    return 0;
  }
  std::printf("graph    %s\n", source.c_str());
  print_layers(p);
  return 0;
}

int inspect_command(const InspectOptions& opt) {
  auto options = to_build_options(opt.build);
  if (!options.ok()) return report_error(options.status());
  if (opt.before) return inspect_before(opt, *options);
  // Progress lines would spoil the JSON on stdout.
  if (!opt.json) options->log = [](std::string_view line) { std::printf("%.*s\n", static_cast<int>(line.size()), line.data()); };
  auto loaded = load_or_build_plan(opt.path, opt.build, *options);
  if (!loaded.ok()) return report_error(loaded.status());
  std::string source = loaded->built ? opt.path + " (built in memory)" : opt.path;
  if (opt.json) std::printf("%s\n", plan_json(loaded->plan, source).dump(2).c_str());
  else print_plan(loaded->plan, source);
  return 0;
}

}  // namespace

void add_inspect_command(CLI::App& app, Action& action) {
  auto opt = std::make_shared<InspectOptions>();
  auto* cmd = app.add_subcommand("inspect", "Show a plan's target, bindings, memory and layers (a model is built first)");
  cmd->add_option("path", opt->path, "A plan file, or an ONNX model to build in memory")->required();
  cmd->add_flag("--json", opt->json, "Print JSON instead of text");
  cmd->add_flag("--before", opt->before, "For a model: show the graph as imported, before the graph passes");
  add_build_flags(cmd, opt->build);
  cmd->callback([&action, opt] { action = [opt] { return inspect_command(*opt); }; });
}

}  // namespace kiln::cli
