// Elementwise CUDA-vs-CPU comparison for the tests whose outputs hold NaN or infinities (relative
// L2 is NaN there): |gpu - cpu| <= atol + rtol * |cpu| per element, NaN matching NaN and equal
// infinities matching. The defaults demand equality.
#pragma once

#include "gpu_test_util.hpp"

namespace kiln::test {

inline ::testing::AssertionResult matches_cpu_exactly(const OpCall& call, double rtol = 0.0, double atol = 0.0) {
  auto cpu = run_op(call);
  if (!cpu.ok()) return ::testing::AssertionFailure() << "CPU: " << cpu.status().message();
  auto gpu = run_op_cuda(call);
  if (!gpu.ok()) return ::testing::AssertionFailure() << "CUDA: " << gpu.status().message();
  if (gpu->size() != cpu->size()) return ::testing::AssertionFailure() << "output count differs";
  for (size_t i = 0; i < cpu->size(); ++i) {
    auto r = tensors_close((*gpu)[i], (*cpu)[i], rtol, atol);
    if (!r) return ::testing::AssertionFailure() << "output " << i << ": " << r.message();
  }
  return ::testing::AssertionSuccess();
}

}  // namespace kiln::test
