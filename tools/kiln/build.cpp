// `kiln build MODEL -o PLAN`: compiles an ONNX model into a plan file for one backend (and GPU),
// printing the builder's progress and then a build report.
#include <cstdio>
#include <filesystem>

#include "build_flags.hpp"
#include "cli_util.hpp"
#include "commands.hpp"
#include "plan_info.hpp"
#include "util/error.hpp"

namespace kiln::cli {

namespace {

struct BuildCommandOptions {
  std::string model;
  std::string output;
  BuildFlags build;
  bool verbose = false;
};

int build_command(const BuildCommandOptions& opt) {
  Timer total;
  if (Status st = check_input_path(opt.model, "model"); !st.ok()) return report_error(st);
  if (is_plan_file(opt.model)) return report_error(fmt::format("'{}' is a plan already, not an ONNX model", opt.model));
  std::error_code ec;
  if (std::filesystem::is_directory(opt.output, ec))
    return report_error(fmt::format("-o '{}' is a folder; give the plan's file name", opt.output));
  auto options = to_build_options(opt.build);
  if (!options.ok()) return report_error(options.status());
  options->log = [](std::string_view line) {
    std::printf("%.*s\n", static_cast<int>(line.size()), line.data());
    std::fflush(stdout);  // progress should show while a long build runs
  };
  options->pass_log = opt.verbose;
  QuantizationReport int8_report;
  options->int8_report = &int8_report;
  std::printf("building %s for the %s backend\n", opt.model.c_str(), options->backend.c_str());
  auto loaded = load_or_build_plan(opt.model, opt.build, *options);
  if (!loaded.ok()) return report_error(loaded.status());
  const Plan& plan = loaded->plan;

  Timer t_save;
  if (Status st = save_plan(plan, opt.output); !st.ok()) return report_error(st);
  double save_ms = t_save.ms();
  uint64_t plan_bytes = std::filesystem::file_size(opt.output, ec);

  std::printf("build report\n");
  std::printf("  time         %.2f s (import %.2f s, build %.2f s, write %.2f s)\n", total.seconds(),
              loaded->import_ms / 1e3, loaded->build_ms / 1e3, save_ms / 1e3);
  std::printf("  target       %s\n", target_text(plan.target).c_str());
  std::printf("  layers       %zu (%s)\n", plan.graph->nodes().size(), precision_counts(plan).c_str());
  if (opt.build.int8)
    std::printf("  int8         %zu layers quantized, %zu kept float%s\n", int8_report.quantized.size(),
                int8_report.kept_float.size(), int8_report.kept_float.empty() ? "" : " (reasons above)");
  uint64_t weights = plan_weight_bytes(plan);
  std::printf("  weights      %s (%llu bytes)\n", format_bytes(weights).c_str(), static_cast<unsigned long long>(weights));
  if (plan.target.backend == "cpu") {
    std::printf("  activations  allocated per run (CPU backend)\n");
  } else {
    std::printf("  activations  %s arena (%llu bytes)%s\n", format_bytes(plan.arena_bytes).c_str(),
                static_cast<unsigned long long>(plan.arena_bytes),
                plan.profiles.empty() ? "" : ", sized for the profiles' max shapes");
    std::printf("  workspace    up to %s per layer\n", format_bytes(plan.workspace_bytes).c_str());
  }
  for (size_t i = 0; i < plan.profiles.size(); ++i)
    std::printf("  profile %zu    %s\n", i, profile_to_string(plan.profiles[i]).c_str());
  std::printf("  plan         %s (%s)\n", opt.output.c_str(), format_bytes(plan_bytes).c_str());
  if (!plan.precision_report.empty()) {
    std::printf("  precision decisions\n");
    for (const std::string& line : plan.precision_report) std::printf("    %s\n", line.c_str());
  }
  for (auto [flag, name] :
       {std::pair{opt.build.fp16, "fp16"}, std::pair{opt.build.bf16, "bf16"}, std::pair{opt.build.int8, "int8"},
        std::pair{opt.build.fp8, "fp8"}})
    if (flag && precision_counts(plan).find(name) == std::string::npos)
      std::printf("note: --%s allowed reduced precision, but no layer uses it\n", name);
  if (opt.verbose) print_layers(plan);
  return 0;
}

}  // namespace

void add_build_command(CLI::App& app, Action& action) {
  auto opt = std::make_shared<BuildCommandOptions>();
  auto* cmd = app.add_subcommand("build", "Compile an ONNX model into a plan file for the CPU or this GPU");
  cmd->add_option("model", opt->model, "The ONNX model file")->required();
  cmd->add_option("--output,-o", opt->output, "The plan file to write (replaced atomically)")->required();
  add_build_flags(cmd, opt->build);
  cmd->add_flag("--verbose,-v", opt->verbose, "Also print per-pass timings and list every layer with its precision, tactic and shapes");
  cmd->callback([&action, opt] { action = [opt] { return build_command(*opt); }; });
}

}  // namespace kiln::cli
