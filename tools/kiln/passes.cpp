// `kiln passes`: lists the graph passes the builder knows (names for --disable-pass and
// --dump-ir-after), one line each.
#include <cstdio>

#include "commands.hpp"
#include "passes/pass.hpp"

namespace kiln::cli {

void add_passes_command(CLI::App& app, Action& action) {
  auto* cmd = app.add_subcommand("passes", "List the graph passes (names for --disable-pass and --dump-ir-after)");
  cmd->callback([&action] {
    action = [] {
      auto passes = known_passes();
      size_t w = 0;
      for (const PassInfo& p : passes) w = std::max(w, p.name.size());
      for (const PassInfo& p : passes)
        std::printf("%-*s  %s\n", static_cast<int>(w), p.name.c_str(), p.description.c_str());
      return 0;
    };
  });
}

}  // namespace kiln::cli
