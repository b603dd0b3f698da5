// Each CLI subcommand lives in its own file and registers itself on the app in main.cpp.
// A subcommand's callback returns the process exit code; errors are printed as one clear line.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>

namespace kiln::cli {

// Sets `action` to the function that runs when this subcommand is chosen.
using Action = std::function<int()>;

void add_version_command(CLI::App& app, Action& action);
void add_build_command(CLI::App& app, Action& action);
void add_run_command(CLI::App& app, Action& action);
void add_bench_command(CLI::App& app, Action& action);
void add_inspect_command(CLI::App& app, Action& action);
void add_passes_command(CLI::App& app, Action& action);
void add_conformance_command(CLI::App& app, Action& action);
void add_compare_command(CLI::App& app, Action& action);

}  // namespace kiln::cli
