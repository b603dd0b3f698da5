#include "ops/op_registry.hpp"

namespace kiln {

OpRegistry& OpRegistry::instance() {
  static OpRegistry registry;
  return registry;
}

std::string OpRegistry::key(const std::string& domain, const std::string& name) {
  // "ai.onnx" and "" are the same domain.
  if (domain.empty() || domain == "ai.onnx") return name;
  return domain + "." + name;
}

bool OpRegistry::add_schema(OpSchema schema) {
  std::string k = key(schema.domain, schema.name);
  schemas_[k] = std::move(schema);
  return true;
}

bool OpRegistry::add_cpu_kernel(const std::string& domain, const std::string& name, CpuKernelFn fn) {
  cpu_kernels_[key(domain, name)] = fn;
  return true;
}

const OpSchema* OpRegistry::schema(const std::string& domain, const std::string& name) const {
  auto it = schemas_.find(key(domain, name));
  return it == schemas_.end() ? nullptr : &it->second;
}

CpuKernelFn OpRegistry::cpu_kernel(const std::string& domain, const std::string& name) const {
  auto it = cpu_kernels_.find(key(domain, name));
  return it == cpu_kernels_.end() ? nullptr : it->second;
}

std::vector<std::string> OpRegistry::op_names() const {
  std::vector<std::string> out;
  for (const auto& [k, v] : schemas_) out.push_back(k);
  return out;
}

Status infer_node(const OpSchema& schema, InferContext& ctx) {
  const Node& n = ctx.node();
  // Trailing absent optional inputs do not count.
  int present = static_cast<int>(n.inputs.size());
  while (present > 0 && !n.inputs[static_cast<size_t>(present - 1)]) --present;
  if (present < schema.min_inputs || present > schema.max_inputs)
    return ctx.error("has {} inputs, expected {}{}", present, schema.min_inputs,
                     schema.max_inputs == schema.min_inputs
                         ? std::string()
                         : (schema.max_inputs == INT_MAX ? std::string(" or more")
                                                         : fmt::format(" to {}", schema.max_inputs)));
  for (int i = 0; i < schema.min_inputs; ++i)
    if (!ctx.has_input(static_cast<size_t>(i)))
      return ctx.error("required input {} is missing", i);
  if (!schema.non_tensor_values)
    for (size_t i = 0; i < ctx.num_inputs(); ++i)
      if (!ctx.input(i).is_tensor())
        return ctx.unsupported("input {} is a {}; this op takes tensors only", i, ctx.input(i).to_string());
  int outs = static_cast<int>(n.outputs.size());
  if (outs < schema.min_outputs || outs > schema.max_outputs)
    return ctx.error("has {} outputs, expected {} to {}", outs, schema.min_outputs, schema.max_outputs);
  if (!schema.infer) return ctx.error("op has no shape inference");
  return schema.infer(ctx);
}

}  // namespace kiln
