// The CPU reference backend's executor: runs a graph node by node with the registered CPU kernels.
//
//   KILN_ASSIGN_OR_RETURN(auto exec, CpuExecutor::create(model.graph));
//   KILN_ASSIGN_OR_RETURN(auto outputs, exec->run({{"input", tensor}}));
//
// run() is const and keeps no state between calls: one executor may serve several threads.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "ir/graph.hpp"
#include "ir/sequence.hpp"

namespace kiln {

class CpuExecutor {
 public:
  // Fails listing every op (with node names and opsets) that has no CPU kernel.
  static Expected<std::unique_ptr<CpuExecutor>> create(GraphPtr graph);

  // Runs the graph. Inputs are checked against the graph's declared types: a missing, unknown or
  // mismatched binding is an error naming it, with the expected and the given dtype/shape.
  // With `node_ms`, also records each top-level node's wall time in milliseconds (for profiling).
  Expected<std::vector<Tensor>> run(const std::map<std::string, Tensor>& inputs,
                                    std::vector<double>* node_ms = nullptr) const;
  // The same for graphs whose inputs or outputs may be sequences or optionals (an optional input
  // left out is bound as empty). run() fails when an output is not a tensor.
  Expected<std::vector<RuntimeValue>> run_values(const std::map<std::string, RuntimeValue>& inputs,
                                                 std::vector<double>* node_ms = nullptr) const;

  const Graph& graph() const { return *graph_; }

 private:
  explicit CpuExecutor(GraphPtr g) : graph_(std::move(g)) {}
  GraphPtr graph_;
};

// Runs one node whose inputs are all constants (constant folding). Subgraph ops are refused.
Expected<std::vector<Tensor>> run_node_on_cpu(const Node& node);

// Validates runtime inputs against a graph's inputs (shared by every backend).
Status check_inputs(const Graph& graph, const std::map<std::string, Tensor>& inputs);
Status check_input_values(const Graph& graph, const std::map<std::string, RuntimeValue>& inputs);

}  // namespace kiln
