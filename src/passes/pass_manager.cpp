#include <chrono>

#include "ops/shape_inference.hpp"
#include "passes/pass.hpp"
#include "util/error.hpp"

namespace kiln {

Status PassManager::run(Graph& graph) {
  for (int round = 0; round < options_.max_iterations; ++round) {
    bool changed = false;
    for (auto& pass : passes_) {
      if (options_.disabled.count(std::string(pass->name()))) continue;
      auto start = std::chrono::steady_clock::now();
      auto r = pass->run(graph);
      if (!r.ok()) return Status(r.status()).add_context(fmt::format("pass '{}'", pass->name()));
      if (*r) {
        changed = true;
        KILN_RETURN_IF_ERROR(infer_shapes(graph));
      }
      if (options_.log) {
        double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
        options_.log(fmt::format("pass {:<20} {:8.2f} ms{}", pass->name(), ms, *r ? "  (changed)" : ""));
      }
    }
    if (!changed) return Status::Ok();
  }
  return Status::Ok();  // still changing after max_iterations: keep what we have
}

}  // namespace kiln
