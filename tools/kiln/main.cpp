// kiln: compile and run ONNX models. Subcommands are defined one per file (see commands.hpp).
#include <cstdio>
#include <exception>
#include <new>

#include "cli_util.hpp"
#include "commands.hpp"
#include "kiln/plugin.hpp"

int main(int argc, char** argv) {
  CLI::App app{"kiln: compile ONNX models into fast inference engines (CPU and CUDA)"};
  app.require_subcommand(1);
  kiln::cli::Action action;
  kiln::cli::add_version_command(app, action);
  kiln::cli::add_build_command(app, action);
  kiln::cli::add_run_command(app, action);
  kiln::cli::add_bench_command(app, action);
  kiln::cli::add_inspect_command(app, action);
  kiln::cli::add_passes_command(app, action);
  kiln::cli::add_conformance_command(app, action);
  kiln::cli::add_compare_command(app, action);
  // Custom-op plugin libraries, loaded before the subcommand runs.
  std::vector<std::string> plugins;
  for (const char* name : {"build", "run", "bench", "inspect", "conformance", "compare"})
    app.get_subcommand(name)
        ->add_option("--plugin", plugins, "A custom-op plugin library (.so) to load first (repeatable)")
        ->expected(1)  // one file per --plugin: `--plugin lib.so model.onnx` leaves the model positional
        ->allow_extra_args(false)
        ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    // One line, like every other kiln error (CLI11 would add a second "Run with --help" line).
    if (e.get_exit_code() == 0) return app.exit(e);
    std::fprintf(stderr, "kiln: error: %s (see kiln --help)\n", e.what());
    return e.get_exit_code();
  }
  for (const std::string& lib : plugins)
    if (kiln::Status st = kiln::load_plugin_library(lib); !st.ok()) return kiln::cli::report_error(st);
  try {
    return action ? action() : 0;
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "kiln: error: out of memory\n");
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "kiln: error: %s\n", e.what());
    return 1;
  }
}
