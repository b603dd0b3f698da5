// Checks every tactic a CUDA layer offers, not only the one the builder's timing picks: the plan
// is built once, then run once per tactic (the node's layer choice replaced) against the CPU.
#pragma once

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

}  // namespace kiln::test
