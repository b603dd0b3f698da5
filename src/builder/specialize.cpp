#include "builder/specialize.hpp"

#include <unordered_map>

#include "ops/shape_inference.hpp"
#include "passes/pass.hpp"
#include "util/error.hpp"

namespace kiln {

namespace {

void copy_into(const Graph& src, Graph& dst) {
  dst.name = src.name;
  std::unordered_map<const Value*, Value*> map;
  for (const auto& v : src.values()) {
    Value* nv = dst.add_value(v->name, v->type);
    nv->constant = v->constant;  // Tensor copies share their storage
    map[v.get()] = nv;
  }
  // Values from enclosing graphs keep pointing there (the parent is cloned first and passed in).
  auto mapped = [&](Value* v) -> Value* {
    if (!v) return nullptr;
    auto it = map.find(v);
    if (it != map.end()) return it->second;
    if (dst.parent)
      if (Value* outer = dst.parent->find_value(v->name)) return outer;
    return v;
  };
  for (const auto& n : src.nodes()) {
    std::vector<Value*> ins, outs;
    for (Value* v : n->inputs) ins.push_back(mapped(v));
    for (Value* v : n->outputs) outs.push_back(mapped(v));
    Node* nn = dst.add_node(n->op_type, ins, outs, n->name, n->domain, n->opset);
    nn->plugin = n->plugin;  // plugins are stateless per call: the copy shares the instance
    for (const auto& [name, val] : n->attrs.all()) {
      if (auto* g = std::get_if<GraphPtr>(&val)) {
        nn->attrs.set(name, clone_graph(**g, &dst));
      } else if (auto* gs = std::get_if<std::vector<GraphPtr>>(&val)) {
        std::vector<GraphPtr> copies;
        for (const auto& sg : *gs) copies.push_back(clone_graph(*sg, &dst));
        nn->attrs.set(name, std::move(copies));
      } else {
        nn->attrs.set(name, val);
      }
    }
  }
  for (Value* v : src.inputs) dst.inputs.push_back(mapped(v));
  for (Value* v : src.outputs) dst.outputs.push_back(mapped(v));
}

}  // namespace

size_t drop_known_nodes(Graph& g) {
  std::vector<Node*> known;
  for (const auto& n : g.nodes()) {
    if (!n->subgraphs().empty()) continue;
    bool all = !n->outputs.empty();
    for (const Value* o : n->outputs) all &= !o || o->is_constant();
    if (all) known.push_back(n.get());
  }
  for (Node* n : known) {
    for (Value* o : n->outputs)
      if (o) o->type = TensorType{o->constant->dtype(), Shape::from_dims(o->constant->dims())};
    g.remove_node(n);
  }
  return known.size();
}

Status fold_static_graph(Graph& g, const std::set<std::string>& disabled_passes) {
  PassManagerOptions pm_options;
  pm_options.disabled = disabled_passes;
  PassManager pm(pm_options);
  pm.add(make_constant_folding_pass());
  pm.add(make_inline_constant_if_pass());
  pm.add(make_dead_code_pass());
  for (int round = 0; round < 8; ++round) {
    KILN_RETURN_IF_ERROR(pm.run(g));
    if (disabled_passes.count("constant-folding") || drop_known_nodes(g) == 0) break;
    KILN_RETURN_IF_ERROR(infer_shapes(g));
  }
  return Status::Ok();
}

GraphPtr clone_graph(const Graph& graph, Graph* parent) {
  auto g = std::make_shared<Graph>();
  g->parent = parent;
  copy_into(graph, *g);
  return g;
}

std::string node_key(const Node& n) {
  for (const Value* v : n.outputs)
    if (v) return v->name;
  return n.name;
}

Expected<GraphPtr> specialize_graph(const Graph& graph, const std::map<std::string, Dims>& input_shapes,
                                    const std::set<std::string>& disabled_passes,
                                    const std::map<std::string, Dims>& fixed_values) {
  GraphPtr g = clone_graph(graph);
  for (const auto& [name, dims] : input_shapes) {
    Value* in = nullptr;
    for (Value* v : g->inputs)
      if (v->name == name) in = v;
    if (!in) return invalid_argument("no input named '{}'", name);
    in->type.shape = Shape::from_dims(dims);
  }
  // Forget the shapes inferred for dynamic inputs (symbolic dims) so nothing stale is merged back.
  for (const auto& n : g->nodes())
    for (Value* o : n->outputs)
      if (o && !o->constant) o->type.shape = Shape();
  // Inference keeps dims already known where it infers unknown ones (merge), so these stay.
  for (const auto& [name, dims] : fixed_values) {
    Value* v = g->find_value(name);
    if (!v) return invalid_argument("no value named '{}'", name);
    if (!v->constant) v->type.shape = Shape::from_dims(dims);
  }
  KILN_RETURN_IF_ERROR(infer_shapes(*g));
  KILN_RETURN_IF_ERROR(fold_static_graph(*g, disabled_passes));
  return g;
}

size_t first_unresolved_node(const Graph& g, size_t begin) {
  const auto& nodes = g.nodes();
  for (size_t i = begin; i < nodes.size(); ++i)
    for (const Value* o : nodes[i]->outputs)
      if (o && !o->constant && !o->type.shape.is_static()) return i;
  return nodes.size();
}

Expected<GraphPtr> specialize_at_bounds(const Graph& graph, const std::map<std::string, Dims>& input_shapes,
                                        const OutputBounds& bounds, const std::set<std::string>& disabled_passes,
                                        std::vector<std::string>* resolved) {
  std::map<std::string, Dims> fixed;
  KILN_ASSIGN_OR_RETURN(GraphPtr g, specialize_graph(graph, input_shapes, disabled_passes));
  // Each round fixes one more node; a node once fixed is static from then on.
  for (size_t round = 0; round <= graph.nodes().size(); ++round) {
    const size_t i = first_unresolved_node(*g);
    if (i == g->nodes().size()) return g;
    const Node& n = *g->nodes()[i];
    auto dims = bounds(n);
    if (!dims.ok()) return Status(dims.status()).add_context(n.describe());
    if (dims->size() > n.outputs.size())
      return internal_error("{}: {} output bounds for {} outputs", n.describe(), dims->size(), n.outputs.size());
    for (size_t k = 0; k < dims->size(); ++k)
      if (n.outputs[k]) fixed[n.outputs[k]->name] = (*dims)[k];
    const std::string key = node_key(n), what = n.describe();  // n dies with the old graph below
    if (resolved) resolved->push_back(key);
    KILN_ASSIGN_OR_RETURN(g, specialize_graph(graph, input_shapes, disabled_passes, fixed));
    const size_t next = first_unresolved_node(*g);
    if (next == i && next < g->nodes().size() && node_key(*g->nodes()[next]) == key)
      return internal_error("{}: fixing its output shapes did not resolve them", what);
  }
  return internal_error("data-dependent shapes did not resolve");
}

}  // namespace kiln
