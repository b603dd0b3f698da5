// Backend selection for the CLI: `--backend cpu|cuda|auto` to an object that runs a graph.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "builder/build_options.hpp"
#include "ir/graph.hpp"
#include "ir/sequence.hpp"

namespace kiln::cli {

enum class BackendKind { kCpu, kCuda, kAuto };

inline constexpr const char* kBackendNames[] = {"cpu", "cuda", "auto"};
Expected<BackendKind> parse_backend(const std::string& name);
// Unsupported when this build or machine cannot provide the backend (checked before any work).
Status check_backend_available(BackendKind kind);
// The registered backend's name: `auto` is "cuda" when this build has the CUDA backend and a
// usable GPU, else "cpu". Fails like check_backend_available.
Expected<std::string> resolve_backend(BackendKind kind);

// A prepared graph on one backend.
class Runner {
 public:
  virtual ~Runner() = default;
  virtual const char* backend_name() const = 0;
  virtual Expected<std::vector<Tensor>> run(const std::map<std::string, Tensor>& inputs) const = 0;
  // Inputs and outputs that may be sequences or optionals. By default only tensors: anything else
  // is Unsupported on this backend.
  virtual Expected<std::vector<RuntimeValue>> run_values(const std::map<std::string, RuntimeValue>& inputs) const;
};

// CPU: the graph runs as imported (dynamic shapes allowed). CUDA: the first run builds a plan in
// memory for the shapes of its inputs (with `build`'s precision options); later runs must use the
// same shapes. Fails (Unsupported) listing every op the CPU cannot run; the CUDA backend's list
// comes with the first run.
Expected<std::unique_ptr<Runner>> create_runner(BackendKind kind, GraphPtr graph, BuildOptions build = {});

}  // namespace kiln::cli
