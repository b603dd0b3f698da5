// Backend selection for the CLI: `--backend cpu|cuda|auto` to an object that runs a graph.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "ir/graph.hpp"

namespace kiln::cli {

enum class BackendKind { kCpu, kCuda, kAuto };

inline constexpr const char* kBackendNames[] = {"cpu", "cuda", "auto"};
Expected<BackendKind> parse_backend(const std::string& name);
// Unsupported when this build or machine cannot provide the backend (checked before any work).
Status check_backend_available(BackendKind kind);

// A prepared graph on one backend.
class Runner {
 public:
  virtual ~Runner() = default;
  virtual const char* backend_name() const = 0;
  virtual Expected<std::vector<Tensor>> run(const std::map<std::string, Tensor>& inputs) const = 0;
};

// `auto` picks CUDA when this build has the CUDA backend and a GPU is present, else the CPU.
// Fails (Unsupported) listing every op the chosen backend cannot run.
Expected<std::unique_ptr<Runner>> create_runner(BackendKind kind, GraphPtr graph);

}  // namespace kiln::cli
