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

struct ContextOptions {
  bool cuda_graph = false;    // capture the layers once into a CUDA graph, then replay it
  bool layer_timing = false;  // time every layer (events between layers on the GPU: slower; for profiling)
};

// One context runs one inference at a time; use one context per thread or stream.
class ExecutionContext {
 public:
  virtual ~ExecutionContext() = default;
  // Checks host inputs against the bindings (name, dtype, shape) and copies them in
  // (asynchronously on the CUDA backend: the tensors must stay alive until synchronize()).
  virtual Status set_inputs(const std::map<std::string, Tensor>& inputs) = 0;
  // Runs the layers on the inputs last set (asynchronously on the CUDA backend).
  virtual Status enqueue() = 0;
  // Waits for everything enqueued.
  virtual Status synchronize() = 0;
  // Copies the outputs back (after synchronizing), in graph-output order.
  virtual Expected<std::vector<Tensor>> outputs() = 0;
  // set_inputs + enqueue + outputs.
  Expected<std::vector<Tensor>> run(const std::map<std::string, Tensor>& inputs) {
    KILN_RETURN_IF_ERROR(set_inputs(inputs));
    KILN_RETURN_IF_ERROR(enqueue());
    return outputs();
  }
  // Times of the last set_inputs / enqueue / outputs, where the backend measures them (device
  // time on the GPU, known once synchronize() or outputs() has returned; host time on the CPU).
  virtual RunTimings last_timings() const { return {}; }
  // With ContextOptions::layer_timing: each layer's time in the last enqueue (ms, one per plan
  // layer), once synchronize() or outputs() has returned. Never waits for the device.
  virtual Expected<std::vector<double>> layer_times_ms() const {
    return Status(StatusCode::kUnsupported, "this backend does not time layers");
  }

  // Plans with optimization profiles (built with --min/--opt/--max-shapes): which profile the
  // input shapes are checked against (0 until set).
  Status set_optimization_profile(size_t index);
  size_t optimization_profile() const { return profile_; }
  size_t num_optimization_profiles() const { return profiles_ ? profiles_->size() : 0; }
  // Declares an input's shape before its data: checked against the profile at once (an error
  // names the binding, the dims and the allowed range). set_inputs takes the tensors' own shapes.
  Status set_input_shape(const std::string& name, const Dims& dims);
  const std::map<std::string, Dims>& input_shapes() const { return input_shapes_; }

 protected:
  // Checks the inputs against the active profile and records their shapes (backends call it
  // from set_inputs).
  Status check_profile(const std::map<std::string, Tensor>& inputs);

 private:
  friend class Engine;
  const std::vector<OptimizationProfile>* profiles_ = nullptr;  // the engine's plan's
  size_t profile_ = 0;
  std::map<std::string, Dims> input_shapes_;
};

// What a backend provides for a loaded plan.
class EngineImpl {
 public:
  virtual ~EngineImpl() = default;
  virtual Expected<std::unique_ptr<ExecutionContext>> create_context(const ContextOptions& options) const = 0;
  virtual uint64_t weight_bytes() const { return 0; }      // device memory for weights
  virtual uint64_t context_bytes() const { return 0; }     // device memory per context (arena + workspace)
};

class Engine {
 public:
  // Loads a plan file and prepares it on its backend (checks the target matches this machine).
  static Expected<std::shared_ptr<Engine>> load(const std::string& path);
  static Expected<std::shared_ptr<Engine>> from_plan(Plan plan);

  const Plan& plan() const { return plan_; }
  std::vector<BindingInfo> inputs() const;
  std::vector<BindingInfo> outputs() const;
  Expected<std::unique_ptr<ExecutionContext>> create_context(const ContextOptions& options = {}) const;
  const EngineImpl& impl() const { return *impl_; }

 private:
  Engine(Plan plan, std::unique_ptr<EngineImpl> impl) : plan_(std::move(plan)), impl_(std::move(impl)) {}
  Plan plan_;
  std::unique_ptr<EngineImpl> impl_;
};

}  // namespace kiln
