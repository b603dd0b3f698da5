// Helpers for the control-flow tests: building graphs with subgraphs and running them.
// The ops with domain "kiln.test" they use are registered in control_flow_test_ops.cpp.
#pragma once

#include <gtest/gtest.h>

#include "op_test_util.hpp"

namespace kiln::cftest {

// A static tensor type.
inline TensorType tt(DType t, Dims d) { return {t, Shape::from_dims(d)}; }

// An empty subgraph nested in `parent` (so it may use parent values).
inline GraphPtr subgraph(Graph& parent, const std::string& name) {
  auto g = std::make_shared<Graph>();
  g->name = name;
  g->parent = &parent;
  return g;
}

// A one-output node: Identity, or a "kiln.test" op; named "<graph>_<output>".
inline Node* op(Graph& g, const std::string& type, std::vector<Value*> ins, Value* out) {
  const bool test_op = type != "Identity";
  return g.add_node(type, std::move(ins), {out}, g.name + "_" + out->name, test_op ? "kiln.test" : "", 1);
}

// Infers shapes, then runs the graph on the CPU backend.
inline Expected<std::vector<Tensor>> run(const GraphPtr& g, const std::map<std::string, Tensor>& feeds) {
  KILN_RETURN_IF_ERROR(infer_shapes(*g));
  KILN_ASSIGN_OR_RETURN(auto exec, CpuExecutor::create(g));
  return exec->run(feeds);
}

inline Tensor f32(Dims d, std::vector<float> v) { return Tensor::from_vector<float>(std::move(d), v); }

// The status is an error whose message contains `part`.
inline ::testing::AssertionResult has_error(const Status& st, const std::string& part) {
  if (st.ok()) return ::testing::AssertionFailure() << "expected an error containing '" << part << "'";
  if (st.message().find(part) == std::string::npos)
    return ::testing::AssertionFailure() << "error '" << st.message() << "' lacks '" << part << "'";
  return ::testing::AssertionSuccess();
}

}  // namespace kiln::cftest
