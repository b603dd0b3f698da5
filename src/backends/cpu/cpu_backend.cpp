// The CPU backend as a plan target: plans hold the optimized graph, run by the CpuExecutor.
#include "backends/cpu/cpu_executor.hpp"
#include "builder/backend.hpp"
#include "ops/op_registry.hpp"
#include "util/error.hpp"

namespace kiln {

namespace {

class CpuContext : public ExecutionContext {
 public:
  explicit CpuContext(const CpuExecutor& exec) : exec_(exec) {}
  Status set_inputs(const std::map<std::string, Tensor>& inputs) override {
    KILN_RETURN_IF_ERROR(check_inputs(exec_.graph(), inputs));
    inputs_ = inputs;
    return Status::Ok();
  }
  Status enqueue() override {
    KILN_ASSIGN_OR_RETURN(outputs_, exec_.run(inputs_));
    return Status::Ok();
  }
  Status synchronize() override { return Status::Ok(); }
  Expected<std::vector<Tensor>> outputs() override { return outputs_; }

 private:
  const CpuExecutor& exec_;
  std::map<std::string, Tensor> inputs_;
  std::vector<Tensor> outputs_;
};

class CpuEngine : public EngineImpl {
 public:
  explicit CpuEngine(std::unique_ptr<CpuExecutor> exec) : exec_(std::move(exec)) {}
  Expected<std::unique_ptr<ExecutionContext>> create_context(const ContextOptions&) const override {
    return std::unique_ptr<ExecutionContext>(std::make_unique<CpuContext>(*exec_));
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
    const OpRegistry& reg = OpRegistry::instance();
    return reg.schema(n.domain, n.op_type) && reg.cpu_kernel(n.domain, n.op_type);
  }
  bool needs_static_shapes() const override { return false; }
  Status choose_layers(const Graph& g, const BuildOptions&, std::vector<LayerChoice>& layers) const override {
    layers.assign(g.nodes().size(), LayerChoice{"", "fp32"});
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
