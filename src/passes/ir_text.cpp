// graph_to_text: the IR as readable text (--dump-ir-after, `kiln inspect --before`).
#include <sstream>

#include "passes/pass.hpp"
#include "util/error.hpp"

namespace kiln {

namespace {

std::string attr_text(const AttrValue& v) {
  return std::visit(
      [](const auto& x) -> std::string {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, int64_t> || std::is_same_v<T, float>) return fmt::format("{}", x);
        else if constexpr (std::is_same_v<T, std::string>) return "\"" + x + "\"";
        else if constexpr (std::is_same_v<T, Tensor>) return x.describe();
        else if constexpr (std::is_same_v<T, GraphPtr>) return "<graph " + (x ? x->name : std::string()) + ">";
        else if constexpr (std::is_same_v<T, std::vector<int64_t>> || std::is_same_v<T, std::vector<float>>)
          return fmt::format("[{}]", fmt::join(x, ","));
        else if constexpr (std::is_same_v<T, std::vector<std::string>>) return fmt::format("[{}]", fmt::join(x, ","));
        else return fmt::format("[{} items]", x.size());
      },
      v);
}

std::string value_name(const Value* v) { return v ? (v->name.empty() ? "<unnamed>" : v->name) : "<none>"; }

void write_graph(std::ostringstream& os, const Graph& g, const std::string& indent) {
  auto list = [](const std::vector<Value*>& vs) {
    std::vector<std::string> parts;
    for (const Value* v : vs) parts.push_back(v ? value_name(v) + ": " + v->type.to_string() : "<none>");
    return fmt::format("{}", fmt::join(parts, ", "));
  };
  os << indent << "graph " << (g.name.empty() ? "<unnamed>" : g.name) << " (" << g.nodes().size() << " nodes)\n";
  os << indent << "  inputs:  " << list(g.inputs) << "\n";
  os << indent << "  outputs: " << list(g.outputs) << "\n";
  for (const auto& n : g.nodes()) {
    std::vector<std::string> outs, ins, attrs;
    for (const Value* v : n->outputs) outs.push_back(value_name(v));
    for (const Value* v : n->inputs)
      ins.push_back(v && v->is_constant() ? value_name(v) + "=" + v->constant->describe() : value_name(v));
    for (const auto& [k, v] : n->attrs.all()) attrs.push_back(k + "=" + attr_text(v));
    std::string op = n->domain.empty() ? n->op_type : n->domain + "." + n->op_type;
    os << indent << "  " << fmt::format("{} = {}({})", fmt::join(outs, ", "), op, fmt::join(ins, ", "));
    if (!attrs.empty()) os << " {" << fmt::format("{}", fmt::join(attrs, ", ")) << "}";
    os << "  # " << (n->name.empty() ? "<unnamed>" : n->name);
    if (n->has_output(0)) os << "  " << n->outputs[0]->type.to_string();
    os << "\n";
    for (const Graph* sg : n->subgraphs()) write_graph(os, *sg, indent + "    ");
  }
}

}  // namespace

std::string graph_to_text(const Graph& graph) {
  std::ostringstream os;
  write_graph(os, graph, "");
  return os.str();
}

Status select_outputs(Graph& graph, const std::vector<std::string>& names) {
  std::vector<Value*> chosen;
  for (const std::string& name : names) {
    Value* found = nullptr;
    for (Value* v : graph.outputs)
      if (v->name == name) found = v;
    if (!found) {
      std::vector<std::string> all;
      for (const Value* v : graph.outputs) all.push_back("'" + v->name + "'");
      return invalid_argument("--outputs names '{}', but the model's outputs are {}", name, fmt::join(all, ", "));
    }
    if (std::find(chosen.begin(), chosen.end(), found) == chosen.end()) chosen.push_back(found);
  }
  if (!chosen.empty()) graph.outputs = std::move(chosen);
  return Status::Ok();
}

}  // namespace kiln
