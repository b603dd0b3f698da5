// A backend as the builder and runtime see it. Each backend registers one instance of itself
// (the CPU backend in libkiln, the CUDA backend in libkiln_cuda).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "builder/build_options.hpp"
#include "util/error.hpp"
#include "runtime/engine.hpp"

namespace kiln {

class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string name() const = 0;
  // Ok when this machine can run the backend; otherwise says why ("no CUDA device").
  virtual Status available() const = 0;
  // What plans built here are for (device, versions).
  virtual PlanTarget target() const = 0;
  // Ok when a plan built for `t` runs on this machine; otherwise says why.
  virtual Status check_target(const PlanTarget& t) const = 0;
  virtual bool supports(const Node& node) const = 0;
  // Whether a plan's top-level values need static shapes (GPU memory is planned ahead).
  virtual bool needs_static_shapes() const = 0;
  // Picks each top-level node's tactic and precision (timing alternatives where there are any).
  // It may annotate nodes with what it compiled for them (the CUDA backend's generated kernels go
  // into the node's attributes, hence into the plan).
  virtual Status choose_layers(Graph& graph, const BuildOptions& options, std::vector<LayerChoice>& layers) const = 0;
  virtual Expected<std::unique_ptr<EngineImpl>> create_engine(const Plan& plan) const = 0;
  // Static-shape backends that run data-dependent ops (NonZero, ...) by synchronizing after them
  // (docs/dynamic-shapes.md): the node's largest output dims; otherwise an error saying why not.
  virtual Expected<std::vector<Dims>> max_output_dims(const Node& node) const {
    return unsupported("its output shape depends on input values, which the {} backend does not resolve", name());
  }
};

// The precision a node computes in, from its first output's dtype: "fp16", "bf16", "tf32" or
// "fp32" (float32, by whether TF32 is allowed), else the dtype's name.
std::string layer_precision(const Node& node, bool tf32);

bool register_backend(std::unique_ptr<Backend> backend);
const Backend* find_backend(const std::string& name);
std::vector<std::string> backend_names();

}  // namespace kiln

#define KILN_REGISTER_BACKEND(type)                                                    \
  namespace {                                                                          \
  [[maybe_unused]] const bool KILN_CONCAT(kiln_backend_registered_, __COUNTER__) =     \
      ::kiln::register_backend(std::make_unique<type>());                              \
  }
