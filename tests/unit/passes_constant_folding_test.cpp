// constant-folding: shape arithmetic on static shapes folds to constants; random ops only with
// fold_random; outputs unchanged.
#include "passes_test_util.hpp"

namespace kiln {
namespace {

using namespace passtest;

// y = Reshape(x, Concat(Unsqueeze(Gather(Shape(x), 1)), [-1])): a shape subgraph exporters write.
G shape_chain() {
  G b;
  Value* x = b.input("x", {2, 3, 4});
  Value* s = b.op("Shape", {x}, "shape");
  Value* d = b.op("Gather", {s, b.constant("one", Tensor::scalar<int64_t>(1))}, "gather");
  Value* u = b.op("Unsqueeze", {d, b.ints("axes", {0})}, "unsqueeze");
  Value* c = b.op("Concat", {u, b.ints("rest", {-1})}, "concat", attrs({{"axis", int64_t{0}}}));
  b.g->outputs = {b.op("Reshape", {x, c}, "y")};
  return b;
}

TEST(PassesConstantFolding, FoldsShapeSubgraphs) {
  GraphPtr g = check_before_after(shape_chain, with_dce([] { return make_constant_folding_pass(); }), 0.0);
  ASSERT_EQ(ops(*g), std::vector<std::string>{"Reshape"});
  const Value* shape = g->nodes()[0]->inputs[1];
  ASSERT_TRUE(shape->is_constant());
  EXPECT_EQ(*shape->constant->to_int64_vector(), (std::vector<int64_t>{3, -1}));
  EXPECT_EQ(g->outputs[0]->type.to_string(), "float32[3,8]");
}

TEST(PassesConstantFolding, FoldsRandomOpsOnlyWhenAsked) {
  for (bool fold : {false, true}) {
    G b;
    Value* x = b.input("x", {4});
    Value* r = b.op("RandomNormal", {}, "r", attrs({{"shape", std::vector<int64_t>{4}}, {"seed", 3.f}}));
    b.g->outputs = {b.op("Add", {x, r}, "y")};
    ASSERT_TRUE(infer_shapes(*b.g).ok());
    auto changed = make_constant_folding_pass(fold)->run(*b.g);
    ASSERT_TRUE(changed.ok());
    EXPECT_EQ(*changed, fold);
    EXPECT_EQ(count(*b.g, "RandomNormal"), fold ? 0 : 1);
  }
}

}  // namespace
}  // namespace kiln
