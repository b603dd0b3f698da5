// Folding of shape arithmetic across nodes at import: the PyTorch export pattern
// Shape -> Gather -> Unsqueeze -> Concat -> Reshape gives a static Reshape output.
#include "tensorops_test_util.hpp"

namespace kiln::test {
namespace {

struct FlattenGraph {
  GraphPtr g = std::make_shared<Graph>();
  Value *x, *shape, *dim0, *dim0_1d, *target, *y;
};

FlattenGraph build(Shape x_shape) {
  FlattenGraph f;
  Graph& g = *f.g;
  f.x = g.add_value("x", {DType::kFloat32, std::move(x_shape)});
  g.inputs = {f.x};
  f.shape = g.add_value("shape");
  f.dim0 = g.add_value("dim0");
  f.dim0_1d = g.add_value("dim0_1d");
  f.target = g.add_value("target");
  f.y = g.add_value("y");
  g.add_node("Reshape", {f.x, f.target}, {f.y}, "reshape", "", 21);
  Node* c = g.add_node("Concat", {f.dim0_1d, g.add_constant("minus_one", i64v({-1}))}, {f.target}, "concat", "", 21);
  c->attrs.set("axis", int64_t{0});
  g.add_node("Unsqueeze", {f.dim0, g.add_constant("axes", i64v({0}))}, {f.dim0_1d}, "unsqueeze", "", 21);
  g.add_node("Gather", {f.shape, g.add_constant("zero", Tensor::scalar<int64_t>(0))}, {f.dim0}, "gather", "", 21);
  g.add_node("Shape", {f.x}, {f.shape}, "shape", "", 21);
  g.outputs = {f.y};
  return f;
}

TEST(ShapeArithmetic, StaticInputFoldsTheReshapeTarget) {
  FlattenGraph f = build(Shape::from_dims({2, 3, 4, 5}));
  ASSERT_TRUE(infer_shapes(*f.g).ok());
  ASSERT_TRUE(f.target->constant.has_value());
  EXPECT_TRUE(tensors_equal(*f.target->constant, i64v({2, -1})));
  EXPECT_EQ(f.y->type.to_string(), "float32[2,60]");
  // The folded graph still runs and gives the same result as the data reshaped.
  auto exec = CpuExecutor::create(f.g);
  ASSERT_TRUE(exec.ok()) << exec.status().message();
  Tensor x = random_tensor(DType::kFloat32, {2, 3, 4, 5}, 1);
  auto out = (*exec)->run({{"x", x}});
  ASSERT_TRUE(out.ok()) << out.status().message();
  EXPECT_TRUE(tensors_equal(out->at(0), x.clone().reshaped({2, 60})));
}

TEST(ShapeArithmetic, SymbolicBatchKeepsRankAndRunsWithAnyBatch) {
  FlattenGraph f = build(Shape({Dim::symbolic("batch"), 3, 4, 5}));
  ASSERT_TRUE(infer_shapes(*f.g).ok());
  EXPECT_FALSE(f.target->constant.has_value());
  EXPECT_EQ(f.shape->type.to_string(), "int64[4]");
  EXPECT_EQ(f.target->type.to_string(), "int64[2]");
  EXPECT_EQ(f.y->type.to_string(), "float32[?,?]");
  auto exec = CpuExecutor::create(f.g);
  ASSERT_TRUE(exec.ok()) << exec.status().message();
  for (int64_t b : {1, 3}) {
    Tensor x = random_tensor(DType::kFloat32, {b, 3, 4, 5}, 2);
    auto out = (*exec)->run({{"x", x}});
    ASSERT_TRUE(out.ok()) << out.status().message();
    EXPECT_TRUE(tensors_equal(out->at(0), x.clone().reshaped({b, 60})));
  }
}

}  // namespace
}  // namespace kiln::test
