// --calib-backend cuda: ranges collected by a float32 CUDA plan (TF32 off) against the CPU
// executor's on a small Conv + MatMul model (minmax within 1e-4 relative; entropy and percentile
// within a histogram bin width), and an --int8 CUDA build calibrated on either giving the same
// plan (tactics, precisions, Q/DQ scales).
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <random>

#include <unistd.h>

#include "builder/builder.hpp"
#include "gpu_test_util.hpp"
#include "io/npy.hpp"
#include "ops/shape_inference.hpp"
#include "quant/calibrate.hpp"

namespace kiln::test {
namespace {


// x[N,8,16,16] -> Conv(16, 3x3, pad 1) -> Relu -> Conv(16, 1x1) + residual -> GlobalAveragePool
// -> Flatten -> MatMul([16,32]) -> Add -> Gelu-like Tanh -> Gemm(transB, [10,32]) -> Softmax.
GraphPtr conv_matmul_net() {
  auto g = std::make_shared<Graph>();
  Value* x = g->add_value("x", {DType::kFloat32, Shape({Dim::symbolic("n"), Dim(8), Dim(16), Dim(16)})});
  g->inputs = {x};
  auto v = [&](const char* name) { return g->add_value(name); };
  Value *c1 = v("c1"), *r1 = v("r1"), *c2 = v("c2"), *res = v("res"), *gap = v("gap"), *flat = v("flat");
  Value *mm = v("mm"), *add = v("add"), *th = v("th"), *gemm = v("gemm"), *y = v("y");
  Node* n1 = g->add_node("Conv", {x, g->add_constant("w1", normal_tensor({16, 8, 3, 3}, 1, 0.2f)),
                                  g->add_constant("b1", normal_tensor({16}, 2, 0.1f))},
                         {c1}, "conv1", "", 21);
  n1->attrs.set("kernel_shape", std::vector<int64_t>{3, 3});
  n1->attrs.set("pads", std::vector<int64_t>{1, 1, 1, 1});
  g->add_node("Relu", {c1}, {r1}, "relu1", "", 21);
  Node* n2 = g->add_node("Conv", {r1, g->add_constant("w2", normal_tensor({16, 16, 1, 1}, 3, 0.3f))}, {c2}, "conv2", "", 21);
  n2->attrs.set("kernel_shape", std::vector<int64_t>{1, 1});
  g->add_node("Add", {c2, c1}, {res}, "residual", "", 21);
  g->add_node("GlobalAveragePool", {res}, {gap}, "gap", "", 21);
  g->add_node("Flatten", {gap}, {flat}, "flatten", "", 21);
  g->add_node("MatMul", {flat, g->add_constant("w3", normal_tensor({16, 32}, 4, 0.4f))}, {mm}, "matmul", "", 21);
  g->add_node("Add", {mm, g->add_constant("b3", normal_tensor({32}, 5, 0.1f))}, {add}, "bias", "", 21);
  g->add_node("Tanh", {add}, {th}, "tanh", "", 21);
  Node* n3 = g->add_node("Gemm", {th, g->add_constant("w4", normal_tensor({10, 32}, 6, 0.5f)),
                                  g->add_constant("b4", normal_tensor({10}, 7, 0.1f))},
                         {gemm}, "gemm", "", 21);
  n3->attrs.set("transB", int64_t{1});
  g->add_node("Softmax", {gemm}, {y}, "softmax", "", 21);
  g->outputs = {y};
  EXPECT_TRUE(infer_shapes(*g).ok());
  return g;
}

std::vector<std::map<std::string, Tensor>> batches(int n) {
  std::vector<std::map<std::string, Tensor>> out;
  for (int i = 0; i < n; ++i) out.push_back({{"x", normal_tensor({8, 8, 16, 16}, 100 + i, 1.0f)}});
  return out;
}

Expected<RangeTable> ranges_on(const std::string& backend, const std::string& algo, std::vector<std::string>* log) {
  CalibrationOptions o;
  o.backend = backend;
  auto a = parse_calibration_algorithm(algo);
  if (!a.ok()) return a.status();
  return collect_ranges(*conv_matmul_net(), batches(3), *a,
                        [log](std::string_view l) {
                          if (log) log->emplace_back(l);
                        },
                        o);
}

bool has(const std::vector<std::string>& log, const std::string& s) {
  return std::any_of(log.begin(), log.end(), [&](const std::string& l) { return l.find(s) != std::string::npos; });
}

TEST(CudaCalibration, RangesMatchTheCpu) {
  KILN_REQUIRE_GPU();
  std::vector<std::string> log;
  auto cpu_minmax = ranges_on("cpu", "minmax", nullptr);
  auto cuda_minmax = ranges_on("cuda", "minmax", &log);
  ASSERT_TRUE(cpu_minmax.ok()) << cpu_minmax.status().message();
  ASSERT_TRUE(cuda_minmax.ok()) << cuda_minmax.status().message();
  EXPECT_TRUE(has(log, "calibration: batch 3/3 (cuda)"));
  EXPECT_TRUE(has(log, "float32 cuda plan"));
  // Every float32 value: the input, each node's output.
  EXPECT_EQ(cpu_minmax->amax.size(), 12u);
  for (const auto& [name, amax] : cpu_minmax->amax) {
    ASSERT_TRUE(cuda_minmax->amax.count(name)) << name;
    EXPECT_NEAR(cuda_minmax->amax.at(name), amax, 1e-4 * amax) << name;
  }
  EXPECT_EQ(cuda_minmax->amax.size(), cpu_minmax->amax.size());
  // The histograms' bins (the first batch's max / 2048, doubled as the range grows) differ only by
  // the float rounding of that max: the thresholds agree within one bin (at most max / 1024).
  for (const char* algo : {"entropy", "percentile=99.9"}) {
    auto cpu = ranges_on("cpu", algo, nullptr);
    auto cuda = ranges_on("cuda", algo, nullptr);
    ASSERT_TRUE(cpu.ok()) << cpu.status().message();
    ASSERT_TRUE(cuda.ok()) << cuda.status().message();
    EXPECT_EQ(cuda->algorithm, cpu->algorithm);
    EXPECT_EQ(cuda->amax.size(), cpu->amax.size()) << algo;
    for (const auto& [name, amax] : cpu->amax) {
      ASSERT_TRUE(cuda->amax.count(name)) << algo << " " << name;
      const double bin = cpu_minmax->amax.at(name) / 1024.0;
      EXPECT_NEAR(cuda->amax.at(name), amax, bin * 1.001 + 1e-4 * amax) << algo << " " << name;
    }
  }
}

TEST(CudaCalibration, Int8BuildMatchesCpuCalibration) {
  KILN_REQUIRE_GPU();
  const std::string dir = "/tmp/kiln_cuda_calib_" + std::to_string(::getpid());
  std::filesystem::create_directories(dir);
  for (int i = 0; i < 3; ++i)
    ASSERT_TRUE(save_npy(dir + "/" + std::to_string(i) + ".npy", normal_tensor({8, 8, 16, 16}, 200 + i, 1.0f)).ok());
  auto build = [&](const std::string& calib_backend, std::vector<std::string>& log) {
    BuildOptions o;
    o.backend = "cuda";
    o.int8 = true;
    o.calibration.data.dir = dir;
    o.calibration.data.batch = 8;
    o.calibration.algorithm = "minmax";
    o.calibration.backend = calib_backend;
    o.input_shapes["x"] = {8, 8, 16, 16};  // the batches' shape (else the CUDA build fixes n = 1)
    o.timing_cache = dir + "/timing.cache";  // the second build reuses the first's timings: same tactics
    o.log = [&log](std::string_view l) { log.emplace_back(l); };
    Model m;
    m.graph = conv_matmul_net();
    return build_plan(std::move(m), o);
  };
  std::vector<std::string> log_cpu, log_cuda, log_default;
  auto cpu = build("cpu", log_cpu);
  ASSERT_TRUE(cpu.ok()) << cpu.status().message();
  auto cuda = build("cuda", log_cuda);
  ASSERT_TRUE(cuda.ok()) << cuda.status().message();
  auto dflt = build("", log_default);
  ASSERT_TRUE(dflt.ok()) << dflt.status().message();
  EXPECT_TRUE(has(log_cpu, "calibration: batch 3/3 (cpu)"));
  EXPECT_TRUE(has(log_cuda, "calibration: batch 3/3 (cuda)"));
  EXPECT_TRUE(has(log_default, "calibration: batch 3/3 (cuda)"));  // a CUDA build calibrates on CUDA
  EXPECT_TRUE(has(log_cuda, "layers quantized"));

  // The same layers, precisions and tactics. cuBLASLt algorithms are compared by kind only: on the
  // H200 the float Gemm's "lt:" algorithm differed between two builds despite the shared timing
  // cache (its heuristic's algorithm bytes are not stable, so it is timed again), which says
  // nothing about calibration.
  ASSERT_EQ(cuda->layers.size(), cpu->layers.size());
  ASSERT_EQ(cuda->graph->nodes().size(), cpu->graph->nodes().size());
  for (size_t i = 0; i < cpu->layers.size(); ++i) {
    const std::string what = cpu->graph->nodes()[i]->describe();
    EXPECT_EQ(cuda->graph->nodes()[i]->op_type, cpu->graph->nodes()[i]->op_type) << what;
    EXPECT_EQ(cuda->layers[i].precision, cpu->layers[i].precision) << what;
    const std::string& t = cpu->layers[i].tactic;
    if (t.rfind("lt:", 0) == 0)
      EXPECT_EQ(cuda->layers[i].tactic.substr(0, 3), "lt:") << what;
    else
      EXPECT_EQ(cuda->layers[i].tactic, t) << what;
  }
  // The scales: every float scalar constant (Q/DQ scales, folded or not) by name.
  auto scalars = [](const Graph& g) {
    std::map<std::string, float> s;
    for (const auto& n : g.nodes())
      for (const Value* v : n->inputs)
        if (v && v->constant && v->constant->numel() == 1 && v->constant->dtype() == DType::kFloat32)
          s[v->name] = v->constant->data<float>()[0];
    return s;
  };
  const auto a = scalars(*cpu->graph), b = scalars(*cuda->graph);
  EXPECT_FALSE(a.empty());
  ASSERT_EQ(a.size(), b.size());
  for (const auto& [name, value] : a) {
    ASSERT_TRUE(b.count(name)) << name;
    EXPECT_NEAR(b.at(name), value, 1e-4 * std::fabs(value)) << name;
  }
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace kiln::test
