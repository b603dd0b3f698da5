// The runtime: an Engine (immutable, shared by threads) made from a plan, and ExecutionContexts
// (one per thread or stream, each with its own activation memory).
//
//   KILN_ASSIGN_OR_RETURN(auto engine, kiln::Engine::load("model.kplan"));
//   KILN_ASSIGN_OR_RETURN(auto ctx, engine->create_context());
//   KILN_ASSIGN_OR_RETURN(auto outputs, ctx->run({{"input", tensor}}));
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "runtime/plan.hpp"

namespace kiln {

struct BindingInfo {
  std::string name;
  DType dtype = DType::kUndefined;
  Shape shape;
};

// Per-context timing of the last run, when the backend records it.
struct RunTimings {
  double h2d_ms = 0, compute_ms = 0, d2h_ms = 0;
};

class ExecutionContext {
 public:
  virtual ~ExecutionContext() = default;
  // Copies host inputs in, runs, and returns host outputs in graph-output order (synchronous).
  // Inputs are checked against the bindings (name, dtype, shape) first.
  virtual Expected<std::vector<Tensor>> run(const std::map<std::string, Tensor>& inputs) = 0;
  virtual RunTimings last_timings() const { return {}; }
};

// What a backend provides for a loaded plan.
class EngineImpl {
 public:
  virtual ~EngineImpl() = default;
  virtual Expected<std::unique_ptr<ExecutionContext>> create_context() const = 0;
  virtual uint64_t weight_bytes() const { return 0; }      // device memory for weights
  virtual uint64_t context_bytes() const { return 0; }     // device memory per context
};

class Engine {
 public:
  // Loads a plan file and prepares it on its backend (checks the target matches this machine).
  static Expected<std::shared_ptr<Engine>> load(const std::string& path);
  static Expected<std::shared_ptr<Engine>> from_plan(Plan plan);

  const Plan& plan() const { return plan_; }
  std::vector<BindingInfo> inputs() const;
  std::vector<BindingInfo> outputs() const;
  Expected<std::unique_ptr<ExecutionContext>> create_context() const { return impl_->create_context(); }
  const EngineImpl& impl() const { return *impl_; }

 private:
  Engine(Plan plan, std::unique_ptr<EngineImpl> impl) : plan_(std::move(plan)), impl_(std::move(impl)) {}
  Plan plan_;
  std::unique_ptr<EngineImpl> impl_;
};

}  // namespace kiln
