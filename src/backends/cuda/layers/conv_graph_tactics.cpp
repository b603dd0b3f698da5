// The graph-API convolution tactics (conv_graph.hpp): which configs a node offers, the plan of
// a chosen one (re-created from its name, with a fallback), and the per-process plan cache.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>

#include "backends/cuda/layers/conv_graph.hpp"

namespace kiln::cuda {
namespace {

bool debug() { return conv_graph_debug(); }

std::string describe(const ConvGraphSpec& s) {
  return fmt::format("{} {}{} x[{}] w[{}] y[{}]{}{}{}{}", s.geo.nhwc ? "NHWC" : "NCHW", dtype_name(s.dtype),
                     s.y_dtype == DType::kUndefined ? "" : "->" + std::string(dtype_name(s.y_dtype)), fmt::join(s.geo.x, ","), fmt::join(s.geo.w, ","), fmt::join(s.geo.y, ","), s.bias ? " +bias" : "",
                     s.z ? " +z" : "", s.relu ? " relu" : "", s.transposed ? " (transposed)" : "");
}


}  // namespace

std::pair<size_t, size_t> graph_limits() {
  size_t n = kGraphConfigs, r = kGraphRuntimeCompiled;
  if (const char* e = std::getenv("KILN_CONV_GRAPH_CONFIGS")) {
    unsigned long a = 0, b = 0;
    int got = std::sscanf(e, "%lu,%lu", &a, &b);
    if (got >= 1) n = a;
    if (got == 2) r = b;
  }
  return {n, r};
}

namespace {

// Plans made in this process, by node spec and config: the builder makes one to list a config,
// the timer to time it and the engine to run it, and runtime-compiled engines compile their
// kernel for each, so each is made once. Used under with_query_handle's lock.
std::map<std::string, std::shared_ptr<const ConvGraph>>& plan_cache() {
  static std::map<std::string, std::shared_ptr<const ConvGraph>> cache;
  return cache;
}

std::string cache_key(const ConvGraphSpec& s, const std::string& config) {
  return fmt::format("{} p[{}] s[{}] d[{}] {}|{}", describe(s), fmt::join(s.geo.pads, ","),
                     fmt::join(s.geo.strides, ","), fmt::join(s.geo.dilations, ","), s.precision, config);
}

void remember(const std::string& key, std::shared_ptr<const ConvGraph> g) {
  auto& cache = plan_cache();
  if (cache.size() >= 4096) cache.clear();  // bounded; layers keep their own references
  cache[key] = std::move(g);
}

}  // namespace

void clear_graph_plan_cache() {
  (void)with_query_handle([](cudnnHandle_t) -> Status {
    plan_cache().clear();
    return Status::Ok();
  });
}

std::vector<std::string> graph_tactics(const ConvGraphSpec& spec, uint64_t max_workspace) {
  std::vector<std::string> out;
  const auto [limit, rtc] = graph_limits();
  if (limit == 0) return out;
  (void)with_query_handle([&](cudnnHandle_t h) -> Status {
    for (bool plain : {false, true}) {
      if (plain && (!out.empty() || !spec.has_epilogue())) break;
      ConvGraphSpec s = spec;
      if (plain) s.bias = s.z = s.relu = false;
      if (debug()) fmt::print(stderr, "[conv-graph] {}{}\n", describe(s), plain ? " (convolution alone)" : "");
      auto g = ConvGraph::create(s, h, plain);
      if (!g.ok()) {
        if (debug()) fmt::print(stderr, "[conv-graph]   graph: {}\n", g.status().message());
        continue;
      }
      auto cfgs = (*g)->configs(limit, rtc, max_workspace);
      if (!cfgs.ok()) {
        if (debug()) fmt::print(stderr, "[conv-graph]   configs: {}\n", cfgs.status().message());
        continue;
      }
      // Only configs whose plan cuDNN makes: the timer must not time a fallback under their name.
      for (const GraphConfig& c : *cfgs) {
        const std::string key = cache_key(s, c.name());
        auto it = plan_cache().find(key);
        if (it != plan_cache().end()) {
          if (it->second->workspace() <= max_workspace) out.push_back(c.name());
          continue;
        }
        const auto t0 = std::chrono::steady_clock::now();
        auto gi = ConvGraph::create(s, h, plain);
        Status st = gi.ok() ? (*gi)->select(c) : gi.status();
        if (debug())
          fmt::print(stderr, "[conv-graph]   {}{}: {} (workspace {}, plan made in {:.1f} ms)\n", c.name(),
                     c.runtime_compiled ? " rtc" : "", st.ok() ? "ok" : st.message(), st.ok() ? (*gi)->workspace() : 0,
                     std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
        if (!st.ok()) continue;
        if ((*gi)->workspace() <= max_workspace) out.push_back(c.name());
        remember(key, std::shared_ptr<const ConvGraph>(std::move(*gi)));
      }
    }
    return Status::Ok();
  });
  return out;
}

Expected<std::shared_ptr<const ConvGraph>> graph_for_tactic(const ConvGraphSpec& spec, const std::string& tactic,
                                                            const std::string& who) {
  std::shared_ptr<const ConvGraph> result;
  KILN_RETURN_IF_ERROR(with_query_handle([&](cudnnHandle_t h) -> Status {
    auto cfg = GraphConfig::parse(tactic);
    const bool plain = cfg ? cfg->plain : tactic.rfind("graphp_", 0) == 0;
    ConvGraphSpec s = spec;
    if (plain) s.bias = s.z = s.relu = false;
    if (cfg) {
      auto it = plan_cache().find(cache_key(s, cfg->name()));
      if (it != plan_cache().end()) {
        result = it->second;
        return Status::Ok();
      }
    }
    auto g = ConvGraph::create(s, h, plain);
    if (!g.ok()) {
      fmt::print(stderr, "note: {}: tactic '{}': {}; using the legacy cuDNN API\n", who, tactic, g.status().message());
      return Status::Ok();
    }
    Status st = cfg ? (*g)->select(*cfg) : invalid_model("not a graph engine config name");
    std::string chosen = cfg ? cfg->name() : "";
    if (!st.ok()) {
      chosen.clear();
      const auto [limit, rtc] = graph_limits();
      auto cands = (*g)->configs(std::max<size_t>(limit, 1), rtc, UINT64_MAX);
      if (cands.ok())
        for (const GraphConfig& c : *cands)
          if ((*g)->select(c).ok()) {
            chosen = c.name();
            break;
          }
      fmt::print(stderr, "note: {}: cuDNN engine config '{}' is not available here ({}); using {}\n", who, tactic,
                 st.message(),
                 chosen.empty() ? std::string("the legacy cuDNN API") : "the heuristics' first, '" + chosen + "'");
      if (chosen.empty()) return Status::Ok();
    }
    result = std::shared_ptr<const ConvGraph>(std::move(*g));
    remember(cache_key(s, chosen), result);
    return Status::Ok();
  }));
  return result;
}

}  // namespace kiln::cuda
