// Checks every tactic a CUDA layer offers, not only the one the builder's timing picks: the plan
// is built once, then run once per tactic (the node's layer choice replaced) against the CPU.
#pragma once

#include <algorithm>

#include "backends/cuda/cuda_layer.hpp"
#include "gpu_test_util.hpp"

namespace kiln::test {

inline ::testing::AssertionResult all_tactics_match_cpu(const OpCall& call, double tol, BuildOptions options = {},
                                                        size_t min_tactics = 1) {
  options.backend = "cuda";
  auto cpu = run_op(call);
  if (!cpu.ok()) return ::testing::AssertionFailure() << "CPU: " << cpu.status().message();
  Model model;
  model.graph = make_op_graph(call);
  auto plan = build_plan(std::move(model), options);
  if (!plan.ok()) return ::testing::AssertionFailure() << "build: " << plan.status().message();
  const auto& nodes = plan->graph->nodes();
  size_t index = nodes.size();
  for (size_t i = 0; i < nodes.size(); ++i)
    if (nodes[i]->op_type == call.op_type && nodes[i]->domain == call.domain) index = i;
  if (index == nodes.size()) return ::testing::AssertionFailure() << "the plan has no " << call.op_type << " node";
  const Node& node = *nodes[index];
  const cuda::CudaLayerFactory* f = cuda::find_cuda_layer(node);
  if (!f) return ::testing::AssertionFailure() << "no CUDA layer for " << node.op_type;
  std::vector<std::string> tactics = f->tactics ? f->tactics(node, options) : std::vector<std::string>{};
  if (tactics.size() < min_tactics)
    return ::testing::AssertionFailure() << node.op_type << " offers " << tactics.size() << " tactics, expected at least "
                                         << min_tactics;
  if (tactics.empty()) tactics.push_back("");
  std::map<std::string, Tensor> feeds;
  for (const Value* v : plan->graph->inputs)
    feeds[v->name] = call.inputs[static_cast<size_t>(std::stoi(v->name.substr(2)))];
  for (const std::string& t : tactics) {
    Plan p = *plan;
    p.layers[index].tactic = t;
    auto engine = Engine::from_plan(std::move(p));
    if (!engine.ok()) return ::testing::AssertionFailure() << "tactic '" << t << "': " << engine.status().message();
    auto ctx = (*engine)->create_context();
    if (!ctx.ok()) return ::testing::AssertionFailure() << "tactic '" << t << "': " << ctx.status().message();
    auto gpu = (*ctx)->run(feeds);
    if (!gpu.ok()) return ::testing::AssertionFailure() << "tactic '" << t << "': " << gpu.status().message();
    for (size_t i = 0; i < cpu->size(); ++i) {
      const Tensor &c = (*cpu)[i], &g = (*gpu)[i];
      if (c.dtype() != g.dtype() || c.dims() != g.dims())
        return ::testing::AssertionFailure() << "tactic '" << t << "' output " << i << ": CUDA " << g.describe()
                                             << " vs CPU " << c.describe();
      const double err = rel_l2(g, c);
      if (!(err <= tol))
        return ::testing::AssertionFailure() << "tactic '" << t << "' output " << i << ": rel L2 " << err << " > " << tol;
    }
  }
  return ::testing::AssertionSuccess();
}

// Whether the builder leaves `op` to the CUDA backend for this call (false: reported unsupported).
inline bool cuda_builds(const OpCall& call, BuildOptions options = {}) {
  options.backend = "cuda";
  Model model;
  model.graph = make_op_graph(call);
  return build_plan(std::move(model), options).ok();
}

// Median device time of one enqueue (CUDA graph replay, 20 timed after 5 warm-ups) of a one-node
// plan, in ms; `tactic` receives the chosen tactic's configuration part ("fp8:esp", "lt", ...).
inline Expected<double> one_node_plan_ms(const OpCall& call, std::string* tactic = nullptr) {
  BuildOptions o;
  o.backend = "cuda";
  Model model;
  model.graph = make_op_graph(call);
  KILN_ASSIGN_OR_RETURN(Plan plan, build_plan(std::move(model), o));
  if (tactic && !plan.layers.empty()) {
    const std::string& t = plan.layers[0].tactic;
    tactic->assign(t.substr(0, t.find(':', 4)));
  }
  KILN_ASSIGN_OR_RETURN(auto engine, Engine::from_plan(std::move(plan)));
  KILN_ASSIGN_OR_RETURN(auto ctx, engine->create_context(ContextOptions{.cuda_graph = true}));
  std::map<std::string, Tensor> feeds;
  for (const BindingInfo& b : engine->inputs())
    feeds[b.name] = call.inputs[static_cast<size_t>(std::stoi(b.name.substr(2)))];
  KILN_RETURN_IF_ERROR(ctx->set_inputs(feeds));
  KILN_RETURN_IF_ERROR(ctx->synchronize());
  std::vector<double> ms;
  for (int i = 0; i < 25; ++i) {
    KILN_RETURN_IF_ERROR(ctx->enqueue());
    KILN_RETURN_IF_ERROR(ctx->synchronize());
    if (i >= 5) ms.push_back(ctx->last_timings().compute_ms);
  }
  std::sort(ms.begin(), ms.end());
  return ms[ms.size() / 2];
}

}  // namespace kiln::test
