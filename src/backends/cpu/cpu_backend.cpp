// The CPU backend as a plan target: plans hold the optimized graph, run by the CpuExecutor.
#include <chrono>

#include "backends/cpu/cpu_executor.hpp"
#include "builder/backend.hpp"
#include "ops/op_registry.hpp"
#include "plugin/plugin_node.hpp"
#include "util/error.hpp"

namespace kiln {

namespace {

class CpuContext : public ExecutionContext {
 public:
  CpuContext(const CpuExecutor& exec, ContextOptions options) : exec_(exec), options_(options) {}
  Status set_inputs(const std::map<std::string, Tensor>& inputs) override {
    KILN_RETURN_IF_ERROR(check_inputs(exec_.graph(), inputs));
    KILN_RETURN_IF_ERROR(check_profile(inputs));
    inputs_ = inputs;
    return Status::Ok();
  }
  Status enqueue() override {
    auto start = std::chrono::steady_clock::now();
    KILN_ASSIGN_OR_RETURN(outputs_, exec_.run(inputs_, options_.layer_timing ? &layer_ms_ : nullptr));
    // The CPU runs synchronously: compute time is the host time of the run.
    timings_.compute_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    return Status::Ok();
  }
  Status synchronize() override { return Status::Ok(); }
  Expected<std::vector<Tensor>> outputs() override { return outputs_; }
  RunTimings last_timings() const override { return timings_; }
  Expected<std::vector<double>> layer_times_ms() const override {
    if (!options_.layer_timing)
      return Status(StatusCode::kInvalidArgument, "layer timing is off: create the context with layer_timing");
    return layer_ms_;
  }

 private:
  const CpuExecutor& exec_;
  ContextOptions options_;
  std::map<std::string, Tensor> inputs_;
  std::vector<Tensor> outputs_;
  RunTimings timings_;
  std::vector<double> layer_ms_;
};

class CpuEngine : public EngineImpl {
 public:
  explicit CpuEngine(std::unique_ptr<CpuExecutor> exec) : exec_(std::move(exec)) {}
  Expected<std::unique_ptr<ExecutionContext>> create_context(const ContextOptions& options) const override {
    if (options.cuda_graph) return unsupported("CUDA graphs need the CUDA backend; this plan is for the CPU");
    return std::unique_ptr<ExecutionContext>(std::make_unique<CpuContext>(*exec_, options));
  }

 private:
  std::unique_ptr<CpuExecutor> exec_;
};

class CpuBackend : public Backend {
 public:
  std::string name() const override { return "cpu"; }
  Status available() const override { return Status::Ok(); }
  PlanTarget target() const override { return PlanTarget{.backend = "cpu"}; }
  Status check_target(const PlanTarget&) const override { return Status::Ok(); }
  bool supports(const Node& n) const override {
    if (n.plugin) return plugin_supports(n, PluginDevice::kCpu);
    const OpRegistry& reg = OpRegistry::instance();
    return reg.schema(n.domain, n.op_type) && reg.cpu_kernel(n.domain, n.op_type);
  }
  bool needs_static_shapes() const override { return false; }
  Status choose_layers(Graph& g, const BuildOptions&, std::vector<LayerChoice>& layers) const override {
    layers.clear();
    for (const auto& n : g.nodes()) layers.push_back(LayerChoice{"", layer_precision(*n, /*tf32=*/false)});
    return Status::Ok();
  }
  Expected<std::unique_ptr<EngineImpl>> create_engine(const Plan& plan) const override {
    KILN_ASSIGN_OR_RETURN(auto exec, CpuExecutor::create(plan.graph));
    return std::unique_ptr<EngineImpl>(std::make_unique<CpuEngine>(std::move(exec)));
  }
};

}  // namespace
}  // namespace kiln

KILN_REGISTER_BACKEND(kiln::CpuBackend);
