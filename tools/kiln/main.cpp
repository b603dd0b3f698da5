// kiln: compile and run ONNX models. Subcommands are defined one per file (see commands.hpp).
#include <cstdio>
#include <exception>

#include "commands.hpp"

int main(int argc, char** argv) {
  CLI::App app{"kiln: compile ONNX models into fast inference engines (CPU and CUDA)"};
  app.require_subcommand(1);
  kiln::cli::Action action;
  kiln::cli::add_version_command(app, action);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  try {
    return action ? action() : 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "kiln: error: %s\n", e.what());
    return 1;
  }
}
