// Helpers of the mixed-precision tests (mixed_precision_test.cpp, accuracy_budget_test.cpp).
#pragma once

#include <gtest/gtest.h>

#include "backends/cpu/cpu_executor.hpp"
#include "builder/builder.hpp"
#include "op_test_util.hpp"

namespace kiln::mptest {

using test::random_tensor;
using test::rel_l2;

inline const Node* find_node(const Graph& g, const std::string& name) {
  for (const auto& n : g.nodes())
    if (n->name == name) return n.get();
  return nullptr;
}

inline bool report_has(const Plan& p, const std::string& text) {
  for (const std::string& line : p.precision_report)
    if (line.find(text) != std::string::npos) return true;
  return false;
}

inline Tensor run_one(const GraphPtr& g, const std::map<std::string, Tensor>& feeds) {
  auto exec = CpuExecutor::create(g);
  EXPECT_TRUE(exec.ok()) << exec.status().message();
  auto out = (*exec)->run(feeds);
  EXPECT_TRUE(out.ok()) << out.status().message();
  return out.ok() ? out->at(0) : Tensor();
}

// x[4,16] -> MatMul(w1) "mm1" -> Relu "relu" -> MatMul(w2) "mm2" -> y
inline Model mlp() {
  Model m;
  m.graph = std::make_shared<Graph>();
  Graph& g = *m.graph;
  Value* x = g.add_value("x", {DType::kFloat32, Shape::from_dims({4, 16})});
  Value* w1 = g.add_constant("w1", random_tensor(DType::kFloat32, {16, 16}, 3, -0.5, 0.5));
  Value* w2 = g.add_constant("w2", random_tensor(DType::kFloat32, {16, 8}, 4, -0.5, 0.5));
  Value* a = g.add_value("a");
  Value* r = g.add_value("r");
  Value* y = g.add_value("y");
  g.inputs = {x};
  g.add_node("MatMul", {x, w1}, {a}, "mm1");
  g.add_node("Relu", {a}, {r}, "relu");
  g.add_node("MatMul", {r, w2}, {y}, "mm2");
  g.outputs = {y};
  return m;
}

inline BuildOptions cpu_fp16() {
  BuildOptions o;
  o.backend = "cpu";
  o.fp16 = true;
  return o;
}
}  // namespace kiln::mptest
