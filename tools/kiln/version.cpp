#include <cstdio>

#include "commands.hpp"
#include "ops/op_registry.hpp"

namespace kiln::cli {

void add_version_command(CLI::App& app, Action& action) {
  auto* cmd = app.add_subcommand("version", "Print the kiln version and the ops each backend supports");
  bool ops = false;
  cmd->add_flag("--ops", ops, "List the registered ops");
  cmd->callback([&action, &ops] {
    action = [&ops] {
      std::printf("kiln %s\n", KILN_VERSION);
      auto names = OpRegistry::instance().op_names();
      std::printf("%zu ops registered\n", names.size());
      if (ops)
        for (const auto& n : names)
          std::printf("  %s%s\n", n.c_str(), OpRegistry::instance().cpu_kernel("", n) ? "" : " (no CPU kernel)");
      return 0;
    };
  });
}

}  // namespace kiln::cli
