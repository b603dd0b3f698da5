#include <cstdio>

#include "builder/backend.hpp"
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
      std::printf("backends:");
      for (const std::string& name : backend_names()) {
        Status st = find_backend(name)->available();
        std::printf(" %s (%s%s)", name.c_str(), st.ok() ? "available" : "unavailable: ", st.message().c_str());
      }
      std::printf("\n");
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
