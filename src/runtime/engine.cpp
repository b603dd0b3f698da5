#include "runtime/engine.hpp"

#include <algorithm>

#include "builder/backend.hpp"
#include "util/error.hpp"

namespace kiln {

Expected<std::shared_ptr<Engine>> Engine::from_plan(Plan plan) {
  if (!plan.graph) return invalid_argument("the plan has no graph");
  const Backend* backend = find_backend(plan.target.backend);
  if (!backend)
    return unsupported("the plan is for backend '{}', which this build of kiln does not have (it has: {})",
                       plan.target.backend, fmt::join(backend_names(), ", "));
  KILN_RETURN_IF_ERROR(backend->available());
  KILN_RETURN_IF_ERROR(backend->check_target(plan.target));
  KILN_ASSIGN_OR_RETURN(auto impl, backend->create_engine(plan));
  return std::shared_ptr<Engine>(new Engine(std::move(plan), std::move(impl)));
}

Expected<std::shared_ptr<Engine>> Engine::load(const std::string& path) {
  KILN_ASSIGN_OR_RETURN(Plan plan, load_plan(path));
  auto engine = from_plan(std::move(plan));
  if (!engine.ok()) return Status(engine.status()).add_context(path);
  return engine;
}

Expected<std::unique_ptr<ExecutionContext>> Engine::create_context(const ContextOptions& options) const {
  KILN_ASSIGN_OR_RETURN(auto ctx, impl_->create_context(options));
  ctx->profiles_ = &plan_.profiles;
  return ctx;
}

Status ExecutionContext::set_optimization_profile(size_t index) {
  size_t n = num_optimization_profiles();
  if (index >= std::max<size_t>(n, 1))
    return invalid_argument("optimization profile {} does not exist: the plan has {}", index,
                            n ? fmt::format("profiles 0..{}", n - 1) : std::string("no profiles (only profile 0)"));
  profile_ = index;
  input_shapes_.clear();
  return Status::Ok();
}

Status ExecutionContext::set_input_shape(const std::string& name, const Dims& dims) {
  if (profiles_) KILN_RETURN_IF_ERROR(check_profile_shape(*profiles_, profile_, name, dims));
  input_shapes_[name] = dims;
  return Status::Ok();
}

Status ExecutionContext::check_profile(const std::map<std::string, Tensor>& inputs) {
  for (const auto& [name, t] : inputs) KILN_RETURN_IF_ERROR(set_input_shape(name, t.dims()));
  return Status::Ok();
}

static std::vector<BindingInfo> bindings(const std::vector<Value*>& values) {
  std::vector<BindingInfo> out;
  for (const Value* v : values) out.push_back({v->name, v->type.dtype, v->type.shape});
  return out;
}

std::vector<BindingInfo> Engine::inputs() const { return bindings(plan_.graph->inputs); }
std::vector<BindingInfo> Engine::outputs() const { return bindings(plan_.graph->outputs); }

}  // namespace kiln
