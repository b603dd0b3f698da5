// Helpers for opset-normalization tests: one node "n" at a given opset, imported and normalized.
#pragma once

#include "onnx_test_util.hpp"

namespace kiln::test {

struct In {
  std::string name;
  std::vector<D> dims;
  int32_t elem_type = onnx::TensorProto::FLOAT;
  bool unknown_rank = false;
};

struct SingleNode {
  onnx::ModelProto model;
  onnx::NodeProto* node;
  onnx::GraphProto* graph() { return model.mutable_graph(); }
};

// Graph inputs `inputs`, node "n" of `op` reading them (in order; "" for absent ones) and
// writing `outputs`, which are the graph outputs.
inline SingleNode single_node(int64_t opset, const std::string& op, const std::vector<In>& inputs,
                              std::vector<std::string> outputs = {"y"}) {
  SingleNode s{make_model(opset), nullptr};
  auto* g = s.model.mutable_graph();
  std::vector<std::string> names;
  for (const In& in : inputs) {
    names.push_back(in.name);
    if (in.name.empty()) continue;
    auto* vi = g->add_input();
    vi->set_name(in.name);
    set_type(vi, in.elem_type, in.unknown_rank ? nullptr : &in.dims);
  }
  s.node = add_node(g, op, names, outputs, "n");
  for (const auto& o : outputs)
    if (!o.empty()) add_output(g, o);
  return s;
}

// Makes graph input `name` an initializer instead.
inline void make_initializer(SingleNode& s, const onnx::TensorProto& t) {
  auto* g = s.graph();
  for (int i = 0; i < g->input_size(); ++i)
    if (g->input(i).name() == t.name()) g->mutable_input()->DeleteSubrange(i, 1);
  *g->add_initializer() = t;
}

inline const Node& node_n(const Model& m) {
  const Node* n = find_node(*m.graph, "n");
  EXPECT_NE(n, nullptr) << "node 'n' not found";
  static Node none;
  return n ? *n : none;
}

// The constant input i of `n` as int64 values (empty when absent or not constant).
inline std::vector<int64_t> const_ints(const Node& n, size_t i) {
  if (!n.has_input(i) || !n.inputs[i]->constant) return {};
  auto v = n.inputs[i]->constant->to_int64_vector();
  return v ? *v : std::vector<int64_t>{};
}
inline std::vector<double> const_values(const Node& n, size_t i) {
  if (!n.has_input(i) || !n.inputs[i]->constant) return {};
  return n.inputs[i]->constant->to_double_vector();
}

}  // namespace kiln::test
