// batchnorm-folding: BatchNormalization folded into Conv / ConvTranspose / Gemm / MatMul weights,
// or lowered to Mul + Add; outputs unchanged.
#include "passes_test_util.hpp"

namespace kiln {
namespace {

using namespace passtest;

// BatchNormalization(v) over `c` channels with random constant statistics (positive variance).
Value* bn(G& b, Value* v, int64_t c, const std::string& name) {
  return b.op("BatchNormalization",
              {v, b.random_const(name + "_scale", {c}), b.random_const(name + "_bias", {c}),
               b.random_const(name + "_mean", {c}), b.random_const(name + "_var", {c}, 0.5, 2.0)},
              name, attrs({{"epsilon", 1e-3f}}));
}

TEST(PassesBatchNorm, FoldsIntoConvWithAndWithoutBias) {
  for (bool bias : {true, false}) {
    SCOPED_TRACE(bias);
    auto make = [bias] {
      G b;
      Value* x = b.input("x", {2, 4, 6, 6});
      std::vector<Value*> ins = {x, b.random_const("w", {6, 2, 3, 3})};
      if (bias) ins.push_back(b.random_const("b", {6}));
      Value* c = b.op("Conv", ins, "conv", attrs({{"group", int64_t{2}}, {"pads", std::vector<int64_t>{1, 1, 1, 1}}}));
      b.g->outputs = {bn(b, c, 6, "bn")};
      return b;
    };
    GraphPtr g = check_before_after(make, with_dce(make_batchnorm_folding_pass));
    EXPECT_EQ(ops(*g), std::vector<std::string>{"Conv"});
    EXPECT_EQ(g->outputs[0]->name, "bn");
    EXPECT_EQ(g->nodes()[0]->attrs.s(kFusedAttr), "conv:Conv,bn:BatchNormalization");
  }
}

TEST(PassesBatchNorm, FoldsIntoGroupedConvTranspose) {
  auto make = [] {
    G b;
    Value* x = b.input("x", {1, 4, 3, 3});
    Value* c = b.op("ConvTranspose", {x, b.random_const("w", {4, 3, 2, 2}), b.random_const("b", {6})}, "deconv",
                    attrs({{"group", int64_t{2}}, {"strides", std::vector<int64_t>{2, 2}}}));
    b.g->outputs = {bn(b, c, 6, "bn")};
    return b;
  };
  GraphPtr g = check_before_after(make, with_dce(make_batchnorm_folding_pass));
  EXPECT_EQ(ops(*g), std::vector<std::string>{"ConvTranspose"});
}

TEST(PassesBatchNorm, FoldsIntoGemmAndMatMul) {
  for (int variant = 0; variant < 3; ++variant) {
    SCOPED_TRACE(variant);
    auto make = [variant] {
      G b;
      Value* x = b.input("x", {3, 5});
      Value* y;
      if (variant == 0) {  // Gemm with transB and a per-column C scaled by beta
        y = b.op("Gemm", {x, b.random_const("w", {4, 5}), b.random_const("c", {4})}, "gemm",
                 attrs({{"transB", int64_t{1}}, {"alpha", 0.5f}, {"beta", 2.f}}));
      } else if (variant == 1) {  // Gemm without C
        y = b.op("Gemm", {x, b.random_const("w", {5, 4})}, "gemm");
      } else {
        y = b.op("MatMul", {x, b.random_const("w", {5, 4})}, "matmul");
      }
      b.g->outputs = {bn(b, y, 4, "bn")};
      return b;
    };
    GraphPtr g = check_before_after(make, with_dce(make_batchnorm_folding_pass));
    EXPECT_EQ(ops(*g), std::vector<std::string>{"Gemm"});
  }
}

// After a non-foldable producer (Relu), or a Conv whose output has another reader: Mul + Add.
TEST(PassesBatchNorm, LowersALoneBatchNormToMulAdd) {
  auto make = [] {
    G b;
    Value* x = b.input("x", {2, 3, 4, 5});
    Value* r = b.op("Relu", {x}, "relu");
    Value* c = b.op("Conv", {x, b.random_const("w", {3, 3, 1, 1})}, "conv");
    b.g->outputs = {bn(b, r, 3, "bn1"), bn(b, c, 3, "bn2"), c};
    return b;
  };
  GraphPtr g = check_before_after(make, with_dce(make_batchnorm_folding_pass));
  EXPECT_EQ(count(*g, "BatchNormalization"), 0);
  EXPECT_EQ(count(*g, "Mul"), 2);
  EXPECT_EQ(count(*g, "Add"), 2);
  EXPECT_EQ(g->outputs[0]->name, "bn1");
}

// Training mode, or non-constant statistics: left alone.
TEST(PassesBatchNorm, KeepsTrainingModeAndRuntimeStatistics) {
  G b;
  Value* x = b.input("x", {2, 3, 4});
  Value* mean = b.input("mean", {3});
  Value* y = b.op("BatchNormalization",
                  {x, b.random_const("s", {3}), b.random_const("bb", {3}), mean, b.random_const("v", {3}, 0.5, 1)},
                  "bn");
  b.g->outputs = {y};
  ASSERT_TRUE(infer_shapes(*b.g).ok());
  auto changed = make_batchnorm_folding_pass()->run(*b.g);
  ASSERT_TRUE(changed.ok());
  EXPECT_FALSE(*changed);
}

}  // namespace
}  // namespace kiln
