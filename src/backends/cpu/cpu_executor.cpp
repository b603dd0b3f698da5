#include "backends/cpu/cpu_executor.hpp"

#include <chrono>
#include <unordered_map>

#include "backends/cpu/string_support.hpp"
#include "ops/op_registry.hpp"
#include "ops/support_check.hpp"
#include "plugin/plugin_node.hpp"

namespace kiln {

namespace {

// Values of one graph execution; lookups fall through to the enclosing execution (subgraphs).
struct Env {
  std::unordered_map<const Value*, RuntimeValue> values;
  const Env* parent = nullptr;
  mutable std::unordered_map<const Value*, RuntimeValue> constants;  // initializers, wrapped once

  const RuntimeValue* find(const Value* v) const {
    if (v->constant) return &constants.try_emplace(v, *v->constant).first->second;
    for (const Env* e = this; e; e = e->parent) {
      auto it = e->values.find(v);
      if (it != e->values.end()) return &it->second;
    }
    return nullptr;
  }
};

// The type inference sees for a runtime value: exact for tensors; for a sequence, the element
// dtype and the dims its elements share (unknown where they differ).
TensorType runtime_type(const RuntimeValue& rv, const Value& declared) {
  if (const Tensor* t = as_tensor(rv)) return TensorType{t->dtype(), Shape::from_dims(t->dims())};
  if (const TensorSequence* s = as_sequence(rv)) {
    TensorType type{s->dtype, Shape(), ValueKind::kSequence};
    if (s->tensors.empty()) return type;
    Shape shape = Shape::from_dims(s->tensors[0].dims());
    bool same_rank = true;
    for (const Tensor& t : s->tensors) {
      if (static_cast<size_t>(t.rank()) != shape.rank()) same_rank = false;
      for (size_t d = 0; same_rank && d < shape.rank(); ++d)
        if (shape[d].known() && shape[d].value != t.dims()[d]) shape.dims()[d] = Dim();
    }
    if (same_rank) type.shape = std::move(shape);
    return type;
  }
  TensorType type = declared.type;  // an empty optional: its declared element type
  type.kind = type.kind == ValueKind::kSequence || type.kind == ValueKind::kOptionalSequence
                  ? ValueKind::kOptionalSequence
                  : ValueKind::kOptionalTensor;
  return type;
}

Status run_graph(const Graph& g, Env& env, std::vector<double>* node_ms = nullptr);

Status run_plugin_node(const Node& node, Env& env) {
  std::vector<const Tensor*> inputs;
  for (const Value* v : node.inputs) {
    const RuntimeValue* rv = v ? env.find(v) : nullptr;
    if (v && !rv) return internal_error("{}: input '{}' has not been computed", node.describe(), v->name);
    const Tensor* t = rv ? as_tensor(*rv) : nullptr;
    if (rv && !t) return unsupported("{}: plugins take tensors; input '{}' is not one", node.describe(), v->name);
    inputs.push_back(t);
  }
  KILN_ASSIGN_OR_RETURN(std::vector<Tensor> outs, run_plugin_on_cpu(node, inputs));
  for (size_t i = 0; i < node.outputs.size(); ++i)
    if (node.outputs[i]) env.values[node.outputs[i]] = std::move(outs[i]);
  return Status::Ok();
}

Status run_node(const Node& node, Env& env) {
  if (node.plugin) return run_plugin_node(node, env);
  const OpRegistry& reg = OpRegistry::instance();
  const OpSchema* schema = reg.schema(node.domain, node.op_type);
  CpuKernelFn kernel = reg.cpu_kernel(node.domain, node.op_type);
  if (!schema || !kernel) return unsupported("{}: no CPU kernel", node.describe());

  std::vector<const Tensor*> inputs;
  std::vector<const RuntimeValue*> values;
  std::vector<TensorType> types;
  for (const Value* v : node.inputs) {
    const RuntimeValue* rv = nullptr;
    if (v) {
      rv = env.find(v);
      if (!rv) return internal_error("{}: input '{}' has not been computed", node.describe(), v->name);
    }
    values.push_back(rv);
    inputs.push_back(rv ? as_tensor(*rv) : nullptr);
    types.push_back(rv ? runtime_type(*rv, *v) : TensorType{});
  }
  InferContext ictx(node, types, inputs);
  KILN_RETURN_IF_ERROR(infer_node(*schema, ictx));
  if (!cpu::kernel_handles_strings(node.domain, node.op_type)) {
    for (size_t i = 0; i < types.size(); ++i)
      if (types[i].dtype == DType::kString)
        return unsupported("{}: dtype string of input {} is not supported by the CPU backend", node.describe(), i);
    for (size_t i = 0; i < ictx.outputs().size(); ++i)
      if (ictx.outputs()[i].dtype == DType::kString)
        return unsupported("{}: dtype string of output {} is not supported by the CPU backend", node.describe(), i);
  }

  ValueSubgraphRunner value_runner = [&env](const Graph& sg, const std::vector<RuntimeValue>& sg_inputs)
      -> Expected<std::vector<RuntimeValue>> {
    if (sg_inputs.size() != sg.inputs.size())
      return internal_error("subgraph '{}' takes {} inputs, given {}", sg.name, sg.inputs.size(),
                            sg_inputs.size());
    Env child;
    child.parent = &env;
    for (size_t i = 0; i < sg_inputs.size(); ++i) child.values[sg.inputs[i]] = sg_inputs[i];
    KILN_RETURN_IF_ERROR(run_graph(sg, child));
    std::vector<RuntimeValue> outs;
    for (const Value* o : sg.outputs) {
      const RuntimeValue* v = child.find(o);
      if (!v) return internal_error("subgraph '{}' did not compute output '{}'", sg.name, o->name);
      outs.push_back(*v);
    }
    return outs;
  };
  SubgraphRunner runner = [&value_runner](const Graph& sg, const std::vector<Tensor>& sg_inputs)
      -> Expected<std::vector<Tensor>> {
    KILN_ASSIGN_OR_RETURN(auto values, value_runner(sg, std::vector<RuntimeValue>(sg_inputs.begin(), sg_inputs.end())));
    std::vector<Tensor> outs;
    for (size_t i = 0; i < values.size(); ++i) {
      const Tensor* t = as_tensor(values[i]);
      if (!t)
        return unsupported("subgraph '{}': output '{}' is a sequence or optional, which this op cannot take",
                           sg.name, sg.outputs[i]->name);
      outs.push_back(*t);
    }
    return outs;
  };
  KernelContext kctx(node, inputs, ictx.outputs(), &runner);
  kctx.set_values(std::move(values), &value_runner);
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
    if (const RuntimeValue* v = kctx.value_output(i)) {
      env.values[out] = *v;
      continue;
    }
    Tensor& t = kctx.outputs()[i];
    if (!t.defined()) return internal_error("{}: CPU kernel did not produce output {}", node.describe(), i);
    env.values[out] = std::move(t);
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
      if (v && v->owner == &g && !v->constant && last_use[v] == i) env.values.erase(v);
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
  for (const Value* o : node.outputs) {
    if (!o) {
      outs.emplace_back();
      continue;
    }
    const Tensor* t = as_tensor(env.values[o]);
    if (!t) return unsupported("{}: output '{}' is not a tensor; not folded", node.describe(), o->name);
    outs.push_back(*t);
  }
  return outs;
}

Expected<std::unique_ptr<CpuExecutor>> CpuExecutor::create(GraphPtr graph) {
  KILN_RETURN_IF_ERROR(bind_plugins(*graph));
  KILN_RETURN_IF_ERROR(check_ops_supported(*graph, has_cpu_kernel, "CPU"));
  return std::unique_ptr<CpuExecutor>(new CpuExecutor(std::move(graph)));
}

namespace {

// A tensor given for `in` (a graph input, or an element of a sequence input) against its declared
// dtype and shape; `symbols` binds symbolic dims across inputs (null: symbols are not checked).
Status check_tensor(const Value* in, const Tensor& t, std::map<std::string, int64_t>* symbols) {
  const TensorType& want = in->type;
  if (want.dtype != DType::kUndefined && t.dtype() != want.dtype)
    return invalid_argument("input '{}': expected dtype {}, got {} (shape {})", in->name,
                            dtype_name(want.dtype), dtype_name(t.dtype()), dims_to_string(t.dims()));
  if (!want.shape.has_rank()) return Status::Ok();
  bool ok = want.shape.rank() == static_cast<size_t>(t.rank());
  for (size_t d = 0; ok && d < want.shape.rank(); ++d) {
    const Dim& dim = want.shape[d];
    int64_t got = t.dims()[d];
    if (dim.known()) ok = dim.value == got;
    else if (!dim.symbol.empty() && symbols) {
      auto [s, fresh] = symbols->emplace(dim.symbol, got);
      if (!fresh && s->second != got)
        return invalid_argument("input '{}': dim {} ('{}') is {}, but another input gave '{}' = {}",
                                in->name, d, dim.symbol, got, dim.symbol, s->second);
    }
  }
  if (!ok)
    return invalid_argument("input '{}': expected shape {}, got {}", in->name, want.shape.to_string(),
                            dims_to_string(t.dims()));
  return Status::Ok();
}

const char* kind_text(const RuntimeValue& v) {
  return as_tensor(v) ? "a tensor" : as_sequence(v) ? "a sequence" : "an empty optional";
}

}  // namespace

Status check_input_values(const Graph& graph, const std::map<std::string, RuntimeValue>& inputs) {
  std::map<std::string, int64_t> symbols;  // symbolic dim name -> size seen
  for (const Value* in : graph.inputs) {
    const ValueKind kind = in->type.kind;
    const bool optional = kind == ValueKind::kOptionalTensor || kind == ValueKind::kOptionalSequence;
    auto it = inputs.find(in->name);
    if (it == inputs.end()) {
      if (optional) continue;  // bound as an empty optional
      return invalid_argument("missing input '{}' (expected {})", in->name, in->type.to_string());
    }
    const RuntimeValue& v = it->second;
    const bool want_seq = kind == ValueKind::kSequence || kind == ValueKind::kOptionalSequence;
    if (is_empty_optional(v) ? !optional : (as_sequence(v) != nullptr) != want_seq)
      return invalid_argument("input '{}': expected {}, got {}", in->name, in->type.to_string(), kind_text(v));
    if (const Tensor* t = as_tensor(v)) KILN_RETURN_IF_ERROR(check_tensor(in, *t, &symbols));
    if (const TensorSequence* s = as_sequence(v)) {
      if (in->type.dtype != DType::kUndefined && s->dtype != in->type.dtype)
        return invalid_argument("input '{}': expected a sequence of {}, got one of {}", in->name,
                                dtype_name(in->type.dtype), dtype_name(s->dtype));
      for (const Tensor& t : s->tensors) KILN_RETURN_IF_ERROR(check_tensor(in, t, nullptr));
    }
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

Status check_inputs(const Graph& graph, const std::map<std::string, Tensor>& inputs) {
  return check_input_values(graph, std::map<std::string, RuntimeValue>(inputs.begin(), inputs.end()));
}

Expected<std::vector<RuntimeValue>> CpuExecutor::run_values(const std::map<std::string, RuntimeValue>& inputs,
                                                            std::vector<double>* node_ms) const {
  KILN_RETURN_IF_ERROR(check_input_values(*graph_, inputs));
  Env env;
  for (const Value* in : graph_->inputs) {
    auto it = inputs.find(in->name);
    env.values[in] = it == inputs.end() ? RuntimeValue(EmptyOptional{}) : it->second;
  }
  KILN_RETURN_IF_ERROR(run_graph(*graph_, env, node_ms));
  std::vector<RuntimeValue> outs;
  for (const Value* o : graph_->outputs) {
    const RuntimeValue* v = env.find(o);
    if (!v) return internal_error("graph output '{}' was not computed", o->name);
    outs.push_back(*v);
  }
  return outs;
}

Expected<std::vector<Tensor>> CpuExecutor::run(const std::map<std::string, Tensor>& inputs,
                                               std::vector<double>* node_ms) const {
  KILN_ASSIGN_OR_RETURN(auto values,
                        run_values(std::map<std::string, RuntimeValue>(inputs.begin(), inputs.end()), node_ms));
  std::vector<Tensor> outs;
  for (size_t i = 0; i < values.size(); ++i) {
    const Tensor* t = as_tensor(values[i]);
    if (!t)
      return unsupported("graph output '{}' is {}: read it with run_values", graph_->outputs[i]->name,
                         kind_text(values[i]));
    outs.push_back(*t);
  }
  return outs;
}

}  // namespace kiln
