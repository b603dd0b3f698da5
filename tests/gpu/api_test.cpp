// The public API (include/kiln/kiln.hpp) on the CUDA backend: a plan file loaded with kiln::load,
// synchronous and asynchronous runs, CUDA graphs; and the context timings `kiln bench` reads.
#include <cstring>

#include "gpu_test_util.hpp"
#include "kiln/kiln.hpp"

namespace kiln::test {
namespace {

// Identity chain in0 -> a -> out: the one CUDA layer every build has (view layers).
GraphPtr identity_chain(DType dtype, Dims dims) {
  auto g = std::make_shared<Graph>();
  Value* x = g->add_value("in0", {dtype, Shape::from_dims(dims)});
  Value* a = g->add_value("a");
  Value* y = g->add_value("out");
  g->inputs = {x};
  g->add_node("Identity", {x}, {a}, "first");
  g->add_node("Identity", {a}, {y}, "second");
  g->outputs = {y};
  return g;
}

std::string save_cuda_plan(GraphPtr g, const std::string& name) {
  BuildOptions o;
  o.backend = "cuda";
  Model m;
  m.graph = std::move(g);
  auto plan = build_plan(std::move(m), o);
  EXPECT_TRUE(plan.ok()) << plan.status().message();
  std::string path = ::testing::TempDir() + "/" + name;
  EXPECT_TRUE(save_plan(*plan, path).ok());
  return path;
}

TEST(CudaApi, LoadForwardAndAsyncToHost) {
  KILN_REQUIRE_GPU();
  std::string path = save_cuda_plan(identity_chain(DType::kFloat32, {32, 5}), "kiln_api_identity.kplan");
  for (bool graph : {false, true}) {
    auto loaded = load(path, InferOptions{.cuda_graph = graph});
    ASSERT_TRUE(loaded.ok()) << loaded.status().message();
    Infer& infer = **loaded;
    EXPECT_EQ(infer.engine().backend(), "cuda");
    EXPECT_GT(infer.engine().device_context_bytes(), 0u);
    for (uint32_t seed = 1; seed <= 3; ++seed) {  // with a graph: capture once, then replays
      Tensor x = random_tensor(DType::kFloat32, {32, 5}, seed);
      ASSERT_TRUE(infer.input("in0")->copy_from(x.raw_data(), x.nbytes()).ok());
      if (seed == 2) {
        ASSERT_TRUE(infer.forward_async().ok());
        ASSERT_TRUE(infer.synchronize().ok());
        EXPECT_FALSE(infer.output(0)->on_host());
        ASSERT_TRUE(infer.output(0)->to_host().ok());
      } else {
        ASSERT_TRUE(infer.forward().ok());
      }
      ASSERT_TRUE(infer.output(0)->on_host());
      EXPECT_EQ(std::memcmp(infer.output(0)->host(), x.raw_data(), x.nbytes()), 0) << "seed " << seed;
    }
  }
}

TEST(CudaContext, LayerTimingAndStepTimings) {
  KILN_REQUIRE_GPU();
  std::string path = save_cuda_plan(identity_chain(DType::kFloat16, {1024, 256}), "kiln_timing_identity.kplan");
  auto engine = Engine::load(path);
  ASSERT_TRUE(engine.ok()) << engine.status().message();
  auto both = (*engine)->create_context(ContextOptions{.cuda_graph = true, .layer_timing = true});
  EXPECT_FALSE(both.ok());  // events in a captured graph time nothing: refused

  auto ctx = (*engine)->create_context(ContextOptions{.layer_timing = true});
  ASSERT_TRUE(ctx.ok()) << ctx.status().message();
  EXPECT_FALSE((*ctx)->layer_times_ms().ok());  // nothing has run
  Tensor x = random_tensor(DType::kFloat16, {1024, 256});  // 512 KiB: copies take measurable time
  auto out = (*ctx)->run({{"in0", x}});
  ASSERT_TRUE(out.ok()) << out.status().message();
  EXPECT_TRUE(tensors_close(out->at(0), x, 0, 0));
  auto ms = (*ctx)->layer_times_ms();
  ASSERT_TRUE(ms.ok()) << ms.status().message();
  ASSERT_EQ(ms->size(), (*engine)->plan().graph->nodes().size());
  for (double t : *ms) EXPECT_GE(t, 0.0);
  RunTimings t = (*ctx)->last_timings();
  EXPECT_GT(t.h2d_ms, 0.0);
  EXPECT_GT(t.d2h_ms, 0.0);

  // Without transfers (bench --no-data-transfers): enqueue + synchronize still times the layers.
  ASSERT_TRUE((*ctx)->enqueue().ok());
  ASSERT_TRUE((*ctx)->synchronize().ok());
  EXPECT_GE((*ctx)->last_timings().compute_ms, 0.0);
  EXPECT_EQ((*ctx)->last_timings().d2h_ms, 0.0);  // no copy out in this run
  EXPECT_TRUE((*ctx)->layer_times_ms().ok());
}

}  // namespace
}  // namespace kiln::test
