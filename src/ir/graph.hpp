// The graph IR: a Graph of Nodes over typed Values. Knows nothing of ONNX protobuf or CUDA.
//
// Values are owned by the graph that defines them; a node in a subgraph (If/Loop/Scan body) may
// use values of enclosing graphs directly. Constants (initializers) are values with a host tensor.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "ir/attribute.hpp"
#include "ir/shape.hpp"
#include "ir/tensor.hpp"
#include "kiln/status.hpp"

namespace kiln {

class Graph;
struct Node;
struct PluginBinding;  // plugin/plugin_node.hpp

// What a value holds: a tensor (almost always), an ONNX sequence of tensors, or an optional of
// either. For the others, TensorType's dtype and shape describe the (sequence's) element tensors.
enum class ValueKind : uint8_t { kTensor, kSequence, kOptionalTensor, kOptionalSequence };

struct TensorType {
  DType dtype = DType::kUndefined;
  Shape shape;  // unknown rank by default
  ValueKind kind = ValueKind::kTensor;
  bool is_tensor() const { return kind == ValueKind::kTensor; }
  std::string to_string() const;  // "float32[1,3,?,?]", "seq(float32[?,3])", "optional(float32[2])"
};

struct Value {
  std::string name;
  TensorType type;
  std::optional<Tensor> constant;  // set for initializers and folded constants
  Node* producer = nullptr;        // null for graph inputs and constants
  Graph* owner = nullptr;

  bool is_constant() const { return constant.has_value(); }
};

struct Node {
  std::string name;
  std::string op_type;
  std::string domain;  // "" is the default ONNX domain
  int opset = 0;       // the opset version of `domain` the model imports
  std::vector<Value*> inputs;   // nullptr for an absent optional input
  std::vector<Value*> outputs;  // nullptr for an absent optional output
  Attributes attrs;
  Graph* owner = nullptr;
  // Set when the node runs as a custom-op plugin (plugin/plugin_node.hpp).
  std::shared_ptr<const PluginBinding> plugin;

  size_t num_inputs() const { return inputs.size(); }
  bool has_input(size_t i) const { return i < inputs.size() && inputs[i] != nullptr; }
  bool has_output(size_t i) const { return i < outputs.size() && outputs[i] != nullptr; }
  // "node 'conv1' (Conv, opset 13)": how errors name a node.
  std::string describe() const;
  // Subgraphs held in attributes (If branches, Loop/Scan bodies).
  std::vector<const Graph*> subgraphs() const;
};

class Graph {
 public:
  std::string name;
  Graph* parent = nullptr;  // enclosing graph of a subgraph

  Graph() = default;
  Graph(const Graph&) = delete;
  Graph& operator=(const Graph&) = delete;

  // Creates a value owned by this graph. Names must be unique within the graph ("" allowed).
  Value* add_value(const std::string& name, TensorType type = {});
  Value* add_constant(const std::string& name, Tensor t);
  Node* add_node(const std::string& op_type, std::vector<Value*> inputs, std::vector<Value*> outputs,
                 const std::string& name = "", const std::string& domain = "", int opset = 0);
  // Removes a node (its outputs stay, with no producer).
  void remove_node(Node* n);

  // Drops values that no node, graph input/output or subgraph refers to; returns how many.
  size_t remove_unused_values();
  // A name not yet used in this graph, from `base` ("base", "base_1", ...).
  std::string unique_name(const std::string& base) const;

  // Looks a value up by name here, then in enclosing graphs.
  Value* find_value(const std::string& name) const;

  std::vector<Value*> inputs;   // runtime inputs (not initializers)
  std::vector<Value*> outputs;
  const std::vector<std::unique_ptr<Node>>& nodes() const { return nodes_; }
  const std::vector<std::unique_ptr<Value>>& values() const { return values_; }

  // Orders nodes so each comes after the producers of its inputs (outer-scope values used by
  // subgraphs count too). Fails naming the nodes on a cycle, or a node using an unknown value.
  Status topological_sort();
  // The nodes that read `v`, in this graph and its subgraphs.
  std::vector<Node*> consumers(const Value* v) const;
  // Every value used by nodes of this graph (or its subgraphs) but defined in an enclosing graph.
  std::vector<Value*> outer_scope_values() const;

 private:
  std::vector<std::unique_ptr<Value>> values_;
  std::vector<std::unique_ptr<Node>> nodes_;
  std::map<std::string, Value*> by_name_;
};

// An imported model: the main graph plus metadata.
struct Model {
  GraphPtr graph;
  std::map<std::string, int64_t> opset_imports;  // domain -> version
  int64_t ir_version = 0;
  std::string producer_name;
  std::string producer_version;
  std::string path;  // the file it came from, for error messages
};

}  // namespace kiln
