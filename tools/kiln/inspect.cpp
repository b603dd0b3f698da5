// `kiln inspect PLAN|MODEL`: what a plan holds (target, versions, bindings, memory, and each layer's
// op, precision, tactic and shapes). A model is built in memory first, with the build options.
#include <cstdio>

#include "build_flags.hpp"
#include "cli_util.hpp"
#include "commands.hpp"
#include "plan_info.hpp"

namespace kiln::cli {

namespace {

struct InspectOptions {
  std::string path;
  BuildFlags build;
  bool json = false;
};

int inspect_command(const InspectOptions& opt) {
  auto options = to_build_options(opt.build);
  if (!options.ok()) return report_error(options.status());
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
  add_build_flags(cmd, opt->build);
  cmd->callback([&action, opt] { action = [opt] { return inspect_command(*opt); }; });
}

}  // namespace kiln::cli
