#include "builder/builder.hpp"

#include <chrono>
#include <optional>

#include <nlohmann/json.hpp>

#include "builder/backend.hpp"
#include "builder/memory_planner.hpp"
#include "builder/precision_plan.hpp"
#include "builder/specialize.hpp"
#include "ops/shape_inference.hpp"
#include "ops/support_check.hpp"
#include "passes/pass.hpp"
#include "quant/qdq_insertion.hpp"
#include "util/error.hpp"

namespace kiln {

namespace {

void log(const BuildOptions& o, const std::string& line) {
  if (o.log) o.log(line);
}

Status apply_input_shapes(Graph& g, const BuildOptions& o) {
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
    for (const OptimizationProfile& p : o.profiles)
      if (p.inputs.count(name))
        return invalid_argument("input '{}' is given both --shapes and an optimization profile: choose one", name);
    in->type.shape = Shape::from_dims(dims);
  }
  return Status::Ok();
}

// A static-shape backend with neither --shapes nor a profile for a dynamic input: build for the
// input with its unknown dims set to 1, and say so (not a failure).
Status default_dynamic_inputs(Graph& g, const BuildOptions& o) {
  for (Value* in : g.inputs) {
    if (in->type.shape.is_static()) continue;
    if (!in->type.shape.has_rank())
      return invalid_argument("input '{}' has no known rank: give its shape, e.g. --shapes {}:1x3x224x224", in->name,
                              in->name);
    Dims dims;
    for (size_t i = 0; i < in->type.shape.rank(); ++i) {
      const Dim& d = in->type.shape[i];
      dims.push_back(d.known() ? d.value : 1);
    }
    std::string msg = fmt::format(
        "note: input '{}' has dynamic shape {} and no --shapes or optimization profile: building for {} (give "
        "--shapes {}:DIMS, or --min-shapes/--opt-shapes/--max-shapes for a range)",
        in->name, in->type.shape.to_string(), dims_to_string(dims), in->name);
    if (o.log) o.log(msg);
    else fmt::print(stderr, "{}\n", msg);
    in->type.shape = Shape::from_dims(dims);
  }
  return Status::Ok();
}

// With profiles on a static-shape backend every dynamic input needs a range in every profile.
Status check_profiles_cover(const Graph& g, const std::vector<OptimizationProfile>& profiles) {
  for (const Value* in : g.inputs) {
    if (in->type.shape.is_static()) continue;
    for (size_t i = 0; i < profiles.size(); ++i)
      if (!profiles[i].inputs.count(in->name))
        return invalid_argument("input '{}' has dynamic shape {}, but optimization profile {} gives no range for it "
                                "(add {}:DIMS to --min-shapes, --opt-shapes and --max-shapes, or fix it with --shapes)",
                                in->name, in->type.shape.to_string(), i, in->name);
  }
  return Status::Ok();
}

// Tactics (timed at each profile's opt shapes; the first profile that has a node wins), support
// checks at min/opt/max, and the arena size for the largest shapes of any profile.
Status choose_profiled_layers(const Graph& g, const Backend& backend, const BuildOptions& o, Plan& plan) {
  const char* kEnd[3] = {"min", "opt", "max"};
  std::map<std::string, LayerChoice> by_key;
  for (size_t pi = 0; pi < o.profiles.size(); ++pi) {
    for (int which = 0; which < 3; ++which) {
      auto shapes = o.profiles[pi].at(which);
      auto where = [&] {
        std::string s;
        for (const auto& [n, d] : shapes) s += (s.empty() ? "" : ", ") + n + ": " + dims_to_string(d);
        return fmt::format("optimization profile {} at its {} shapes ({})", pi, kEnd[which], s);
      };
      // Data-dependent ops (if any) at their largest outputs, as in choose_data_dependent_layers.
      auto spec = specialize_at_bounds(
          g, shapes, [&backend](const Node& n) { return backend.max_output_dims(n); }, o.disabled_passes);
      if (!spec.ok()) return Status(spec.status()).add_context(where());
      Status st = check_ops_supported(
          **spec, [&backend](const Node& n) { return backend.supports(n); }, backend.name());
      if (!st.ok()) return st.add_context(where());
      if (which == 1) {
        std::vector<LayerChoice> layers;
        st = backend.choose_layers(**spec, o, layers);
        if (!st.ok()) return st.add_context(where());
        for (size_t i = 0; i < layers.size() && i < (*spec)->nodes().size(); ++i)
          by_key.emplace(node_key(*(*spec)->nodes()[i]), layers[i]);
      } else if (which == 2) {
        auto mem = plan_memory(**spec);
        if (!mem.ok()) return Status(mem.status()).add_context(where());
        plan.arena_bytes = std::max(plan.arena_bytes, mem->arena_bytes);
      }
    }
  }
  plan.layers.clear();
  for (const auto& n : g.nodes()) {
    auto it = by_key.find(node_key(*n));
    plan.layers.push_back(it != by_key.end() ? it->second : LayerChoice{"", layer_precision(*n, o.tf32)});
  }
  return Status::Ok();
}

// --fp8 quantizes the GEMMs that the model marks with float8 Q/DQ (the CUDA fp8-gemm-fusion pass
// turns them into kiln.Fp8MatMul); a model without any is refused rather than built without FP8.
Status check_fp8_model(const Graph& g) {
  for (const auto& n : g.nodes())
    if (n->domain.empty() && n->op_type == "DequantizeLinear" && n->has_input(0) &&
        n->inputs[0]->type.dtype == DType::kFloat8E4M3FN)
      return Status::Ok();
  return invalid_argument(
      "--fp8: the model has no float8 (FLOAT8E4M3FN) QuantizeLinear/DequantizeLinear around its MatMul/Gemm "
      "nodes; give --calib-data (or --calib-cache) to calibrate it, or quantize it first (see docs/fp8.md)");
}

// Where calibration runs: --calib-backend, else the build's backend (the CPU when that cannot run
// here, or when a default CUDA run fails). The CUDA plan gets the build's workspace, timing cache
// and disabled passes.
Status choose_calibration_backend(const BuildOptions& o, CalibrationOptions& c) {
  c.workspace_bytes = o.workspace_bytes;
  c.timing_cache = o.timing_cache;
  c.disabled_passes = o.disabled_passes;
  if (!c.backend.empty()) return check_calibration_backend(c.backend).status();
  c.backend = o.backend == "cuda" ? "cuda" : "cpu";
  if (c.backend == "cuda") {
    auto ok = check_calibration_backend("cuda");
    if (!ok.ok()) {
      log(o, fmt::format("calibration: on cpu ({})", ok.status().message()));
      c.backend = "cpu";
    }
    c.backend_fallback = true;
  }
  return Status::Ok();
}

// --int8: ranges from calibration (or its cache), then Q/DQ insertion, with a report of what was
// quantized and what stayed float (and why).
Status quantize_int8(Graph& g, const BuildOptions& o, QuantizationSpec spec) {
  bool any = false;  // calibration costs CPU runs of the model: skip it when no layer would change
  for (const auto& n : g.nodes())
    any |= n->domain.empty() && spec.op_types.count(n->op_type) && !spec.keep_float.count(precision_key(*n));
  if (!any) {
    log(o, "int8: no layer to quantize (every Conv/MatMul/Gemm is kept float): no calibration run");
    return Status::Ok();
  }
  CalibrationOptions c = o.calibration;
  if (!c.data.log) c.data.log = o.log;
  KILN_RETURN_IF_ERROR(choose_calibration_backend(o, c));
  KILN_ASSIGN_OR_RETURN(RangeTable ranges, calibrate(g, c));
  QuantizationReport report;
  spec.report = &report;
  KILN_ASSIGN_OR_RETURN(bool changed, insert_qdq(g, ranges, spec));
  (void)changed;
  if (o.int8_report) *o.int8_report = report;
  log(o, fmt::format("{}: {} layers quantized, {} kept float", spec.qtype == DType::kInt8 ? "int8" : "fp8",
                     report.quantized.size(), report.kept_float.size()));
  for (const auto& [node, why] : report.kept_float) log(o, fmt::format("  kept float: {}: {}", node, why));
  return Status::Ok();
}

// Data-dependent output shapes (NonZero, NonMaxSuppression, TopK with K from a tensor) on a
// static-shape backend: the plan keeps the graph with those dims unknown, and the engine runs it in
// stages, synchronizing after each such op to learn its output size (docs/dynamic-shapes.md).
// Support checks and tactics use the graph with every such op at its largest output; memory is
// planned per stage at run time.
Status choose_data_dependent_layers(const Graph& g, const Backend& backend, const BuildOptions& o, Plan& plan) {
  std::vector<std::string> synced;
  KILN_ASSIGN_OR_RETURN(
      GraphPtr at_max,
      specialize_at_bounds(
          g, {}, [&backend](const Node& n) { return backend.max_output_dims(n); }, o.disabled_passes, &synced));
  KILN_RETURN_IF_ERROR(check_ops_supported(
      *at_max, [&backend](const Node& n) { return backend.supports(n); }, backend.name()));
  std::vector<LayerChoice> layers;
  KILN_RETURN_IF_ERROR(backend.choose_layers(*at_max, o, layers));
  std::map<std::string, LayerChoice> by_key;
  for (size_t i = 0; i < layers.size() && i < at_max->nodes().size(); ++i)
    by_key.emplace(node_key(*at_max->nodes()[i]), layers[i]);
  plan.layers.clear();
  for (const auto& n : g.nodes()) {
    auto it = by_key.find(node_key(*n));
    plan.layers.push_back(it != by_key.end() ? it->second : LayerChoice{"", layer_precision(*n, o.tf32)});
  }
  auto mem = plan_memory(*at_max);  // an estimate: the engine plans each stage's memory itself
  if (mem.ok()) plan.arena_bytes = mem->arena_bytes;
  log(o, fmt::format("      data-dependent output shapes: the engine synchronizes after {} layer(s) ({})",
                     synced.size(), fmt::join(synced, ", ")));
  return Status::Ok();
}

PassManagerOptions pass_options(const BuildOptions& o) {
  PassManagerOptions pm;
  pm.disabled = o.disabled_passes;
  pm.dump_after = o.dump_ir_after;
  if (o.pass_log) pm.log = o.log;
  pm.dump = o.log;
  return pm;
}

// The graph passes: output selection, the clean-up pipeline to a fixed point, then precision
// (once: planned per node, docs/precision.md) and a second clean-up round for what its casts made
// constant. The precision decisions go to `report`.
Status run_graph_passes(Graph& g, const BuildOptions& options, const Backend& backend,
                        std::vector<std::string>& report) {
  KILN_RETURN_IF_ERROR(check_pass_names(options.disabled_passes, "--disable-pass"));
  KILN_RETURN_IF_ERROR(check_pass_names(options.dump_ir_after, "--dump-ir-after", /*allow_all=*/true));
  KILN_RETURN_IF_ERROR(select_outputs(g, options.outputs));
  PassManager pm(pass_options(options));
  add_cleanup_passes(pm, options.fold_random);
  KILN_RETURN_IF_ERROR(pm.run(g));
  // --fp8 runs the rest in float16 (bfloat16 with --bf16): as if --fp16 were given.
  std::optional<BuildOptions> with_fp16;
  if (options.fp8) {
    if (!options.fp16 && !options.bf16) {
      with_fp16 = options;
      with_fp16->fp16 = true;
    }
  }
  const BuildOptions& o = with_fp16 ? *with_fp16 : options;
  const bool mixed = o.fp16 || o.bf16 || o.best || !o.layer_precisions.empty() ||
                     o.accuracy_budget >= 0;
  const bool can_quantize = !o.calibration.data.dir.empty() || !o.calibration.cache.empty();
  PrecisionPlan pp;
  if (mixed) {
    KILN_RETURN_IF_ERROR(infer_shapes(g));  // the guard and --best's rule read shapes
    KILN_ASSIGN_OR_RETURN(pp, plan_precisions(g, o, backend, can_quantize));
    for (const std::string& line : pp.report)  // all of them are in the build report; warnings show now
      if (line.rfind("warning:", 0) == 0) log(o, "      " + line);
    report = pp.report;
  }
  // INT8: --int8 (every Conv/MatMul/Gemm the plan does not keep float), --best with calibration
  // data (its large layers), or only the layers --layer-precision names int8. Calibrated on the
  // cleaned float32 graph, before reduced precision changes its dtypes.
  const bool best_int8 = o.best && can_quantize && !o.calibration_batches.empty();
  if (o.int8 || best_int8 || !pp.quantize.empty()) {
    QuantizationSpec spec;
    if (!o.int8 && !best_int8)
      for (const auto& n : g.nodes())
        if (spec.op_types.count(n->op_type)) spec.keep_float.insert(precision_key(*n));
    apply_to_quantization(pp, spec);
    KILN_RETURN_IF_ERROR(quantize_int8(g, o, spec));
  }
  // FP8: with calibration data, Q/DQ (scales amax/448, per tensor) on the MatMul/Gemm nodes with
  // constant weights; a model that has FP8 Q/DQ already (QAT) is taken as it is.
  if (o.fp8) {
    if (can_quantize && !check_fp8_model(g).ok()) {
      QuantizationSpec spec;
      spec.qtype = DType::kFloat8E4M3FN;
      spec.op_types = {"MatMul", "Gemm"};
      KILN_RETURN_IF_ERROR(quantize_int8(g, o, spec));
    }
    KILN_RETURN_IF_ERROR(check_fp8_model(g));
  }
  if (mixed && pp.any_reduced) {
    PassManagerOptions once = pass_options(o);
    once.max_iterations = 1;
    PassManager precision(once);
    precision.add(make_mixed_precision_pass(std::move(pp.assignment)));
    KILN_RETURN_IF_ERROR(precision.run(g));
    KILN_RETURN_IF_ERROR(pm.run(g));  // fold what the new casts made constant
  }
  return Status::Ok();
}

std::string options_json(const BuildOptions& o) {
  nlohmann::json j;
  j["backend"] = o.backend;
  j["fp16"] = o.fp16;
  j["bf16"] = o.bf16;
  j["tf32"] = o.tf32;
  if (o.fp8) j["fp8"] = true;
  if (o.int8) j["int8"] = {{"calib_algo", o.calibration.algorithm}};
  if (o.best) j["best"] = true;
  for (const auto& [name, prec] : o.layer_precisions) j["layer_precisions"].push_back({name, prec});
  if (!o.layer_precisions.empty()) j["precision_constraints"] = o.precision_constraints;
  if (!o.fp32_guard) j["fp32_guard"] = false;
  if (o.accuracy_budget >= 0) j["accuracy_budget"] = o.accuracy_budget;
  j["workspace_bytes"] = o.workspace_bytes;
  for (const auto& [name, dims] : o.input_shapes) j["shapes"][name] = dims;
  if (!o.outputs.empty()) j["outputs"] = o.outputs;
  if (!o.disabled_passes.empty()) j["disabled_passes"] = o.disabled_passes;
  if (o.fold_random) j["fold_random"] = true;
  for (const OptimizationProfile& p : o.profiles) {
    nlohmann::json jp;
    for (const auto& [name, r] : p.inputs) jp[name] = {{"min", r.min}, {"opt", r.opt}, {"max", r.max}};
    j["profiles"].push_back(jp);
  }
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

// The CUDA backend's fusions and layout choice (after precision assignment: they depend on the
// final dtypes). add_cuda_passes (passes/pipeline.cpp) lists them.
Status run_backend_passes(Graph& g, const Backend& backend, const BuildOptions& options) {
  if (backend.name() != "cuda") return Status::Ok();
  PassManager pm(pass_options(options));
  add_cuda_passes(pm);
  pm.add(make_dead_code_pass());
  KILN_RETURN_IF_ERROR(pm.run(g));
  PassManager last(pass_options(options));
  add_cuda_final_passes(last);
  return last.run(g);
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

  const bool static_shapes = backend->needs_static_shapes();
  const bool profiled = !options.profiles.empty();
  KILN_RETURN_IF_ERROR(apply_input_shapes(g, options));
  if (profiled) {
    KILN_RETURN_IF_ERROR(validate_profiles(g, options.profiles));
    if (static_shapes) KILN_RETURN_IF_ERROR(check_profiles_cover(g, options.profiles));
  } else if (static_shapes) {
    KILN_RETURN_IF_ERROR(default_dynamic_inputs(g, options));
  }
  KILN_RETURN_IF_ERROR(infer_shapes(g));
  KILN_RETURN_IF_ERROR(check_tensor_values_only(g, backend->name()));
  log(options, fmt::format("[1/4] graph passes ({} nodes)", g.nodes().size()));
  std::vector<std::string> precision_report;
  KILN_RETURN_IF_ERROR(run_graph_passes(g, options, *backend, precision_report));
  // Static shapes: shape arithmetic on inputs is known now (Shape -> Gather -> Reshape): fold it.
  if (static_shapes && !profiled) KILN_RETURN_IF_ERROR(fold_static_graph(g, options.disabled_passes));
  KILN_RETURN_IF_ERROR(run_backend_passes(g, *backend, options));
  log(options, fmt::format("      {} nodes after passes", g.nodes().size()));

  Plan plan;
  plan.profiles = options.profiles;
  plan.precision_report = std::move(precision_report);
  plan.kiln_version = kiln_version();
  plan.target = backend->target();
  plan.options_json = options_json(options);
  plan.workspace_bytes = options.workspace_bytes;
  auto finish = [&]() -> Plan {
    plan.graph = model.graph;
    plan.build_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    log(options, fmt::format("[4/4] done in {:.2f} s", plan.build_seconds));
    return std::move(plan);
  };
  if (profiled && static_shapes) {
    // The plan keeps the dynamic graph; the backend specializes it per input-shape set at run time.
    log(options, "[2/4] choosing kernels (at each profile's opt shapes) and sizing memory (at max)");
    KILN_RETURN_IF_ERROR(choose_profiled_layers(g, *backend, options, plan));
    return finish();
  }
  if (static_shapes && first_unresolved_node(g) < g.nodes().size()) {
    // Output sizes that depend on values (NonZero, ...): the plan keeps the graph; no arena plan.
    log(options, "[2/4] choosing kernels (data-dependent shapes at their largest)");
    KILN_RETURN_IF_ERROR(choose_data_dependent_layers(g, *backend, options, plan));
    return finish();
  }
  KILN_RETURN_IF_ERROR(check_ops_supported(
      g, [backend](const Node& n) { return backend->supports(n); }, backend->name()));

  log(options, "[2/4] choosing kernels");
  KILN_RETURN_IF_ERROR(backend->choose_layers(g, options, plan.layers));
  if (backend->needs_static_shapes()) {
    log(options, "[3/4] planning activation memory");
    KILN_ASSIGN_OR_RETURN(MemoryPlan mem, plan_memory(g));
    plan.arena_bytes = mem.arena_bytes;
    plan.arena = std::move(mem.slots);
  }
  return finish();
}

}  // namespace kiln
