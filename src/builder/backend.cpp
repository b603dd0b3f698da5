#include "builder/backend.hpp"

#include <map>

namespace kiln {

namespace {
std::map<std::string, std::unique_ptr<Backend>>& registry() {
  static std::map<std::string, std::unique_ptr<Backend>> backends;
  return backends;
}
}  // namespace

std::string layer_precision(const Node& n, bool tf32) {
  if (n.domain == "kiln" && n.op_type == "Fp8MatMul") return "fp8";  // float8 GEMM, float16/32 output
  DType t = DType::kFloat32;
  for (const Value* v : n.outputs)
    if (v) {
      t = v->type.dtype;
      break;
    }
  if (t == DType::kFloat16) return "fp16";
  if (t == DType::kBFloat16) return "bf16";
  if (t == DType::kFloat32) return tf32 ? "tf32" : "fp32";
  return std::string(dtype_name(t));
}

bool register_backend(std::unique_ptr<Backend> backend) {
  std::string name = backend->name();
  registry()[name] = std::move(backend);
  return true;
}

const Backend* find_backend(const std::string& name) {
  auto it = registry().find(name);
  return it == registry().end() ? nullptr : it->second.get();
}

std::vector<std::string> backend_names() {
  std::vector<std::string> out;
  for (const auto& [name, b] : registry()) out.push_back(name);
  return out;
}

}  // namespace kiln
