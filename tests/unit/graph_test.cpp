#include <gtest/gtest.h>

#include "backends/cpu/cpu_executor.hpp"
#include "ir/graph.hpp"
#include "ops/shape_inference.hpp"

namespace kiln {
namespace {

TEST(Graph, TopologicalSortOrdersProducersFirst) {
  auto g = std::make_shared<Graph>();
  Value* x = g->add_value("x", {DType::kFloat32, Shape::from_dims({2, 3})});
  Value* a = g->add_value("a");
  Value* b = g->add_value("b");
  g->inputs = {x};
  g->add_node("Identity", {a}, {b}, "second");
  g->add_node("Identity", {x}, {a}, "first");
  g->outputs = {b};
  ASSERT_TRUE(g->topological_sort().ok());
  EXPECT_EQ(g->nodes()[0]->name, "first");
  EXPECT_EQ(g->nodes()[1]->name, "second");
}

TEST(Graph, CycleIsAnErrorNamingTheNodes) {
  Graph g;
  Value* a = g.add_value("a");
  Value* b = g.add_value("b");
  g.add_node("Identity", {a}, {b}, "n1");
  g.add_node("Identity", {b}, {a}, "n2");
  Status st = g.topological_sort();
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.code(), StatusCode::kInvalidModel);
  EXPECT_NE(st.message().find("cycle"), std::string::npos);
  EXPECT_NE(st.message().find("'n1'"), std::string::npos);
}

TEST(CpuExecutor, RunsIdentityAndChecksInputs) {
  auto g = std::make_shared<Graph>();
  Value* x = g->add_value("x", {DType::kFloat32, Shape({Dim::symbolic("n"), Dim(3)})});
  Value* y = g->add_value("y");
  g->inputs = {x};
  g->add_node("Identity", {x}, {y}, "id");
  g->outputs = {y};
  ASSERT_TRUE(infer_shapes(*g).ok());
  EXPECT_EQ(y->type.to_string(), "float32[n,3]");

  auto exec = CpuExecutor::create(g);
  ASSERT_TRUE(exec.ok()) << exec.status().message();
  Tensor in = Tensor::from_vector<float>({2, 3}, {1.5f, -2, 3, 4, 5, 6});
  auto out = (*exec)->run({{"x", in}});
  ASSERT_TRUE(out.ok()) << out.status().message();
  EXPECT_EQ(out->at(0).dims(), (Dims{2, 3}));
  EXPECT_FLOAT_EQ(out->at(0).data<float>()[0], 1.5f);

  auto bad = (*exec)->run({{"x", Tensor::from_vector<float>({2, 4}, std::vector<float>(8, 1.f))}});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("input 'x'"), std::string::npos);
  EXPECT_NE(bad.status().message().find("[n,3]"), std::string::npos);

  auto wrong_type = (*exec)->run({{"x", Tensor::from_vector<int64_t>({2, 3}, {1, 2, 3, 4, 5, 6})}});
  ASSERT_FALSE(wrong_type.ok());
  EXPECT_NE(wrong_type.status().message().find("int64"), std::string::npos);
}

TEST(CpuExecutor, ListsEveryUnsupportedOp) {
  auto g = std::make_shared<Graph>();
  Value* x = g->add_value("x", {DType::kFloat32, Shape::from_dims({1})});
  Value* a = g->add_value("a");
  Value* b = g->add_value("b");
  g->inputs = {x};
  g->add_node("FancyOp", {x}, {a}, "f1", "", 13);
  g->add_node("OtherOp", {a}, {b}, "o1", "com.example", 1);
  g->outputs = {b};
  auto exec = CpuExecutor::create(g);
  ASSERT_FALSE(exec.ok());
  const std::string& m = exec.status().message();
  EXPECT_EQ(exec.status().code(), StatusCode::kUnsupported);
  EXPECT_NE(m.find("FancyOp (opset 13; node 'f1')"), std::string::npos) << m;
  EXPECT_NE(m.find("com.example.OtherOp"), std::string::npos) << m;
}

}  // namespace
}  // namespace kiln
