// CUDA ReduceSum/Mean/Max/Min against the CPU reference: row (warp/block) and column kernels,
// several reduced runs (multi-pass), all axes, keepdims, noop_with_empty_axes, dtypes.
#include "backends/cuda/cuda_layer.hpp"
#include "ew_test_util.hpp"

namespace kiln::test {
namespace {

double tolerance(DType t) { return t == DType::kFloat32 ? 1e-5 : t == DType::kFloat16 ? 5e-3 : 2e-2; }

struct ReduceCase {
  Dims dims;
  std::vector<int64_t> axes;  // empty: input absent (all axes)
  int64_t keepdims = 1;
};
const ReduceCase kCases[] = {
    {{6, 40}, {1}},                 // warp per row
    {{3, 5000}, {-1}},              // block per row
    {{4, 30, 9}, {1}},              // column per thread
    {{5, 6, 7, 8}, {0, 2}},         // two runs: two passes
    {{3, 4, 5, 6, 7}, {0, 2, 4}},   // three runs: ping-pong intermediates
    {{2, 1, 9}, {1}},               // only a size-1 axis: a copy
    {{4, 5, 6}, {}},                // all axes
    {{4, 5, 6}, {1, 2}, 0},         // keepdims = 0
};

class CudaReduce : public ::testing::TestWithParam<const char*> {};

TEST_P(CudaReduce, AxesAndDtypes) {
  KILN_REQUIRE_GPU();
  for (DType t : {DType::kFloat32, DType::kFloat16, DType::kBFloat16})
    for (const auto& c : kCases) {
      SCOPED_TRACE(std::string(dtype_name(t)) + " " + dims_to_string(c.dims) + " axes " +
                   std::to_string(c.axes.size()));
      OpCall call{.op_type = GetParam(), .inputs = {random_tensor(t, c.dims, 3)}};
      call.attrs.set("keepdims", c.keepdims);
      if (!c.axes.empty()) {
        call.inputs.push_back(Tensor::from_vector<int64_t>({static_cast<int64_t>(c.axes.size())}, c.axes));
        call.constant_inputs = {false, true};
      }
      EXPECT_TRUE(matches_cpu(call, tolerance(t)));
    }
}

INSTANTIATE_TEST_SUITE_P(All, CudaReduce, ::testing::Values("ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin"),
                         [](const auto& info) { return std::string(info.param); });

TEST(CudaReduceInt, SumMaxMin) {
  KILN_REQUIRE_GPU();
  for (const char* op : {"ReduceSum", "ReduceMax", "ReduceMin"})
    for (DType t : {DType::kInt32, DType::kInt64}) {
      SCOPED_TRACE(std::string(op) + " " + std::string(dtype_name(t)));
      OpCall call{.op_type = op,
                  .inputs = {random_tensor(t, {4, 50, 3}, 3, -1e9, 1e9), Tensor::from_vector<int64_t>({1}, {1})},
                  .constant_inputs = {false, true}};
      EXPECT_TRUE(matches_cpu(call, 0.0));
    }
}

TEST(CudaReduce, NoopWithEmptyAxesCopies) {
  KILN_REQUIRE_GPU();
  OpCall call{.op_type = "ReduceSum", .inputs = {random_tensor(DType::kFloat32, {3, 4})}};
  call.attrs.set("noop_with_empty_axes", int64_t{1});
  EXPECT_TRUE(matches_cpu(call, 0.0));
}

TEST(CudaReduce, NaNPropagatesThroughMaxMin) {
  KILN_REQUIRE_GPU();
  const float nan = std::numeric_limits<float>::quiet_NaN();
  Tensor x = Tensor::from_vector<float>({2, 3}, {1.f, nan, 3.f, -1.f, -2.f, -3.f});
  for (const char* op : {"ReduceMax", "ReduceMin"})
    EXPECT_TRUE(matches_cpu_exactly(OpCall{
        .op_type = op, .inputs = {x, Tensor::from_vector<int64_t>({1}, {1})}, .constant_inputs = {false, true}}));
}

TEST(CudaReduceSupport, RuntimeAxesAreLeftToTheCpu) {
  GraphPtr g = make_op_graph(OpCall{.op_type = "ReduceSum",
                                    .inputs = {random_tensor(DType::kFloat32, {3, 4}),
                                               Tensor::from_vector<int64_t>({1}, {1})}});
  ASSERT_TRUE(infer_shapes(*g).ok());
  const cuda::CudaLayerFactory* f = cuda::find_cuda_layer("ReduceSum");
  ASSERT_NE(f, nullptr);
  EXPECT_FALSE(f->supports(*g->nodes()[0]));
}

}  // namespace
}  // namespace kiln::test
