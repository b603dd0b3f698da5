#include "backend.hpp"

#include <mutex>

#include "backends/cpu/cpu_executor.hpp"
#include "builder/backend.hpp"
#include "builder/builder.hpp"
#include "runtime/engine.hpp"
#include "util/error.hpp"

namespace kiln::cli {

Expected<std::vector<RuntimeValue>> Runner::run_values(const std::map<std::string, RuntimeValue>& inputs) const {
  std::map<std::string, Tensor> tensors;
  for (const auto& [name, v] : inputs) {
    const Tensor* t = as_tensor(v);
    if (!t) return unsupported("input '{}': the {} backend does not support sequence or optional values", name, backend_name());
    tensors[name] = *t;
  }
  KILN_ASSIGN_OR_RETURN(auto outs, run(tensors));
  return std::vector<RuntimeValue>(outs.begin(), outs.end());
}

namespace {

class CpuRunner : public Runner {
 public:
  explicit CpuRunner(std::unique_ptr<CpuExecutor> exec) : exec_(std::move(exec)) {}
  const char* backend_name() const override { return "cpu"; }
  Expected<std::vector<Tensor>> run(const std::map<std::string, Tensor>& inputs) const override {
    return exec_->run(inputs);
  }
  Expected<std::vector<RuntimeValue>> run_values(const std::map<std::string, RuntimeValue>& inputs) const override {
    return exec_->run_values(inputs);
  }

 private:
  std::unique_ptr<CpuExecutor> exec_;
};

// GPU plans need static shapes, which only the first inputs tell: build then, once.
class CudaRunner : public Runner {
 public:
  CudaRunner(GraphPtr graph, BuildOptions build) : graph_(std::move(graph)), build_(std::move(build)) {
    build_.backend = "cuda";
  }
  const char* backend_name() const override { return "cuda"; }

  Expected<std::vector<Tensor>> run(const std::map<std::string, Tensor>& inputs) const override {
    std::lock_guard<std::mutex> lock(mu_);
    if (!ctx_) {
      for (const auto& [name, t] : inputs)
        if (!in_profiles(build_, name)) build_.input_shapes[name] = t.dims();
      Model model;
      model.graph = graph_;
      KILN_ASSIGN_OR_RETURN(Plan plan, build_plan(std::move(model), build_));
      KILN_ASSIGN_OR_RETURN(engine_, Engine::from_plan(std::move(plan)));
      KILN_ASSIGN_OR_RETURN(ctx_, engine_->create_context());
    } else {
      for (const auto& [name, t] : inputs) {
        auto it = build_.input_shapes.find(name);
        if (it != build_.input_shapes.end() && it->second != t.dims())
          return unsupported("input '{}' is {}, but the CUDA plan was built for [{}]: a new shape needs a new plan",
                             name, t.describe(), dims_to_string(it->second));
      }
    }
    return ctx_->run(inputs);
  }

 private:
  GraphPtr graph_;
  mutable BuildOptions build_;
  mutable std::mutex mu_;
  mutable std::shared_ptr<Engine> engine_;
  mutable std::unique_ptr<ExecutionContext> ctx_;
};

}  // namespace

Expected<BackendKind> parse_backend(const std::string& name) {
  if (name == "cpu") return BackendKind::kCpu;
  if (name == "cuda") return BackendKind::kCuda;
  if (name == "auto") return BackendKind::kAuto;
  return invalid_argument("unknown backend '{}' (choose cpu, cuda or auto)", name);
}

Status check_backend_available(BackendKind kind) {
  if (kind != BackendKind::kCuda) return Status::Ok();
  // Asking for CUDA where there is none is an error, never a silent fallback to the CPU.
  const Backend* cuda = find_backend("cuda");
  if (!cuda) return unsupported("this build of kiln has no CUDA backend (use --backend cpu or auto)");
  Status st = cuda->available();
  if (!st.ok()) return unsupported("the CUDA backend cannot run here: {} (use --backend cpu or auto)", st.message());
  return Status::Ok();
}

Expected<std::string> resolve_backend(BackendKind kind) {
  KILN_RETURN_IF_ERROR(check_backend_available(kind));
  if (kind == BackendKind::kCpu) return std::string("cpu");
  if (kind == BackendKind::kCuda) return std::string("cuda");
  const Backend* cuda = find_backend("cuda");
  return std::string(cuda && cuda->available().ok() ? "cuda" : "cpu");
}

Expected<std::unique_ptr<Runner>> create_runner(BackendKind kind, GraphPtr graph, BuildOptions build) {
  KILN_ASSIGN_OR_RETURN(std::string name, resolve_backend(kind));
  if (name == "cuda") return std::unique_ptr<Runner>(new CudaRunner(std::move(graph), std::move(build)));
  KILN_ASSIGN_OR_RETURN(auto exec, CpuExecutor::create(std::move(graph)));
  return std::unique_ptr<Runner>(new CpuRunner(std::move(exec)));
}

}  // namespace kiln::cli
