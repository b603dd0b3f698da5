// Helpers for the pass tests: small graphs built node by node, and a before/after check that runs
// the graph on the CPU backend before and after the passes on the same random inputs.
#pragma once

#include <gtest/gtest.h>

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "op_test_util.hpp"
#include "passes/pass.hpp"

namespace kiln::passtest {

struct G {
  GraphPtr g = std::make_shared<Graph>();
  std::map<std::string, Tensor> feeds;
  uint32_t seed = 1;

  // A float graph input with random feed values.
  Value* input(const std::string& name, Dims dims, DType t = DType::kFloat32) {
    Value* v = g->add_value(name, {t, Shape::from_dims(dims)});
    g->inputs.push_back(v);
    feeds[name] = test::random_tensor(t, dims, seed++);
    return v;
  }
  Value* constant(const std::string& name, Tensor t) { return g->add_constant(name, std::move(t)); }
  Value* random_const(const std::string& name, Dims dims, double lo = -1, double hi = 1) {
    return constant(name, test::random_tensor(DType::kFloat32, std::move(dims), seed++, lo, hi));
  }
  Value* scalar(const std::string& name, float v) { return constant(name, Tensor::scalar<float>(v)); }
  Value* ints(const std::string& name, std::vector<int64_t> v) {
    return constant(name, Tensor::from_vector<int64_t>({static_cast<int64_t>(v.size())}, v));
  }
  // One node with one output named `name`; the node is named `name` too.
  Value* op(const std::string& type, std::vector<Value*> ins, const std::string& name, Attributes attrs = {}) {
    Value* out = g->add_value(name);
    Node* n = g->add_node(type, std::move(ins), {out}, name, "", 21);
    n->attrs = std::move(attrs);
    return out;
  }
};

inline Attributes attrs(std::initializer_list<std::pair<const std::string, AttrValue>> kv) {
  Attributes a;
  for (const auto& [k, v] : kv) a.set(k, v);
  return a;
}

inline Expected<std::vector<Tensor>> run_graph(const GraphPtr& g, const std::map<std::string, Tensor>& feeds) {
  KILN_RETURN_IF_ERROR(infer_shapes(*g));
  KILN_ASSIGN_OR_RETURN(auto exec, CpuExecutor::create(g));
  return exec->run(feeds);
}

// The op types of the graph's nodes, in order.
inline std::vector<std::string> ops(const Graph& g) {
  std::vector<std::string> out;
  for (const auto& n : g.nodes()) out.push_back(n->op_type);
  return out;
}

inline int count(const Graph& g, const std::string& op) {
  int c = 0;
  for (const auto& n : g.nodes()) c += n->op_type == op;
  return c;
}

// Builds the graph twice with `make`, runs the first as is and the second after `passes` (in a
// PassManager, so shape inference runs between them), compares every output by relative L2
// (<= tol) and returns the optimized graph for structure checks.
inline GraphPtr check_before_after(const std::function<G()>& make,
                                   const std::function<void(PassManager&)>& passes, double tol = 1e-5) {
  G before = make();
  auto want = run_graph(before.g, before.feeds);
  EXPECT_TRUE(want.ok()) << want.status().message();
  G after = make();
  EXPECT_TRUE(infer_shapes(*after.g).ok());
  PassManager pm;
  passes(pm);
  Status st = pm.run(*after.g);
  EXPECT_TRUE(st.ok()) << st.message();
  auto got = run_graph(after.g, after.feeds);
  EXPECT_TRUE(got.ok()) << got.status().message();
  if (want.ok() && got.ok()) {
    EXPECT_EQ(got->size(), want->size());
    for (size_t i = 0; i < got->size() && i < want->size(); ++i) {
      EXPECT_EQ((*got)[i].dims(), (*want)[i].dims()) << "output " << i;
      EXPECT_EQ((*got)[i].dtype(), (*want)[i].dtype()) << "output " << i;
      EXPECT_LE(test::rel_l2((*got)[i], (*want)[i]), tol) << "output " << i;
    }
  }
  return after.g;
}

// Adds `make_pass()` and the dead-code pass (which clears what a rewrite leaves unused).
inline std::function<void(PassManager&)> with_dce(std::function<std::unique_ptr<Pass>()> make_pass) {
  return [make_pass](PassManager& pm) {
    pm.add(make_pass());
    pm.add(make_dead_code_pass());
  };
}

}  // namespace kiln::passtest
