#include <algorithm>
#include <chrono>
#include <map>
#include <mutex>

#include "ops/shape_inference.hpp"
#include "passes/pass.hpp"
#include "util/error.hpp"

namespace kiln {

namespace {

std::map<std::string, std::string>& pass_infos() {
  static std::map<std::string, std::string> infos;
  return infos;
}

}  // namespace

bool register_pass_info(std::string name, std::string description) {
  pass_infos()[std::move(name)] = std::move(description);
  return true;
}

std::vector<PassInfo> known_passes() {
  std::vector<PassInfo> out;
  for (const auto& [name, desc] : pass_infos()) out.push_back({name, desc});
  return out;
}

Status check_pass_names(const std::set<std::string>& names, const char* flag, bool allow_all) {
  for (const std::string& n : names) {
    if (pass_infos().count(n) || (allow_all && n == "all")) continue;
    std::vector<std::string> known;
    for (const auto& [k, d] : pass_infos()) known.push_back(k);
    if (allow_all) known.push_back("all");
    return invalid_argument("{} names unknown pass '{}' (known: {})", flag, n, fmt::join(known, ", "));
  }
  return Status::Ok();
}

Status PassManager::run(Graph& graph) {
  stats_.assign(passes_.size(), Stats{});
  auto dump_after = [&](std::string_view name) {
    return options_.dump && (options_.dump_after.count("all") || options_.dump_after.count(std::string(name)));
  };
  Status result = Status::Ok();
  for (int round = 0; round < options_.max_iterations; ++round) {
    bool changed = false;
    for (size_t i = 0; i < passes_.size(); ++i) {
      Pass& pass = *passes_[i];
      if (options_.disabled.count(std::string(pass.name()))) continue;
      auto start = std::chrono::steady_clock::now();
      auto r = pass.run(graph);
      if (!r.ok()) return Status(r.status()).add_context(fmt::format("pass '{}'", pass.name()));
      if (*r) {
        changed = true;
        // Passes may append nodes out of order: keep the graph sorted for the next one.
        KILN_RETURN_IF_ERROR(graph.topological_sort());
        KILN_RETURN_IF_ERROR(infer_shapes(graph));
      }
      double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
      stats_[i].ms += ms;
      stats_[i].runs += 1;
      stats_[i].modified += *r ? 1 : 0;
      if ((*r || round == 0) && dump_after(pass.name()))
        options_.dump(fmt::format("--- IR after {} (round {}{}) ---\n{}", pass.name(), round + 1, *r ? "" : ", unchanged", graph_to_text(graph)));
    }
    if (!changed) break;
  }
  // Still changing after max_iterations: keep what we have.
  if (options_.log)
    for (size_t i = 0; i < passes_.size(); ++i) {
      if (options_.disabled.count(std::string(passes_[i]->name()))) {
        options_.log(fmt::format("      pass {:<22} disabled", passes_[i]->name()));
        continue;
      }
      options_.log(fmt::format("      pass {:<22} {:8.2f} ms  {} runs, modified {}", passes_[i]->name(), stats_[i].ms,
                               stats_[i].runs, stats_[i].modified));
    }
  return result;
}

}  // namespace kiln
