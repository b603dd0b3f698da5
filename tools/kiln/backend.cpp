#include "backend.hpp"

#include "builder/backend.hpp"
#include "builder/builder.hpp"
#include "util/error.hpp"

namespace kiln::cli {

Expected<BackendKind> parse_backend(const std::string& name) {
  if (name == "cpu") return BackendKind::kCpu;
  if (name == "cuda") return BackendKind::kCuda;
  if (name == "auto") return BackendKind::kAuto;
  return invalid_argument("unknown backend '{}' (choose cpu, cuda or auto)", name);
}

Expected<std::string> resolve_backend(BackendKind kind) {
  if (kind == BackendKind::kCpu) return std::string("cpu");
  const Backend* cuda = find_backend("cuda");
  if (kind == BackendKind::kAuto) return std::string(cuda && cuda->available().ok() ? "cuda" : "cpu");
  if (!cuda) return unsupported("this build of kiln has no CUDA backend (use --backend cpu or auto)");
  Status st = cuda->available();
  if (!st.ok()) return st.add_context("the CUDA backend cannot run here");
  return std::string("cuda");
}

bool backend_needs_static_shapes(const std::string& backend) {
  const Backend* b = find_backend(backend);
  return b && b->needs_static_shapes();
}

Expected<std::unique_ptr<Runner>> Runner::create(const std::string& backend, Model model,
                                                 const std::map<std::string, Dims>& input_shapes,
                                                 std::function<void(std::string_view)> log) {
  BuildOptions options;
  options.backend = backend;
  options.input_shapes = input_shapes;
  options.log = std::move(log);
  KILN_ASSIGN_OR_RETURN(Plan plan, build_plan(std::move(model), options));
  auto runner = std::unique_ptr<Runner>(new Runner());
  runner->backend_ = backend;
  KILN_ASSIGN_OR_RETURN(runner->engine_, Engine::from_plan(std::move(plan)));
  KILN_ASSIGN_OR_RETURN(runner->context_, runner->engine_->create_context());
  return runner;
}

}  // namespace kiln::cli
