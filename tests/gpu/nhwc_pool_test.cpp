// kiln.NHWC pools on cuDNN (NHWC descriptors) against the CPU reference, and a float16
// conv -> pool -> conv graph whose pool joins the NHWC region.
#include "ops/fused_conv.hpp"
#include "tactic_test_util.hpp"

namespace kiln::test {
namespace {

Tensor permute(const Tensor& x, const std::vector<int64_t>& perm) {
  OpCall call{.op_type = "Transpose", .inputs = {x}};
  call.attrs.set("perm", perm);
  auto r = run_op(call);
  EXPECT_TRUE(r.ok()) << r.status().message();
  return r.ok() ? (*r)[0] : Tensor();
}

OpCall nhwc_pool(DType t, const char* op, Dims nchw, std::initializer_list<std::pair<const char*, Dims>> ints,
                 int64_t count_include_pad = 0) {
  OpCall call{.op_type = "NHWC", .inputs = {permute(random_tensor(t, nchw, 3), nchw_to_nhwc_perm(4))}, .domain = "kiln"};
  call.attrs.set("op", std::string(op));
  for (const auto& [name, v] : ints) call.attrs.set(name, v);
  if (count_include_pad) call.attrs.set("count_include_pad", count_include_pad);
  return call;
}

TEST(CudaNhwcPool, MaxAverageGlobal) {
  KILN_REQUIRE_GPU();
  for (DType t : {DType::kFloat32, DType::kFloat16, DType::kBFloat16}) {
    const double tol = t == DType::kFloat32 ? 1e-6 : t == DType::kFloat16 ? 2e-3 : 1e-2;
    EXPECT_TRUE(matches_cpu(nhwc_pool(t, "MaxPool", {2, 13, 11, 12}, {{"kernel_shape", {3, 3}}, {"strides", {2, 2}},
                                                                       {"pads", {1, 1, 1, 1}}}),
                            tol))
        << dtype_name(t);
    EXPECT_TRUE(matches_cpu(nhwc_pool(t, "MaxPool", {1, 8, 16, 16}, {{"kernel_shape", {2, 2}}, {"strides", {2, 2}}}), tol))
        << dtype_name(t);
    for (int64_t include : {0, 1})
      EXPECT_TRUE(matches_cpu(nhwc_pool(t, "AveragePool", {2, 5, 9, 7},
                                        {{"kernel_shape", {3, 2}}, {"strides", {1, 2}}, {"pads", {1, 0, 1, 0}}}, include),
                              tol))
          << dtype_name(t) << " count_include_pad " << include;
    EXPECT_TRUE(matches_cpu(nhwc_pool(t, "GlobalAveragePool", {2, 33, 7, 7}, {}), tol)) << dtype_name(t);
    EXPECT_TRUE(matches_cpu(nhwc_pool(t, "GlobalMaxPool", {2, 6, 5, 4}, {}), tol)) << dtype_name(t);
  }
}

TEST(CudaNhwcPool, WindowsCuDnnCannotPoolAreUnsupported) {
  KILN_REQUIRE_GPU();
  EXPECT_FALSE(cuda_builds(nhwc_pool(DType::kFloat16, "MaxPool", {1, 4, 8, 8},
                                     {{"kernel_shape", {2, 2}}, {"pads", {0, 0, 1, 1}}})));
  EXPECT_FALSE(cuda_builds(nhwc_pool(DType::kFloat16, "MaxPool", {1, 4, 8, 8},
                                     {{"kernel_shape", {2, 2}}, {"dilations", {2, 2}}})));
}

TEST(CudaNhwcPool, Float16ConvPoolConvGraph) {
  KILN_REQUIRE_GPU();
  auto make = [] {
    auto g = std::make_shared<Graph>();
    const DType t = DType::kFloat16;
    Value* x = g->add_value("in0", {t, Shape::from_dims({2, 8, 20, 20})});
    g->inputs = {x};
    Value* w0 = g->add_constant("w0", random_tensor(t, {16, 8, 3, 3}, 1, -0.3, 0.3));
    Value* w1 = g->add_constant("w1", random_tensor(t, {16, 16, 3, 3}, 2, -0.3, 0.3));
    Value *c0 = g->add_value("c0"), *r0 = g->add_value("r0"), *p0 = g->add_value("p0"), *c1 = g->add_value("c1");
    Value* out = g->add_value("out");
    g->add_node("Conv", {x, w0}, {c0}, "conv0", "", 21)->attrs.set("pads", Dims{1, 1, 1, 1});
    g->add_node("Relu", {c0}, {r0}, "relu0", "", 21);
    Node* mp = g->add_node("MaxPool", {r0}, {p0}, "pool", "", 21);
    mp->attrs.set("kernel_shape", Dims{2, 2});
    mp->attrs.set("strides", Dims{2, 2});
    g->add_node("Conv", {p0, w1}, {c1}, "conv1", "", 21)->attrs.set("pads", Dims{1, 1, 1, 1});
    g->add_node("GlobalAveragePool", {c1}, {out}, "gap", "", 21);
    g->outputs = {out};
    return g;
  };
  Tensor x = random_tensor(DType::kFloat16, {2, 8, 20, 20}, 9);
  GraphPtr ref = make();
  ASSERT_TRUE(infer_shapes(*ref).ok());
  auto exec = CpuExecutor::create(ref);
  ASSERT_TRUE(exec.ok());
  auto cpu = (*exec)->run({{"in0", x}});
  ASSERT_TRUE(cpu.ok()) << cpu.status().message();
  Model model;
  model.graph = make();
  BuildOptions o;
  o.backend = "cuda";
  auto plan = build_plan(std::move(model), o);
  ASSERT_TRUE(plan.ok()) << plan.status().message();
  size_t nhwc = 0, transposes = 0;
  for (const auto& n : plan->graph->nodes()) {
    nhwc += n->op_type == "NHWC";
    transposes += n->op_type == "Transpose";
  }
  EXPECT_EQ(nhwc, 2u);        // MaxPool and GlobalAveragePool
  EXPECT_EQ(transposes, 2u);  // graph input and output
  auto engine = Engine::from_plan(std::move(*plan));
  ASSERT_TRUE(engine.ok()) << engine.status().message();
  auto ctx = (*engine)->create_context();
  ASSERT_TRUE(ctx.ok());
  auto gpu = (*ctx)->run({{"in0", x}});
  ASSERT_TRUE(gpu.ok()) << gpu.status().message();
  EXPECT_EQ((*gpu)[0].dims(), (*cpu)[0].dims());
  EXPECT_LT(rel_l2((*gpu)[0], (*cpu)[0]), 1e-2);
}

}  // namespace
}  // namespace kiln::test
