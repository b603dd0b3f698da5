#include "backend.hpp"

#include "backends/cpu/cpu_executor.hpp"
#include "util/error.hpp"

namespace kiln::cli {

namespace {
class CpuRunner : public Runner {
 public:
  explicit CpuRunner(std::unique_ptr<CpuExecutor> exec) : exec_(std::move(exec)) {}
  const char* backend_name() const override { return "cpu"; }
  Expected<std::vector<Tensor>> run(const std::map<std::string, Tensor>& inputs) const override {
    return exec_->run(inputs);
  }

 private:
  std::unique_ptr<CpuExecutor> exec_;
};
}  // namespace

Expected<BackendKind> parse_backend(const std::string& name) {
  if (name == "cpu") return BackendKind::kCpu;
  if (name == "cuda") return BackendKind::kCuda;
  if (name == "auto") return BackendKind::kAuto;
  return invalid_argument("unknown backend '{}' (choose cpu, cuda or auto)", name);
}

Status check_backend_available(BackendKind kind) {
  // The CUDA backend does not exist yet: `auto` means the CPU, and asking for CUDA is an error
  // rather than a silent fallback.
  if (kind == BackendKind::kCuda)
    return unsupported("this build of kiln has no CUDA backend (use --backend cpu or auto)");
  return Status::Ok();
}

Expected<std::unique_ptr<Runner>> create_runner(BackendKind kind, GraphPtr graph) {
  KILN_RETURN_IF_ERROR(check_backend_available(kind));
  KILN_ASSIGN_OR_RETURN(auto exec, CpuExecutor::create(std::move(graph)));
  return std::unique_ptr<Runner>(new CpuRunner(std::move(exec)));
}

}  // namespace kiln::cli
