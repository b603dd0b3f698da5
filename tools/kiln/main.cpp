// kiln: compile and run ONNX models. Subcommands are defined one per file (see commands.hpp).
#include <cstdio>
#include <exception>
#include <new>

#include "commands.hpp"

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
