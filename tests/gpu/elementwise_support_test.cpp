// Host-side parts of the elementwise CUDA layers that need no GPU (they run everywhere): the
// broadcast geometry the kernels index with, and which nodes the layers claim.
#include "backends/cuda/cuda_layer.hpp"
#include "backends/cuda/layers/ew_kernels.hpp"
#include "gpu_test_util.hpp"

namespace kiln::test {
namespace {

using cuda::BroadcastGeometry;
using cuda::make_broadcast_geometry;

std::vector<int64_t> geometry_dims(const BroadcastGeometry& g) { return {g.dims, g.dims + g.rank}; }
std::vector<int64_t> geometry_strides(const BroadcastGeometry& g, int k) {
  return {g.strides[k], g.strides[k] + g.rank};
}

TEST(BroadcastGeometry, SameShapeMergesToOneDim) {
  BroadcastGeometry g;
  ASSERT_TRUE(make_broadcast_geometry({2, 3, 4}, {{2, 3, 4}, {2, 3, 4}}, g));
  EXPECT_EQ(geometry_dims(g), (std::vector<int64_t>{24}));
  EXPECT_EQ(geometry_strides(g, 0), (std::vector<int64_t>{1}));
  EXPECT_EQ(geometry_strides(g, 1), (std::vector<int64_t>{1}));
  EXPECT_EQ(g.numel, 24);
}

TEST(BroadcastGeometry, ScalarHasStrideZero) {
  BroadcastGeometry g;
  ASSERT_TRUE(make_broadcast_geometry({5, 6}, {{5, 6}, {}}, g));
  EXPECT_EQ(geometry_dims(g), (std::vector<int64_t>{30}));
  EXPECT_EQ(geometry_strides(g, 1), (std::vector<int64_t>{0}));
}

TEST(BroadcastGeometry, PerChannelBiasKeepsThreeDims) {
  BroadcastGeometry g;
  ASSERT_TRUE(make_broadcast_geometry({2, 16, 7, 9}, {{2, 16, 7, 9}, {16, 1, 1}}, g));
  EXPECT_EQ(geometry_dims(g), (std::vector<int64_t>{2, 16, 63}));
  EXPECT_EQ(geometry_strides(g, 0), (std::vector<int64_t>{1008, 63, 1}));
  EXPECT_EQ(geometry_strides(g, 1), (std::vector<int64_t>{0, 1, 0}));
}

TEST(BroadcastGeometry, BothSidesBroadcastAndOnesDropped) {
  BroadcastGeometry g;
  ASSERT_TRUE(make_broadcast_geometry({5, 3, 1, 24}, {{5, 1, 1, 24}, {3, 1, 1}}, g));
  EXPECT_EQ(geometry_dims(g), (std::vector<int64_t>{5, 3, 24}));
  EXPECT_EQ(geometry_strides(g, 0), (std::vector<int64_t>{24, 0, 1}));
  EXPECT_EQ(geometry_strides(g, 1), (std::vector<int64_t>{0, 1, 0}));
}

TEST(BroadcastGeometry, AllOnesIsOneElement) {
  BroadcastGeometry g;
  ASSERT_TRUE(make_broadcast_geometry({1, 1}, {{1}, {1, 1}, {}}, g));
  EXPECT_EQ(geometry_dims(g), (std::vector<int64_t>{1}));
  EXPECT_EQ(g.numel, 1);
  EXPECT_EQ(g.num_inputs, 3);
}

TEST(BroadcastGeometry, RejectsMismatchTooManyInputsAndHigherInputRank) {
  BroadcastGeometry g;
  EXPECT_FALSE(make_broadcast_geometry({2, 3}, {{2, 3}, {4}}, g));
  EXPECT_FALSE(make_broadcast_geometry({2, 3}, {{2, 3}, {1, 2, 3}}, g));
  EXPECT_FALSE(make_broadcast_geometry({2}, {{2}, {2}, {2}, {2}}, g));
  // Rank 9 that cannot merge (alternating broadcast) exceeds the kernels' limit.
  EXPECT_FALSE(make_broadcast_geometry({2, 3, 2, 3, 2, 3, 2, 3, 2}, {{2, 1, 2, 1, 2, 1, 2, 1, 2}, {3, 1, 3, 1, 3, 1, 3, 1}}, g));
}

// Builds the one-node graph with shapes inferred, as the builder sees it.
bool cuda_supports(const OpCall& call) {
  GraphPtr g = make_op_graph(call);
  if (!infer_shapes(*g).ok()) return false;
  const Node& n = *g->nodes()[0];
  const cuda::CudaLayerFactory* f = cuda::find_cuda_layer(n.op_type);
  return f && f->supports(n);
}

TEST(CudaElementwiseSupport, ClaimsWhatTheKernelsRun) {
  const Tensor f32 = random_tensor(DType::kFloat32, {2, 3});
  EXPECT_TRUE(cuda_supports({.op_type = "Relu", .inputs = {f32}}));
  EXPECT_TRUE(cuda_supports({.op_type = "Add", .inputs = {f32, random_tensor(DType::kFloat32, {3})}}));
  EXPECT_TRUE(cuda_supports({.op_type = "Softmax", .inputs = {random_tensor(DType::kBFloat16, {2, 3})}}));
  Attributes to_f16;
  to_f16.set("to", int64_t{10});
  EXPECT_TRUE(cuda_supports({.op_type = "Cast", .inputs = {random_tensor(DType::kInt64, {4})}, .attrs = to_f16}));
  EXPECT_TRUE(cuda_supports({.op_type = "Where",
                             .inputs = {random_tensor(DType::kBool, {3}), f32, random_tensor(DType::kFloat32, {1})}}));
}

TEST(CudaElementwiseSupport, RejectsWhatTheKernelsDoNot) {
  // float64 math, integer division (the CPU reports division by zero), runtime Clip bounds,
  // string-free but unsupported dtypes, and Scale not covering the normalized dims.
  EXPECT_FALSE(cuda_supports({.op_type = "Exp", .inputs = {random_tensor(DType::kFloat64, {4})}}));
  EXPECT_FALSE(cuda_supports({.op_type = "Sigmoid", .inputs = {random_tensor(DType::kInt32, {4})}}));
  EXPECT_FALSE(cuda_supports(
      {.op_type = "Div", .inputs = {random_tensor(DType::kInt32, {4}), random_tensor(DType::kInt32, {4})}}));
  const Tensor x = random_tensor(DType::kFloat32, {4});
  const Tensor lo = Tensor::from_vector<float>({}, {0.f});
  EXPECT_FALSE(cuda_supports({.op_type = "Clip", .inputs = {x, lo}}));
  EXPECT_TRUE(cuda_supports({.op_type = "Clip", .inputs = {x, lo}, .constant_inputs = {false, true}}));
  EXPECT_FALSE(cuda_supports({.op_type = "Add",
                              .inputs = {random_tensor(DType::kUInt16, {4}), random_tensor(DType::kUInt16, {4})}}));
  Attributes axis1;
  axis1.set("axis", int64_t{1});
  EXPECT_FALSE(cuda_supports({.op_type = "LayerNormalization",
                              .inputs = {random_tensor(DType::kFloat32, {2, 3, 4}), random_tensor(DType::kFloat32, {4})},
                              .attrs = axis1}));
  EXPECT_TRUE(cuda_supports({.op_type = "LayerNormalization",
                             .inputs = {random_tensor(DType::kFloat32, {2, 3, 4}), random_tensor(DType::kFloat32, {3, 4})},
                             .attrs = axis1}));
  // Mean output in float16 (stash_type 10) is not written by the kernel.
  Attributes stash16;
  stash16.set("stash_type", int64_t{10});
  EXPECT_FALSE(cuda_supports({.op_type = "LayerNormalization",
                              .inputs = {random_tensor(DType::kFloat16, {2, 4}), random_tensor(DType::kFloat16, {4})},
                              .attrs = stash16,
                              .num_outputs = 2}));
}

}  // namespace
}  // namespace kiln::test
