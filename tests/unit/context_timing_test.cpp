// Execution-context timing on the CPU backend: per-run compute time and per-layer times (what
// `kiln bench` reads), and options the CPU cannot honour.
#include <gtest/gtest.h>

#include "builder/builder.hpp"
#include "runtime/engine.hpp"

namespace kiln {
namespace {

// x -> Relu -> Neg -> Abs -> y, float32[64, 64].
std::shared_ptr<Engine> three_layer_engine() {
  Model m;
  m.graph = std::make_shared<Graph>();
  Graph& g = *m.graph;
  auto type = TensorType{DType::kFloat32, Shape::from_dims({64, 64})};
  Value* x = g.add_value("x", type);
  Value* a = g.add_value("a");
  Value* b = g.add_value("b");
  Value* y = g.add_value("y");
  g.inputs = {x};
  g.add_node("Relu", {x}, {a}, "relu");
  g.add_node("Neg", {a}, {b}, "neg");
  g.add_node("Abs", {b}, {y}, "abs");
  g.outputs = {y};
  auto plan = build_plan(std::move(m), BuildOptions{});
  EXPECT_TRUE(plan.ok()) << plan.status().message();
  auto engine = Engine::from_plan(std::move(plan).value());
  EXPECT_TRUE(engine.ok()) << engine.status().message();
  return *engine;
}

TEST(ContextTiming, CpuRecordsComputeAndEachLayer) {
  auto engine = three_layer_engine();
  auto ctx = engine->create_context(ContextOptions{.layer_timing = true});
  ASSERT_TRUE(ctx.ok()) << ctx.status().message();
  Tensor x = Tensor::zeros(DType::kFloat32, {64, 64});
  x.data<float>()[3] = -2.f;
  auto out = (*ctx)->run({{"x", x}});
  ASSERT_TRUE(out.ok()) << out.status().message();
  EXPECT_EQ(out->at(0).data<float>()[3], 0.f);
  auto ms = (*ctx)->layer_times_ms();
  ASSERT_TRUE(ms.ok()) << ms.status().message();
  ASSERT_EQ(ms->size(), 3u);
  double sum = 0;
  for (double t : *ms) {
    EXPECT_GE(t, 0.0);
    sum += t;
  }
  EXPECT_GT((*ctx)->last_timings().compute_ms, 0.0);
  EXPECT_LE(sum, (*ctx)->last_timings().compute_ms);  // the layers run inside the timed run
  EXPECT_EQ((*ctx)->last_timings().h2d_ms, 0.0);     // the CPU copies nothing
}

TEST(ContextTiming, LayerTimesNeedTheOptionAndGraphsNeedCuda) {
  auto engine = three_layer_engine();
  auto plain = engine->create_context();
  ASSERT_TRUE(plain.ok());
  ASSERT_TRUE((*plain)->run({{"x", Tensor::zeros(DType::kFloat32, {64, 64})}}).ok());
  auto ms = (*plain)->layer_times_ms();
  ASSERT_FALSE(ms.ok());
  EXPECT_NE(ms.status().message().find("layer timing"), std::string::npos);
  auto graph = engine->create_context(ContextOptions{.cuda_graph = true});
  ASSERT_FALSE(graph.ok());
  EXPECT_EQ(graph.status().code(), StatusCode::kUnsupported);
}

}  // namespace
}  // namespace kiln
