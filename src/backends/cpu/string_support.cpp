#include "backends/cpu/string_support.hpp"

#include <set>

namespace kiln::cpu {
namespace {
std::set<std::string>& string_kernels() {
  static std::set<std::string> s;
  return s;
}
std::string key(const std::string& domain, const std::string& name) {
  return domain.empty() || domain == "ai.onnx" ? name : domain + "." + name;
}
}  // namespace

bool register_string_kernel(const std::string& domain, const std::string& name) {
  return string_kernels().insert(key(domain, name)).second;
}

bool kernel_handles_strings(const std::string& domain, const std::string& name) {
  return string_kernels().count(key(domain, name)) != 0;
}

}  // namespace kiln::cpu
