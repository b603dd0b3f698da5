#include <map>

#include "backends/cuda/cuda_layer.hpp"
#include "backends/cuda/layers/plugin_layer.hpp"

namespace kiln::cuda {

namespace {
std::map<std::string, CudaLayerFactory>& factories() {
  static std::map<std::string, CudaLayerFactory> f;
  return f;
}
}  // namespace

bool register_cuda_layer(const std::string& op_type, CudaLayerFactory factory) {
  factories()[op_type] = std::move(factory);
  return true;
}

const CudaLayerFactory* find_cuda_layer(const std::string& op_type) {
  auto it = factories().find(op_type);
  return it == factories().end() ? nullptr : &it->second;
}

const CudaLayerFactory* find_cuda_layer(const Node& n) {
  if (n.plugin) return &plugin_layer_factory();
  return find_cuda_layer(n.domain.empty() ? n.op_type : n.domain + "." + n.op_type);
}

std::vector<std::string> cuda_layer_ops() {
  std::vector<std::string> out;
  for (const auto& [op, f] : factories()) out.push_back(op);
  return out;
}

}  // namespace kiln::cuda
