// Backend selection for the CLI: `--backend cpu|cuda|auto` to an engine that runs a model.
//
// Every backend goes through the builder (passes, support check, plan) and the runtime, so
// `kiln run` exercises the same path as a deployment.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "ir/graph.hpp"
#include "runtime/engine.hpp"

namespace kiln::cli {

enum class BackendKind { kCpu, kCuda, kAuto };

Expected<BackendKind> parse_backend(const std::string& name);
// The registered backend to use: "cpu" or "cuda". `auto` is CUDA when this build has the CUDA
// backend and it finds a GPU, else the CPU; asking for CUDA where it is missing is an error
// saying why, never a silent fallback.
Expected<std::string> resolve_backend(BackendKind kind);
// Whether the backend needs every input shape fixed when its plan is built.
bool backend_needs_static_shapes(const std::string& backend);

// A built model with one execution context.
class Runner {
 public:
  const std::string& backend_name() const { return backend_; }
  Expected<std::vector<Tensor>> run(const std::map<std::string, Tensor>& inputs) { return context_->run(inputs); }

  // Builds `model` for `backend`, fixing the given input shapes. Fails (Unsupported) listing every
  // op the backend cannot run. `log` receives the builder's progress lines when set.
  static Expected<std::unique_ptr<Runner>> create(const std::string& backend, Model model,
                                                  const std::map<std::string, Dims>& input_shapes,
                                                  std::function<void(std::string_view)> log = {});

 private:
  std::string backend_;
  std::shared_ptr<Engine> engine_;
  std::unique_ptr<ExecutionContext> context_;
};

}  // namespace kiln::cli
