// GPU tests run a node on the CUDA backend (through the builder and a CUDA engine, as a user's
// model would) and on the CPU reference, and compare the outputs by relative L2 error.
#pragma once

#include <gtest/gtest.h>

#include "backends/cuda/device_info.hpp"
#include "builder/builder.hpp"
#include "op_test_util.hpp"
#include "runtime/engine.hpp"

namespace kiln::test {

// Skips the test, saying why, when this machine has no usable GPU.
#define KILN_REQUIRE_GPU()                                                       \
  do {                                                                           \
    ::kiln::Status kiln_gpu_ = ::kiln::cuda::device_available();                 \
    if (!kiln_gpu_.ok()) GTEST_SKIP() << "no GPU: " << kiln_gpu_.message();      \
  } while (0)

// Runs the op through a CUDA plan (tactics timed as in `kiln build`).
inline Expected<std::vector<Tensor>> run_op_cuda(const OpCall& call, BuildOptions options = {}) {
  options.backend = "cuda";
  Model model;
  model.graph = make_op_graph(call);
  KILN_ASSIGN_OR_RETURN(Plan plan, build_plan(std::move(model), options));
  KILN_ASSIGN_OR_RETURN(auto engine, Engine::from_plan(std::move(plan)));
  KILN_ASSIGN_OR_RETURN(auto ctx, engine->create_context());
  std::map<std::string, Tensor> feeds;
  for (const BindingInfo& b : engine->inputs())
    feeds[b.name] = call.inputs[static_cast<size_t>(std::stoi(b.name.substr(2)))];
  return ctx->run(feeds);
}

// CUDA vs CPU on the same inputs: every output within `tol` relative L2 (and same dtype/dims).
inline ::testing::AssertionResult matches_cpu(const OpCall& call, double tol, BuildOptions options = {}) {
  auto cpu = run_op(call);
  if (!cpu.ok()) return ::testing::AssertionFailure() << "CPU: " << cpu.status().message();
  auto gpu = run_op_cuda(call, options);
  if (!gpu.ok()) return ::testing::AssertionFailure() << "CUDA: " << gpu.status().message();
  for (size_t i = 0; i < cpu->size(); ++i) {
    const Tensor& c = (*cpu)[i];
    const Tensor& g = (*gpu)[i];
    if (c.dtype() != g.dtype() || c.dims() != g.dims())
      return ::testing::AssertionFailure() << "output " << i << ": CUDA " << g.describe() << " vs CPU " << c.describe();
    double err = rel_l2(g, c);
    if (!(err <= tol)) return ::testing::AssertionFailure() << "output " << i << ": rel L2 " << err << " > " << tol;
  }
  return ::testing::AssertionSuccess();
}

}  // namespace kiln::test
