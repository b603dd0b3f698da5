#include "ops/support_check.hpp"

#include <map>
#include <set>

#include "plugin/plugin_node.hpp"
#include "util/error.hpp"

namespace kiln {

namespace {
struct Missing {
  std::set<int> opsets;
  std::vector<std::string> nodes;
};

void collect(const Graph& g, const std::function<bool(const Node&)>& supported,
             std::map<std::string, Missing>& out, bool& custom) {
  for (const auto& n : g.nodes()) {
    if (!supported(*n)) {
      std::string op = n->domain.empty() || n->domain == "ai.onnx" ? n->op_type : n->domain + "." + n->op_type;
      if (n->plugin) op += " (" + n->plugin->describe() + ")";
      else if (n->op_type == "Plugin") op += " '" + n->attrs.s("name") + "'";
      // A custom op without a plugin: say how to give it one.
      custom |= !n->plugin && (is_custom_domain(n->domain) || n->op_type == "Plugin");
      auto& m = out[op];
      m.opsets.insert(n->opset);
      m.nodes.push_back("'" + n->name + "'");
    }
    for (const Graph* sg : n->subgraphs()) collect(*sg, supported, out, custom);
  }
}
}  // namespace

Status check_ops_supported(const Graph& graph, const std::function<bool(const Node&)>& supported,
                           std::string_view backend_name) {
  std::map<std::string, Missing> missing;
  bool custom = false;
  collect(graph, supported, missing, custom);
  if (missing.empty()) return Status::Ok();
  std::vector<std::string> parts;
  for (auto& [op, m] : missing) {
    if (m.nodes.size() > 5) {
      size_t more = m.nodes.size() - 4;
      m.nodes.resize(4);
      m.nodes.push_back(fmt::format("and {} more", more));
    }
    parts.push_back(fmt::format("{} (opset {}; node{} {})", op, fmt::join(m.opsets, "/"),
                                m.nodes.size() > 1 ? "s" : "", fmt::join(m.nodes, ", ")));
  }
  return unsupported("the {} backend does not support {} op{}: {}{}", backend_name, missing.size(),
                     missing.size() > 1 ? "s" : "", fmt::join(parts, "; "),
                     custom ? std::string(" (") + plugin_hint() + ")" : std::string());
}

}  // namespace kiln
