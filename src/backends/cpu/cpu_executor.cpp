#include "backends/cpu/cpu_executor.hpp"

#include <chrono>
#include <unordered_map>

#include "ops/op_registry.hpp"
#include "ops/support_check.hpp"
#include "plugin/plugin_node.hpp"

namespace kiln {

namespace {

// Tensors of one graph execution; lookups fall through to the enclosing execution (subgraphs).
struct Env {
  std::unordered_map<const Value*, Tensor> tensors;
  const Env* parent = nullptr;

  const Tensor* find(const Value* v) const {
    if (v->constant) return &*v->constant;
    for (const Env* e = this; e; e = e->parent) {
      auto it = e->tensors.find(v);
      if (it != e->tensors.end()) return &it->second;
    }
    return nullptr;
  }
};

Status run_graph(const Graph& g, Env& env, std::vector<double>* node_ms = nullptr);

Status run_plugin_node(const Node& node, Env& env) {
  std::vector<const Tensor*> inputs;
  for (const Value* v : node.inputs) {
    const Tensor* t = v ? env.find(v) : nullptr;
    if (v && !t) return internal_error("{}: input '{}' has not been computed", node.describe(), v->name);
    inputs.push_back(t);
  }
  KILN_ASSIGN_OR_RETURN(std::vector<Tensor> outs, run_plugin_on_cpu(node, inputs));
  for (size_t i = 0; i < node.outputs.size(); ++i)
    if (node.outputs[i]) env.tensors[node.outputs[i]] = std::move(outs[i]);
  return Status::Ok();
}

Status run_node(const Node& node, Env& env) {
  if (node.plugin) return run_plugin_node(node, env);
  const OpRegistry& reg = OpRegistry::instance();
  const OpSchema* schema = reg.schema(node.domain, node.op_type);
  CpuKernelFn kernel = reg.cpu_kernel(node.domain, node.op_type);
  if (!schema || !kernel) return unsupported("{}: no CPU kernel", node.describe());

  std::vector<const Tensor*> inputs;
  std::vector<TensorType> types;
  for (const Value* v : node.inputs) {
    const Tensor* t = nullptr;
    if (v) {
      t = env.find(v);
      if (!t) return internal_error("{}: input '{}' has not been computed", node.describe(), v->name);
    }
    inputs.push_back(t);
    types.push_back(t ? TensorType{t->dtype(), Shape::from_dims(t->dims())} : TensorType{});
  }
  InferContext ictx(node, types, inputs);
  KILN_RETURN_IF_ERROR(infer_node(*schema, ictx));

  SubgraphRunner runner = [&env](const Graph& sg, const std::vector<Tensor>& sg_inputs)
      -> Expected<std::vector<Tensor>> {
    if (sg_inputs.size() != sg.inputs.size())
      return internal_error("subgraph '{}' takes {} inputs, given {}", sg.name, sg.inputs.size(),
                            sg_inputs.size());
    Env child;
    child.parent = &env;
    for (size_t i = 0; i < sg_inputs.size(); ++i) child.tensors[sg.inputs[i]] = sg_inputs[i];
    KILN_RETURN_IF_ERROR(run_graph(sg, child));
    std::vector<Tensor> outs;
    for (const Value* o : sg.outputs) {
      const Tensor* t = child.find(o);
      if (!t) return internal_error("subgraph '{}' did not compute output '{}'", sg.name, o->name);
      outs.push_back(*t);
    }
    return outs;
  };
  KernelContext kctx(node, inputs, ictx.outputs(), &runner);
  Status st;
  try {
    st = kernel(kctx);
  } catch (const std::bad_alloc&) {
    return make_error(StatusCode::kRuntimeError, "{}: out of memory", node.describe());
  } catch (const std::exception& e) {
    return internal_error("{}: {}", node.describe(), e.what());
  }
  if (!st.ok()) {
    if (st.message().find(node.describe()) == std::string::npos) st.add_context(node.describe());
    return st;
  }
  for (size_t i = 0; i < node.outputs.size(); ++i) {
    const Value* out = node.outputs[i];
    if (!out) continue;
    Tensor& t = kctx.outputs()[i];
    if (!t.defined()) return internal_error("{}: CPU kernel did not produce output {}", node.describe(), i);
    env.tensors[out] = std::move(t);
  }
  return Status::Ok();
}

Status run_graph(const Graph& g, Env& env, std::vector<double>* node_ms) {
  // Free each intermediate after its last reader (subgraph readers count as their parent node).
  std::unordered_map<const Value*, size_t> last_use;
  const auto& nodes = g.nodes();
  for (size_t i = 0; i < nodes.size(); ++i) {
    for (const Value* v : nodes[i]->inputs)
      if (v) last_use[v] = i;
    for (const Graph* sg : nodes[i]->subgraphs())
      for (const Value* v : sg->outer_scope_values()) last_use[v] = i;
  }
  for (const Value* o : g.outputs) last_use[o] = nodes.size();
  if (node_ms) node_ms->assign(nodes.size(), 0.0);
  for (size_t i = 0; i < nodes.size(); ++i) {
    auto start = std::chrono::steady_clock::now();
    KILN_RETURN_IF_ERROR(run_node(*nodes[i], env));
    if (node_ms)
      (*node_ms)[i] = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    for (const Value* v : nodes[i]->inputs) {
      if (v && v->owner == &g && !v->constant && last_use[v] == i) env.tensors.erase(v);
    }
  }
  return Status::Ok();
}

bool has_cpu_kernel(const Node& n) {
  if (n.plugin) return plugin_supports(n, PluginDevice::kCpu);
  const OpRegistry& reg = OpRegistry::instance();
  return reg.schema(n.domain, n.op_type) && reg.cpu_kernel(n.domain, n.op_type);
}

}  // namespace

Expected<std::vector<Tensor>> run_node_on_cpu(const Node& node) {
  if (!node.subgraphs().empty()) return unsupported("{}: nodes with subgraphs are not folded", node.describe());
  if (!has_cpu_kernel(node)) return unsupported("{}: no CPU kernel", node.describe());
  Env env;
  for (const Value* v : node.inputs)
    if (v && !v->constant) return invalid_argument("{}: input '{}' is not constant", node.describe(), v->name);
  KILN_RETURN_IF_ERROR(run_node(node, env));
  std::vector<Tensor> outs;
  for (const Value* o : node.outputs) outs.push_back(o ? env.tensors[o] : Tensor());
  return outs;
}

Expected<std::unique_ptr<CpuExecutor>> CpuExecutor::create(GraphPtr graph) {
  KILN_RETURN_IF_ERROR(bind_plugins(*graph));
  KILN_RETURN_IF_ERROR(check_ops_supported(*graph, has_cpu_kernel, "CPU"));
  return std::unique_ptr<CpuExecutor>(new CpuExecutor(std::move(graph)));
}

Status check_inputs(const Graph& graph, const std::map<std::string, Tensor>& inputs) {
  std::map<std::string, int64_t> symbols;  // symbolic dim name -> size seen
  for (const Value* in : graph.inputs) {
    auto it = inputs.find(in->name);
    if (it == inputs.end())
      return invalid_argument("missing input '{}' (expected {})", in->name, in->type.to_string());
    const Tensor& t = it->second;
    const TensorType& want = in->type;
    if (want.dtype != DType::kUndefined && t.dtype() != want.dtype)
      return invalid_argument("input '{}': expected dtype {}, got {} (shape {})", in->name,
                              dtype_name(want.dtype), dtype_name(t.dtype()), dims_to_string(t.dims()));
    if (!want.shape.has_rank()) continue;
    bool ok = want.shape.rank() == static_cast<size_t>(t.rank());
    for (size_t d = 0; ok && d < want.shape.rank(); ++d) {
      const Dim& dim = want.shape[d];
      int64_t got = t.dims()[d];
      if (dim.known()) ok = dim.value == got;
      else if (!dim.symbol.empty()) {
        auto [s, fresh] = symbols.emplace(dim.symbol, got);
        if (!fresh && s->second != got)
          return invalid_argument("input '{}': dim {} ('{}') is {}, but another input gave '{}' = {}",
                                  in->name, d, dim.symbol, got, dim.symbol, s->second);
      }
    }
    if (!ok)
      return invalid_argument("input '{}': expected shape {}, got {}", in->name,
                              want.shape.to_string(), dims_to_string(t.dims()));
  }
  for (const auto& [name, t] : inputs) {
    bool known = false;
    for (const Value* in : graph.inputs) known |= in->name == name;
    if (!known) {
      std::vector<std::string> names;
      for (const Value* in : graph.inputs) names.push_back("'" + in->name + "'");
      return invalid_argument("the model has no input named '{}' (its inputs: {})", name,
                              fmt::join(names, ", "));
    }
  }
  return Status::Ok();
}

Expected<std::vector<Tensor>> CpuExecutor::run(const std::map<std::string, Tensor>& inputs,
                                               std::vector<double>* node_ms) const {
  KILN_RETURN_IF_ERROR(check_inputs(*graph_, inputs));
  Env env;
  for (const Value* in : graph_->inputs) env.tensors[in] = inputs.at(in->name);
  KILN_RETURN_IF_ERROR(run_graph(*graph_, env, node_ms));
  std::vector<Tensor> outs;
  for (const Value* o : graph_->outputs) {
    const Tensor* t = env.find(o);
    if (!t) return internal_error("graph output '{}' was not computed", o->name);
    outs.push_back(*t);
  }
  return outs;
}

}  // namespace kiln
