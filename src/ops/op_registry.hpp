// The op registry: one OpSchema (arity + shape/type inference) per op, and per-backend kernels.
//
// Each op family registers itself from its own file (no central table):
//
//   KILN_REGISTER_OP({.name = "Relu", .min_inputs = 1, .max_inputs = 1, .infer = infer_same_as_input0});
//   KILN_REGISTER_CPU_KERNEL("Relu", relu_kernel);
//
// Inference runs at import with whatever is known (symbolic dims, constant inputs), and again at
// execution with every input known, so one function gives kernels their concrete output shapes.
#pragma once

#include <climits>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "ir/graph.hpp"
#include "ir/sequence.hpp"
#include "util/error.hpp"

namespace kiln {

class InferContext {
 public:
  InferContext(const Node& node, std::vector<TensorType> inputs, std::vector<const Tensor*> values)
      : node_(node), inputs_(std::move(inputs)), values_(std::move(values)),
        outputs_(node.outputs.size()), output_values_(node.outputs.size()) {}

  const Node& node() const { return node_; }
  const Attributes& attrs() const { return node_.attrs; }
  int opset() const { return node_.opset; }
  size_t num_inputs() const { return inputs_.size(); }
  size_t num_outputs() const { return outputs_.size(); }
  // True when input i is present (optional inputs may be absent or named "").
  bool has_input(size_t i) const { return i < inputs_.size() && inputs_[i].dtype != DType::kUndefined; }
  const TensorType& input(size_t i) const { return inputs_[i]; }
  // The input's value when known (an initializer, a folded constant, or at execution time).
  const Tensor* value(size_t i) const { return i < values_.size() ? values_[i] : nullptr; }

  void set_output(size_t i, DType dtype, Shape shape) {
    if (i < outputs_.size()) outputs_[i] = TensorType{dtype, std::move(shape)};
  }
  // Any output type, sequences and optionals included (input(i).kind says what an input is).
  void set_output_type(size_t i, TensorType t) {
    if (i < outputs_.size()) outputs_[i] = std::move(t);
  }
  const std::vector<TensorType>& outputs() const { return outputs_; }
  // A known output value (small shape arithmetic, e.g. Shape of a static-shaped value): import-time
  // inference keeps it as the output's constant so that later ops see it through value().
  void set_output_value(size_t i, Tensor t) {
    if (i < output_values_.size()) output_values_[i] = std::move(t);
  }
  const Tensor* output_value(size_t i) const {
    return i < output_values_.size() && output_values_[i].defined() ? &output_values_[i] : nullptr;
  }

  // An invalid-model error that names the node: "node 'x' (Conv, opset 13): <message>".
  template <typename... Args>
  Status error(fmt::format_string<Args...> f, Args&&... args) const {
    return Status(StatusCode::kInvalidModel,
                  node_.describe() + ": " + fmt::format(f, std::forward<Args>(args)...));
  }
  template <typename... Args>
  Status unsupported(fmt::format_string<Args...> f, Args&&... args) const {
    return Status(StatusCode::kUnsupported,
                  node_.describe() + ": " + fmt::format(f, std::forward<Args>(args)...));
  }

 private:
  const Node& node_;
  std::vector<TensorType> inputs_;
  std::vector<const Tensor*> values_;
  std::vector<TensorType> outputs_;
  std::vector<Tensor> output_values_;
};

// Runs a subgraph (If branch, Loop/Scan body) with the given inputs; outer-scope values resolve
// to the enclosing execution's tensors.
using SubgraphRunner =
    std::function<Expected<std::vector<Tensor>>(const Graph&, const std::vector<Tensor>&)>;
// The same for subgraphs whose inputs or outputs may be sequences or optionals.
using ValueSubgraphRunner =
    std::function<Expected<std::vector<RuntimeValue>>(const Graph&, const std::vector<RuntimeValue>&)>;

class KernelContext {
 public:
  KernelContext(const Node& node, std::vector<const Tensor*> inputs, std::vector<TensorType> types,
                const SubgraphRunner* subgraphs)
      : node_(node), inputs_(std::move(inputs)), output_types_(std::move(types)),
        outputs_(node.outputs.size()), subgraphs_(subgraphs) {}

  const Node& node() const { return node_; }
  const Attributes& attrs() const { return node_.attrs; }
  int opset() const { return node_.opset; }
  size_t num_inputs() const { return inputs_.size(); }
  size_t num_outputs() const { return outputs_.size(); }
  bool has_input(size_t i) const { return i < inputs_.size() && inputs_[i] != nullptr; }
  const Tensor& input(size_t i) const { return *inputs_[i]; }
  // The output type that inference computed (the dtype is always known; the shape is static unless
  // the op's output shape depends on input data, e.g. NonZero).
  const TensorType& output_type(size_t i) const { return output_types_[i]; }

  // The output tensor, allocated from the inferred type; for data-dependent shapes, call
  // allocate_output with the shape first.
  Tensor& output(size_t i) {
    if (!outputs_[i].defined()) {
      auto dims = output_types_[i].shape.to_dims();
      outputs_[i] = Tensor(output_types_[i].dtype, dims ? *dims : Dims{0});
    }
    return outputs_[i];
  }
  Tensor& allocate_output(size_t i, DType dtype, Dims dims) {
    outputs_[i] = Tensor(dtype, std::move(dims));
    return outputs_[i];
  }
  void set_output(size_t i, Tensor t) { outputs_[i] = std::move(t); }
  std::vector<Tensor>& outputs() { return outputs_; }

  Expected<std::vector<Tensor>> run_subgraph(const Graph& g, const std::vector<Tensor>& inputs) const {
    if (!subgraphs_) return Status(StatusCode::kInternal, node_.describe() + ": no subgraph runner");
    return (*subgraphs_)(g, inputs);
  }
  Expected<std::vector<RuntimeValue>> run_subgraph_values(const Graph& g,
                                                          const std::vector<RuntimeValue>& inputs) const {
    if (!value_subgraphs_) return Status(StatusCode::kInternal, node_.describe() + ": no subgraph runner");
    return (*value_subgraphs_)(g, inputs);
  }

  // Sequences and optionals. The executor gives every input as a RuntimeValue (input(i) and
  // has_input(i) see tensors only: a sequence or empty-optional input reads as absent there).
  void set_values(std::vector<const RuntimeValue*> values, const ValueSubgraphRunner* runner) {
    values_ = std::move(values);
    value_subgraphs_ = runner;
    value_outputs_.resize(outputs_.size());
  }
  // Input i as the executor holds it; null when absent.
  const RuntimeValue* input_value(size_t i) const { return i < values_.size() ? values_[i] : nullptr; }
  // Input i when it is a sequence, else null.
  const TensorSequence* input_sequence(size_t i) const {
    const RuntimeValue* v = input_value(i);
    return v ? as_sequence(*v) : nullptr;
  }
  // Output i as a sequence or empty optional (a tensor may be set too: it goes to output(i)).
  void set_output_value(size_t i, RuntimeValue v) {
    if (const Tensor* t = as_tensor(v)) {
      outputs_[i] = *t;
      return;
    }
    if (value_outputs_.size() < outputs_.size()) value_outputs_.resize(outputs_.size());
    value_outputs_[i] = std::move(v);
  }
  void set_output_sequence(size_t i, TensorSequence s) { set_output_value(i, std::move(s)); }
  // The non-tensor output i, when the kernel set one.
  const RuntimeValue* value_output(size_t i) const {
    return i < value_outputs_.size() && value_outputs_[i] ? &*value_outputs_[i] : nullptr;
  }

  template <typename... Args>
  Status error(fmt::format_string<Args...> f, Args&&... args) const {
    return Status(StatusCode::kInvalidArgument,
                  node_.describe() + ": " + fmt::format(f, std::forward<Args>(args)...));
  }
  // "node 'x' (Relu, opset 14): dtype int8 of input 0 is not supported by the CPU backend"
  Status unsupported_dtype(DType t, size_t input_index = 0) const {
    return Status(StatusCode::kUnsupported,
                  fmt::format("{}: dtype {} of input {} is not supported by the CPU backend",
                              node_.describe(), dtype_name(t), input_index));
  }

 private:
  const Node& node_;
  std::vector<const Tensor*> inputs_;
  std::vector<TensorType> output_types_;
  std::vector<Tensor> outputs_;
  const SubgraphRunner* subgraphs_;
  std::vector<const RuntimeValue*> values_;
  std::vector<std::optional<RuntimeValue>> value_outputs_;
  const ValueSubgraphRunner* value_subgraphs_ = nullptr;
};

using InferFn = Status (*)(InferContext&);
using CpuKernelFn = Status (*)(KernelContext&);

struct OpSchema {
  std::string name;
  std::string domain;  // "" = ai.onnx
  int min_inputs = 0;
  int max_inputs = INT_MAX;
  int min_outputs = 1;
  int max_outputs = 1;
  InferFn infer = nullptr;
  // Whether inputs/outputs may be sequences or optionals; other ops refuse such inputs at inference.
  bool non_tensor_values = false;
};

class OpRegistry {
 public:
  static OpRegistry& instance();

  bool add_schema(OpSchema schema);
  bool add_cpu_kernel(const std::string& domain, const std::string& name, CpuKernelFn fn);

  const OpSchema* schema(const std::string& domain, const std::string& name) const;
  CpuKernelFn cpu_kernel(const std::string& domain, const std::string& name) const;
  std::vector<std::string> op_names() const;  // "Conv", "com.microsoft.Gelu", ...

 private:
  static std::string key(const std::string& domain, const std::string& name);
  std::map<std::string, OpSchema> schemas_;
  std::map<std::string, CpuKernelFn> cpu_kernels_;
};

// Checks the node's input/output counts against its schema, then runs its inference.
Status infer_node(const OpSchema& schema, InferContext& ctx);

}  // namespace kiln

#define KILN_REGISTER_OP(...)                                                            \
  namespace {                                                                            \
  [[maybe_unused]] const bool KILN_CONCAT(kiln_op_registered_, __COUNTER__) =            \
      ::kiln::OpRegistry::instance().add_schema(::kiln::OpSchema __VA_ARGS__);           \
  }

#define KILN_REGISTER_CPU_KERNEL(name, fn)                                               \
  namespace {                                                                            \
  [[maybe_unused]] const bool KILN_CONCAT(kiln_cpu_registered_, __COUNTER__) =           \
      ::kiln::OpRegistry::instance().add_cpu_kernel("", name, fn);                       \
  }

#define KILN_REGISTER_CPU_KERNEL_DOMAIN(domain, name, fn)                                \
  namespace {                                                                            \
  [[maybe_unused]] const bool KILN_CONCAT(kiln_cpu_registered_, __COUNTER__) =           \
      ::kiln::OpRegistry::instance().add_cpu_kernel(domain, name, fn);                   \
  }
