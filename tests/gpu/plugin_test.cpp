// Custom-op plugins on the CUDA backend: the HSwish example library (examples/plugins/hswish)
// through the generic plugin layer, against its CPU implementation.
#include <cstdlib>
#include <filesystem>

#include "gpu_test_util.hpp"
#include "kiln/plugin.hpp"

namespace kiln::test {
namespace {

OpCall hswish_call(Tensor x, bool plugin_op) {
  OpCall call;
  if (plugin_op) {  // rule (b): op Plugin, name=HSwish
    call.op_type = "Plugin";
    call.attrs.set("name", std::string("HSwish"));
    call.attrs.set("info", std::string("{\"test\": 1}"));
  } else {  // rule (a): a custom domain
    call.op_type = "HSwish";
    call.domain = "kiln.example";
    call.opset = 1;
  }
  call.inputs = {std::move(x)};
  return call;
}

// $KILN_HSWISH_PLUGIN, the build tree's library, or lib/ next to this binary (scripts/pack-device).
std::string hswish_library() {
  if (const char* env = std::getenv("KILN_HSWISH_PLUGIN")) return env;
  if (std::filesystem::exists(KILN_HSWISH_PLUGIN)) return KILN_HSWISH_PLUGIN;
  return (std::filesystem::read_symlink("/proc/self/exe").parent_path() / "lib" / "libkiln_hswish.so").string();
}

class CudaPlugin : public ::testing::Test {
 protected:
  void SetUp() override {
    Status st = load_plugin_library(hswish_library());
    ASSERT_TRUE(st.ok()) << st.message();
  }
};

TEST_F(CudaPlugin, HSwishFloat32MatchesCpu) {
  KILN_REQUIRE_GPU();
  // Values around the kinks at -3 and 3; an odd size checks the kernel's tail.
  for (bool plugin_op : {true, false})
    EXPECT_TRUE(matches_cpu(hswish_call(random_tensor(DType::kFloat32, {3, 5, 17, 13}, 7, -5, 5), plugin_op), 1e-5))
        << (plugin_op ? "Plugin op" : "custom domain");
}

// float16 / bfloat16 on CUDA (the CPU implementation is float32 only): against the CPU on the
// same values in float32.
TEST_F(CudaPlugin, HSwishHalfAndBFloat16) {
  KILN_REQUIRE_GPU();
  for (auto [dtype, tol] : {std::pair{DType::kFloat16, 2e-3}, std::pair{DType::kBFloat16, 2e-2}}) {
    Tensor x = random_tensor(DType::kFloat32, {2, 8, 31, 31}, 3, -5, 5).cast(dtype);
    auto gpu = run_op_cuda(hswish_call(x, true));
    ASSERT_TRUE(gpu.ok()) << gpu.status().message();
    auto cpu = run_op(hswish_call(x.cast(DType::kFloat32), true));
    ASSERT_TRUE(cpu.ok()) << cpu.status().message();
    ASSERT_EQ((*gpu)[0].dtype(), dtype);
    EXPECT_LE(rel_l2((*gpu)[0].cast(DType::kFloat32), (*cpu)[0]), tol) << dtype_name(dtype);
  }
}

// A CUDA plan with a plugin layer survives save + load (the plugin is rebuilt from its bytes).
TEST_F(CudaPlugin, PlanRoundTripAndCudaGraph) {
  KILN_REQUIRE_GPU();
  Tensor x = random_tensor(DType::kFloat32, {4, 1000}, 11, -5, 5);
  Model m;
  m.graph = make_op_graph(hswish_call(x, true));
  BuildOptions o;
  o.backend = "cuda";
  auto plan = build_plan(std::move(m), o);
  ASSERT_TRUE(plan.ok()) << plan.status().message();
  std::string path = ::testing::TempDir() + "/kiln_plugin_hswish.kplan";
  ASSERT_TRUE(save_plan(*plan, path).ok());
  auto loaded = load_plan(path);
  ASSERT_TRUE(loaded.ok()) << loaded.status().message();
  auto engine = Engine::from_plan(std::move(*loaded));
  ASSERT_TRUE(engine.ok()) << engine.status().message();
  auto cpu = run_op(hswish_call(x, true));
  ASSERT_TRUE(cpu.ok());
  for (bool graph : {false, true}) {
    ContextOptions co;
    co.cuda_graph = graph;
    auto ctx = (*engine)->create_context(co);
    ASSERT_TRUE(ctx.ok()) << ctx.status().message();
    for (int rep = 0; rep < 2; ++rep) {
      auto out = (*ctx)->run({{"in0", x}});
      ASSERT_TRUE(out.ok()) << out.status().message();
      EXPECT_LE(rel_l2((*out)[0], (*cpu)[0]), 1e-5) << "cuda_graph " << graph;
    }
  }
}

}  // namespace
}  // namespace kiln::test
