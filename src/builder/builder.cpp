#include "builder/builder.hpp"

#include <chrono>

#include <nlohmann/json.hpp>

#include "builder/backend.hpp"
#include "builder/memory_planner.hpp"
#include "ops/shape_inference.hpp"
#include "ops/support_check.hpp"
#include "passes/pass.hpp"
#include "util/error.hpp"

namespace kiln {

namespace {

void log(const BuildOptions& o, const std::string& line) {
  if (o.log) o.log(line);
}

Status apply_input_shapes(Graph& g, const BuildOptions& o, bool require_static) {
  for (const auto& [name, dims] : o.input_shapes) {
    Value* in = nullptr;
    for (Value* v : g.inputs)
      if (v->name == name) in = v;
    if (!in) {
      std::vector<std::string> names;
      for (const Value* v : g.inputs) names.push_back("'" + v->name + "'");
      return invalid_argument("--shapes names '{}', but the model's inputs are {}", name, fmt::join(names, ", "));
    }
    const Shape& declared = in->type.shape;
    bool ok = !declared.has_rank() || declared.rank() == dims.size();
    for (size_t i = 0; ok && declared.has_rank() && i < dims.size(); ++i)
      ok = !declared[i].known() || declared[i].value == dims[i];
    if (!ok)
      return invalid_argument("input '{}': shape {} does not fit the model's {}", name, dims_to_string(dims),
                              declared.to_string());
    in->type.shape = Shape::from_dims(dims);
  }
  if (!require_static) return Status::Ok();
  for (const Value* in : g.inputs)
    if (!in->type.shape.is_static())
      return invalid_argument("input '{}' has dynamic shape {}: give its size, e.g. --shapes {}:{}", in->name,
                              in->type.shape.to_string(), in->name,
                              [&] {
                                std::string s;
                                if (!in->type.shape.has_rank()) return std::string("1x3x224x224");
                                for (size_t i = 0; i < in->type.shape.rank(); ++i) {
                                  const Dim& d = in->type.shape[i];
                                  s += (i ? "x" : "") + std::to_string(d.known() ? d.value : 1);
                                }
                                return s;
                              }());
  return Status::Ok();
}

std::string options_json(const BuildOptions& o) {
  nlohmann::json j;
  j["backend"] = o.backend;
  j["fp16"] = o.fp16;
  j["bf16"] = o.bf16;
  j["tf32"] = o.tf32;
  j["workspace_bytes"] = o.workspace_bytes;
  for (const auto& [name, dims] : o.input_shapes) j["shapes"][name] = dims;
  return j.dump();
}

// Plans (and the CUDA backend) hold tensors only: a sequence or optional value anywhere in the
// graph, subgraphs included, is refused naming the node that makes or reads it.
Status check_tensor_values_only(const Graph& g, const std::string& backend) {
  auto refuse = [&](const Value* v, const std::string& where) {
    return unsupported("{}: value '{}' is {}; the {} backend's plans hold tensor values only (run such models "
                       "with the CPU executor)", where, v->name, v->type.to_string(), backend);
  };
  for (const Value* v : g.inputs)
    if (!v->type.is_tensor()) return refuse(v, "graph input");
  for (const auto& n : g.nodes()) {
    for (const Value* v : n->inputs)
      if (v && !v->type.is_tensor()) return refuse(v, n->describe());
    for (const Value* v : n->outputs)
      if (v && !v->type.is_tensor()) return refuse(v, n->describe());
    for (const Graph* sg : n->subgraphs()) KILN_RETURN_IF_ERROR(check_tensor_values_only(*sg, backend));
  }
  return Status::Ok();
}

}  // namespace

Expected<Plan> build_plan(Model model, const BuildOptions& options) {
  auto start = std::chrono::steady_clock::now();
  const Backend* backend = find_backend(options.backend);
  if (!backend)
    return invalid_argument("unknown backend '{}' (this build has: {})", options.backend,
                            fmt::join(backend_names(), ", "));
  KILN_RETURN_IF_ERROR(backend->available());
  if (!model.graph) return invalid_argument("the model has no graph");
  Graph& g = *model.graph;

  KILN_RETURN_IF_ERROR(apply_input_shapes(g, options, backend->needs_static_shapes()));
  KILN_RETURN_IF_ERROR(infer_shapes(g));
  KILN_RETURN_IF_ERROR(check_tensor_values_only(g, backend->name()));
  log(options, fmt::format("[1/4] graph passes ({} nodes)", g.nodes().size()));
  PassManagerOptions pm_options;
  pm_options.disabled = options.disabled_passes;
  PassManager pm(pm_options);
  pm.add(make_constant_folding_pass());
  pm.add(make_inline_constant_if_pass());
  pm.add(make_dead_code_pass());
  KILN_RETURN_IF_ERROR(pm.run(g));
  if (options.fp16 || options.bf16) {
    if (options.fp16 && options.bf16) return invalid_argument("choose one of --fp16 and --bf16");
    auto changed = make_precision_pass(options.fp16 ? DType::kFloat16 : DType::kBFloat16)->run(g);
    if (!changed.ok()) return changed.status();
    KILN_RETURN_IF_ERROR(infer_shapes(g));
    KILN_RETURN_IF_ERROR(pm.run(g));  // fold what the new casts made constant
  }
  log(options, fmt::format("      {} nodes after passes", g.nodes().size()));

  KILN_RETURN_IF_ERROR(check_ops_supported(
      g, [backend](const Node& n) { return backend->supports(n); }, backend->name()));

  Plan plan;
  plan.kiln_version = kiln_version();
  plan.target = backend->target();
  plan.options_json = options_json(options);
  log(options, "[2/4] choosing kernels");
  KILN_RETURN_IF_ERROR(backend->choose_layers(g, options, plan.layers));
  if (backend->needs_static_shapes()) {
    log(options, "[3/4] planning activation memory");
    KILN_ASSIGN_OR_RETURN(MemoryPlan mem, plan_memory(g));
    plan.arena_bytes = mem.arena_bytes;
    plan.arena = std::move(mem.slots);
  }
  plan.workspace_bytes = options.workspace_bytes;
  plan.graph = model.graph;
  plan.build_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  log(options, fmt::format("[4/4] done in {:.2f} s", plan.build_seconds));
  return plan;
}

}  // namespace kiln
