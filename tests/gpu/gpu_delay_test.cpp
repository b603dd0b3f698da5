// gpu_delay: the tactic timer queues it ahead of each timed run so that the host's part of an
// enqueue is not timed (tactic_timer.cpp).
#include "backends/cuda/gpu_delay.hpp"
#include "gpu_test_util.hpp"

namespace kiln::test {
namespace {

TEST(CudaGpuDelay, KeepsTheStreamBusyForTheGivenTime) {
  KILN_REQUIRE_GPU();
  cudaStream_t s = nullptr;
  cudaEvent_t a = nullptr, b = nullptr;
  ASSERT_EQ(cudaStreamCreate(&s), cudaSuccess);
  ASSERT_EQ(cudaEventCreate(&a), cudaSuccess);
  ASSERT_EQ(cudaEventCreate(&b), cudaSuccess);
  for (uint64_t ns : {20'000ull, 300'000ull}) {
    ASSERT_EQ(cudaEventRecord(a, s), cudaSuccess);
    ASSERT_EQ(cuda::gpu_delay(s, ns), cudaSuccess);
    ASSERT_EQ(cudaEventRecord(b, s), cudaSuccess);
    ASSERT_EQ(cudaEventSynchronize(b), cudaSuccess);
    float ms = 0;
    ASSERT_EQ(cudaEventElapsedTime(&ms, a, b), cudaSuccess);
    EXPECT_GE(ms, 0.95 * static_cast<double>(ns) / 1e6) << ns << " ns";
    EXPECT_LT(ms, 50.0) << ns << " ns";
  }
  cudaEventDestroy(a);
  cudaEventDestroy(b);
  cudaStreamDestroy(s);
}

}  // namespace
}  // namespace kiln::test
