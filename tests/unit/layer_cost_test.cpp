// `kiln inspect`'s FLOP counts (tools/kiln/layer_cost.hpp) for the fused layers the CUDA passes
// make: a kiln op must count its multiply-adds, not one FLOP per output element.
#include "layer_cost.hpp"

#include <gtest/gtest.h>

#include "ir/graph.hpp"

namespace kiln {
namespace {

TensorType f16(Dims d) { return {DType::kFloat16, Shape::from_dims(d)}; }

Value* value(Graph& g, const std::string& name, Dims d) { return g.add_value(name, f16(std::move(d))); }

TEST(LayerCost, FusedConvCountsItsProductsAndHead) {
  Graph g;
  // NHWC 3x3, 64 -> 32 channels, 10x12 pixels, batch 2: W (32, 3, 3, 64).
  Node* conv = g.add_node("FusedConv", {value(g, "x", {2, 10, 12, 64}), value(g, "w", {32, 3, 3, 64})},
                          {value(g, "y", {2, 10, 12, 32})}, "conv", "kiln", 1);
  conv->attrs.set("layout", std::string("NHWC"));
  const int64_t outputs = 2 * 10 * 12 * 32;
  EXPECT_EQ(cli::layer_cost(*conv).flops, 2 * outputs * 3 * 3 * 64);
  // With a head of 3 classes (HW (3, 1, 1, 32)): Y holds the 3 classes, the conv's 32 channels are
  // computed all the same, then 2 * 3 * 32 per pixel.
  Node* head = g.add_node("FusedConv",
                          {value(g, "x2", {2, 10, 12, 64}), value(g, "w2", {32, 3, 3, 64}), value(g, "b2", {32}),
                           nullptr, value(g, "hw", {3, 1, 1, 32})},
                          {value(g, "h", {2, 10, 12, 3})}, "head", "kiln", 1);
  EXPECT_EQ(cli::layer_cost(*head).flops, 2 * outputs * 3 * 3 * 64 + 2 * (2 * 10 * 12) * 3 * 32);
}

TEST(LayerCost, NhwcConvTransposeAndFusedMatMul) {
  Graph g;
  // 2x2 stride 2, 128 -> 64 channels on 8x8 pixels: W (128, 2, 2, 64); each input element
  // scatters over 2 * 2 * 64 outputs.
  Node* up = g.add_node("NHWC", {value(g, "x", {1, 8, 8, 128}), value(g, "w", {128, 2, 2, 64})},
                        {value(g, "y", {1, 16, 16, 64})}, "up", "kiln", 1);
  up->attrs.set("op", std::string("ConvTranspose"));
  EXPECT_EQ(cli::layer_cost(*up).flops, 2 * (8 * 8 * 128) * (2 * 2 * 64));
  // A pool wrapped the same way counts one per output element.
  Node* pool = g.add_node("NHWC", {value(g, "p", {1, 8, 8, 16})}, {value(g, "q", {1, 4, 4, 16})}, "pool", "kiln", 1);
  pool->attrs.set("op", std::string("MaxPool"));
  EXPECT_EQ(cli::layer_cost(*pool).flops, 4 * 4 * 16);
  Node* mm = g.add_node("FusedMatMul", {value(g, "a", {3, 5, 7}), value(g, "b", {7, 11}), value(g, "bias", {11})},
                        {value(g, "c", {3, 5, 11})}, "mm", "kiln", 1);
  EXPECT_EQ(cli::layer_cost(*mm).flops, 2 * (3 * 5 * 11) * 7);
}

}  // namespace
}  // namespace kiln
