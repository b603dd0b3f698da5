// insert_qdq on a small Conv -> MatMul -> Gemm graph (structure, per-channel weights, what stays
// float), calibrated end to end on the CPU (output close to float), and the cache giving the same plan.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <random>

#include <unistd.h>

#include "backends/cpu/cpu_executor.hpp"
#include "builder/backend.hpp"
#include "builder/builder.hpp"
#include "io/npy.hpp"
#include "ops/shape_inference.hpp"
#include "passes/pass.hpp"
#include "quant/calibration_cache.hpp"
#include "quant/calibrate.hpp"
#include "quant/qdq_insertion.hpp"

namespace kiln {
namespace {

Tensor random(Dims dims, uint32_t seed, float scale = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> n(0.0f, scale);
  Tensor t(DType::kFloat32, std::move(dims));
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = n(rng);
  return t;
}

// x[N,16,8,8] -> Conv(4 filters 3x3) -> Relu -> Flatten -> MatMul([144,6]) -> Gemm(transB=1, [5,6]) -> y
GraphPtr small_net() {
  auto g = std::make_shared<Graph>();
  Value* x = g->add_value("x", {DType::kFloat32, Shape({Dim::symbolic("n"), Dim(16), Dim(8), Dim(8)})});
  g->inputs = {x};
  Value* w = g->add_constant("w", random({4, 16, 3, 3}, 1, 0.3f));
  Value* b = g->add_constant("b", random({4}, 2));
  Value* conv = g->add_value("conv");
  Value* relu = g->add_value("relu");
  Value* flat = g->add_value("flat");
  Value* mm = g->add_value("mm");
  Value* y = g->add_value("y");
  Node* c = g->add_node("Conv", {x, w, b}, {conv}, "conv1", "", 21);
  c->attrs.set("kernel_shape", std::vector<int64_t>{3, 3});
  g->add_node("Relu", {conv}, {relu}, "relu1", "", 21);
  g->add_node("Flatten", {relu}, {flat}, "flatten", "", 21);
  g->add_node("MatMul", {flat, g->add_constant("w2", random({144, 6}, 3, 0.1f))}, {mm}, "matmul", "", 21);
  Node* gemm = g->add_node("Gemm", {mm, g->add_constant("w3", random({5, 6}, 4, 0.5f)),
                                    g->add_constant("b3", random({5}, 5))},
                           {y}, "gemm", "", 21);
  gemm->attrs.set("transB", int64_t{1});
  g->outputs = {y};
  EXPECT_TRUE(infer_shapes(*g).ok());
  return g;
}

std::vector<std::map<std::string, Tensor>> batches(int n, uint32_t seed) {
  std::vector<std::map<std::string, Tensor>> out;
  for (int i = 0; i < n; ++i) out.push_back({{"x", random({4, 16, 8, 8}, seed + i)}});
  return out;
}

const Node* producer_of_input(const Graph& g, const std::string& node, size_t i) {
  for (const auto& n : g.nodes())
    if (n->name == node) return n->inputs[i]->producer;
  return nullptr;
}

TEST(QdqInsertion, PutsQdqOnActivationsAndPerChannelDqOnWeights) {
  GraphPtr g = small_net();
  auto ranges = collect_ranges(*g, batches(2, 10), *parse_calibration_algorithm("minmax"));
  ASSERT_TRUE(ranges.ok()) << ranges.status().message();
  for (const char* v : {"x", "conv", "relu", "flat", "mm", "y"}) EXPECT_TRUE(ranges->amax.count(v)) << v;
  QuantizationReport report;
  QuantizationSpec spec;
  spec.report = &report;
  auto changed = insert_qdq(*g, *ranges, spec);
  ASSERT_TRUE(changed.ok()) << changed.status().message();
  EXPECT_TRUE(*changed);
  EXPECT_EQ(report.quantized.size(), 3u);
  EXPECT_TRUE(report.kept_float.empty());
  ASSERT_TRUE(infer_shapes(*g).ok());

  // Activations: Q -> DQ with scale amax/127 and an int8 zero point 0.
  const Node* dq = producer_of_input(*g, "conv1", 0);
  ASSERT_NE(dq, nullptr);
  EXPECT_EQ(dq->op_type, "DequantizeLinear");
  ASSERT_NE(dq->inputs[0]->producer, nullptr);
  EXPECT_EQ(dq->inputs[0]->producer->op_type, "QuantizeLinear");
  EXPECT_FLOAT_EQ(dq->inputs[1]->constant->data<float>()[0], ranges->amax.at("x") / 127.0f);
  EXPECT_EQ(dq->inputs[2]->constant->dtype(), DType::kInt8);
  // Weights: constant int8 through a per-channel DQ along the output-channel axis.
  struct Want { const char* node; int64_t axis; int64_t channels; };
  for (Want want : {Want{"conv1", 0, 4}, Want{"matmul", 1, 6}, Want{"gemm", 0, 5}}) {
    const Node* wdq = producer_of_input(*g, want.node, 1);
    ASSERT_NE(wdq, nullptr) << want.node;
    EXPECT_EQ(wdq->op_type, "DequantizeLinear");
    EXPECT_EQ(wdq->attrs.i("axis", 1), want.axis) << want.node;
    ASSERT_TRUE(wdq->inputs[0]->is_constant());
    EXPECT_EQ(wdq->inputs[0]->constant->dtype(), DType::kInt8);
    EXPECT_EQ(wdq->inputs[1]->constant->dims(), (Dims{want.channels}));
    // Each channel uses the full range: some |q| == 127.
    const Tensor& q = *wdq->inputs[0]->constant;
    int max_q = 0;
    for (int64_t i = 0; i < q.numel(); ++i) max_q = std::max(max_q, std::abs(int(q.data<int8_t>()[i])));
    EXPECT_EQ(max_q, 127);
  }
  // Conv bias and Gemm C stay float.
  for (const auto& n : g->nodes())
    if (n->name == "conv1" || n->name == "gemm") {
      EXPECT_TRUE(n->inputs[2]->is_constant()) << n->name;
    }
}

TEST(QdqInsertion, SimulatedInt8OutputIsCloseToFloat) {
  for (const char* algo : {"minmax", "entropy", "percentile=99.99"}) {
    GraphPtr ref = small_net();
    GraphPtr q = small_net();
    auto ranges = collect_ranges(*q, batches(4, 20), *parse_calibration_algorithm(algo));
    ASSERT_TRUE(ranges.ok()) << ranges.status().message();
    ASSERT_TRUE(insert_qdq(*q, *ranges, QuantizationSpec{}).ok());
    ASSERT_TRUE(infer_shapes(*q).ok());
    auto e_ref = CpuExecutor::create(ref);
    auto e_q = CpuExecutor::create(q);
    ASSERT_TRUE(e_ref.ok() && e_q.ok());
    auto in = random({4, 16, 8, 8}, 99);
    auto a = (*e_ref)->run({{"x", in}});
    auto b = (*e_q)->run({{"x", in}});
    ASSERT_TRUE(a.ok() && b.ok());
    double dot = 0, na = 0, nb = 0, diff = 0;
    const Tensor& ta = (*a)[0];
    const Tensor& tb = (*b)[0];
    for (int64_t i = 0; i < ta.numel(); ++i) {
      double x = ta.data<float>()[i], y = tb.data<float>()[i];
      dot += x * y;
      na += x * x;
      nb += y * y;
      diff += std::fabs(x - y);
    }
    EXPECT_GT(dot / std::sqrt(na * nb), 0.99) << algo;
    EXPECT_GT(diff, 0.0) << algo;  // it is quantized: not bit-identical
  }
}

TEST(QdqInsertion, KeepsFloatByRequestAndWithoutRangesWithReasons) {
  GraphPtr g = small_net();
  RangeTable ranges;
  ranges.algorithm = "minmax";
  ranges.amax = {{"x", 3.0f}, {"flat", 2.0f}};  // none for "mm": the Gemm stays float
  QuantizationReport report;
  QuantizationSpec spec;
  spec.keep_float = {"conv1"};
  spec.report = &report;
  auto changed = insert_qdq(*g, ranges, spec);
  ASSERT_TRUE(changed.ok());
  ASSERT_EQ(report.quantized.size(), 1u);
  EXPECT_NE(report.quantized[0].find("matmul"), std::string::npos);
  ASSERT_EQ(report.kept_float.size(), 2u);
  EXPECT_NE(report.kept_float[0].first.find("conv1"), std::string::npos);
  EXPECT_EQ(report.kept_float[0].second, "kept float by request");
  EXPECT_NE(report.kept_float[1].first.find("gemm"), std::string::npos);
  EXPECT_EQ(report.kept_float[1].second, "no calibrated range for input 'mm'");
  EXPECT_EQ(producer_of_input(*g, "conv1", 0), nullptr);
  EXPECT_TRUE(infer_shapes(*g).ok());

  // A second pass over the Q/DQ graph changes nothing: the MatMul's inputs come from DQs now.
  QuantizationReport again;
  spec.report = &again;
  spec.keep_float.clear();
  ranges.amax["mm"] = 1.0f;
  auto changed2 = insert_qdq(*g, ranges, spec);
  ASSERT_TRUE(changed2.ok());
  bool matmul_blocked = false;
  for (const auto& [node, why] : again.kept_float)
    if (node.find("matmul") != std::string::npos) matmul_blocked = why.find("DequantizeLinear") != std::string::npos;
  EXPECT_TRUE(matmul_blocked);
}

TEST(QdqInsertion, SharesOneQdqPairPerValue) {
  auto g = std::make_shared<Graph>();
  Value* x = g->add_value("x", {DType::kFloat32, Shape({Dim(2), Dim(3)})});
  g->inputs = {x};
  Value* a = g->add_value("a");
  Value* b = g->add_value("b");
  g->add_node("MatMul", {x, g->add_constant("w1", random({3, 4}, 1))}, {a}, "m1", "", 21);
  g->add_node("MatMul", {x, g->add_constant("w2", random({3, 4}, 2))}, {b}, "m2", "", 21);
  g->outputs = {a, b};
  ASSERT_TRUE(infer_shapes(*g).ok());
  RangeTable r;
  r.amax = {{"x", 1.0f}};
  ASSERT_TRUE(insert_qdq(*g, r, QuantizationSpec{}).ok());
  int q = 0;
  for (const auto& n : g->nodes()) q += n->op_type == "QuantizeLinear";
  EXPECT_EQ(q, 1);
  EXPECT_EQ(producer_of_input(*g, "m1", 0), producer_of_input(*g, "m2", 0));
}

// FP8: GEMMs reading one activation get one weight scale (the largest amax / 448), so that the CUDA
// backend can merge them exactly (fp8-qkv-merge); INT8 keeps per-channel scales per weight.
TEST(QdqInsertion, Fp8WeightsOfOneInputShareAScale) {
  auto g = std::make_shared<Graph>();
  Value* x = g->add_value("x", {DType::kFloat32, Shape({Dim(2), Dim(3)})});
  Value* x2 = g->add_value("x2", {DType::kFloat32, Shape({Dim(2), Dim(3)})});
  g->inputs = {x, x2};
  Value* a = g->add_value("a");
  Value* b = g->add_value("b");
  Value* c = g->add_value("c");
  Tensor w2 = random({3, 4}, 2);
  for (int64_t i = 0; i < w2.numel(); ++i) w2.data<float>()[i] *= 5.0f;  // the largest amax
  g->add_node("MatMul", {x, g->add_constant("w1", random({3, 4}, 1))}, {a}, "m1", "", 21);
  g->add_node("MatMul", {x, g->add_constant("w2", w2)}, {b}, "m2", "", 21);
  g->add_node("MatMul", {x2, g->add_constant("w3", random({3, 4}, 3))}, {c}, "m3", "", 21);
  g->outputs = {a, b, c};
  ASSERT_TRUE(infer_shapes(*g).ok());
  RangeTable r;
  r.amax = {{"x", 1.0f}, {"x2", 1.0f}};
  QuantizationSpec spec;
  spec.qtype = DType::kFloat8E4M3FN;
  ASSERT_TRUE(insert_qdq(*g, r, spec).ok());
  auto weight_scale = [&](const char* node) {
    for (const auto& n : g->nodes())
      if (n->name == node) return n->inputs[1]->producer->inputs[1]->constant->scalar_as_double();
    return -1.0;
  };
  float amax2 = 0;
  for (int64_t i = 0; i < w2.numel(); ++i) amax2 = std::max(amax2, std::fabs(w2.data<float>()[i]));
  EXPECT_FLOAT_EQ(weight_scale("m1"), amax2 / kFloat8E4M3Max);
  EXPECT_FLOAT_EQ(weight_scale("m2"), amax2 / kFloat8E4M3Max);
  EXPECT_LT(weight_scale("m3"), amax2 / kFloat8E4M3Max / 2);  // another input: its own scale
}

TEST(QdqInsertion, ConstantFoldingKeepsWeightDequantize) {
  GraphPtr g = small_net();
  RangeTable r;
  r.amax = {{"x", 1.0f}, {"flat", 1.0f}, {"mm", 1.0f}};
  ASSERT_TRUE(insert_qdq(*g, r, QuantizationSpec{}).ok());
  auto fold = make_constant_folding_pass();
  ASSERT_TRUE(fold->run(*g).ok());
  int dq = 0;
  for (const auto& n : g->nodes()) dq += n->op_type == "DequantizeLinear";
  EXPECT_EQ(dq, 6);  // 3 activations + 3 weights: the backends' fusion needs the weights' DQ
  for (const char* node : {"conv1", "matmul", "gemm"}) EXPECT_NE(producer_of_input(*g, node, 1), nullptr) << node;
}

TEST(QdqInsertion, CudaQdqFusionTakesTheInsertedPatterns) {
  // What insert_qdq writes is what the CUDA pipeline's qdq-fusion expects (here run on the CPU,
  // whose kiln.QConv kernel is the reference): the Conv fuses and the result matches the Q/DQ graph.
  GraphPtr g = small_net();
  g->inputs[0]->type.shape = Shape({Dim(4), Dim(16), Dim(8), Dim(8)});  // CUDA plans have static shapes
  ASSERT_TRUE(infer_shapes(*g).ok());
  auto ranges = collect_ranges(*g, batches(2, 30), *parse_calibration_algorithm("minmax"));
  ASSERT_TRUE(ranges.ok());
  ASSERT_TRUE(insert_qdq(*g, *ranges, QuantizationSpec{}).ok());
  ASSERT_TRUE(infer_shapes(*g).ok());
  auto in = random({4, 16, 8, 8}, 7);
  auto simulated = (*CpuExecutor::create(g))->run({{"x", in}});
  ASSERT_TRUE(simulated.ok());
  auto fused = make_qdq_fusion_pass()->run(*g);
  ASSERT_TRUE(fused.ok()) << fused.status().message();
  EXPECT_TRUE(*fused);
  bool qconv = false;
  for (const auto& n : g->nodes()) qconv |= n->domain == "kiln" && n->op_type == "QConv";
  EXPECT_TRUE(qconv);
  ASSERT_TRUE(infer_shapes(*g).ok());
  auto exec = CpuExecutor::create(g);
  ASSERT_TRUE(exec.ok()) << exec.status().message();
  auto out = (*exec)->run({{"x", in}});
  ASSERT_TRUE(out.ok()) << out.status().message();
  const Tensor& a = (*simulated)[0];
  const Tensor& b = (*out)[0];
  ASSERT_EQ(a.dims(), b.dims());
  for (int64_t i = 0; i < a.numel(); ++i) EXPECT_NEAR(a.data<float>()[i], b.data<float>()[i], 1e-3) << i;
}

std::string tmp(const std::string& name) {
  return (std::filesystem::temp_directory_path() / ("kiln_qdq_" + std::to_string(::getpid()) + "_" + name)).string();
}

Expected<std::string> build_bytes(const BuildOptions& o) {
  Model m;
  m.graph = small_net();
  KILN_ASSIGN_OR_RETURN(Plan plan, build_plan(std::move(m), o));
  plan.build_seconds = 0;  // the one field that differs between builds
  return serialize_plan(plan);
}

TEST(QdqInsertion, CalibrationCacheGivesTheSamePlan) {
  const std::string dir = tmp("data"), cache = tmp("model.cache");
  std::filesystem::create_directories(dir);
  for (int i = 0; i < 3; ++i)
    ASSERT_TRUE(save_npy(dir + "/" + std::to_string(i) + ".npy", random({2, 16, 8, 8}, i)).ok());
  std::filesystem::remove(cache);
  std::vector<std::string> log;
  BuildOptions o;
  o.backend = "cpu";
  o.int8 = true;
  o.calibration.data.dir = dir;
  o.calibration.data.batch = 2;
  o.calibration.algorithm = "percentile=99.9";
  o.calibration.cache = cache;
  o.log = [&log](std::string_view l) { log.emplace_back(l); };
  auto first = build_bytes(o);
  ASSERT_TRUE(first.ok()) << first.status().message();
  ASSERT_TRUE(std::filesystem::exists(cache));
  auto has = [&log](const std::string& s) {
    for (const std::string& l : log)
      if (l.find(s) != std::string::npos) return true;
    return false;
  };
  EXPECT_TRUE(has("calibration: batch 3/3"));
  EXPECT_TRUE(has("int8: 3 layers quantized, 0 kept float"));
  log.clear();
  std::filesystem::remove_all(dir);  // the cache alone must do
  auto second = build_bytes(o);
  ASSERT_TRUE(second.ok()) << second.status().message();
  EXPECT_TRUE(has("using cache"));
  EXPECT_FALSE(has("calibration: batch"));
  EXPECT_EQ(*first, *second);

  // Another algorithm: a warning, then recalibration, which needs the data (gone): an error.
  o.calibration.algorithm = "minmax";
  log.clear();
  auto third = build_bytes(o);
  ASSERT_FALSE(third.ok());
  EXPECT_TRUE(has("warning: calibration cache"));
  EXPECT_NE(third.status().message().find("does not exist"), std::string::npos) << third.status().message();
  // Without --calib-data at all, the message says that there is nothing to recalibrate with.
  o.calibration.data.dir.clear();
  auto fourth = build_bytes(o);
  ASSERT_FALSE(fourth.ok());
  EXPECT_NE(fourth.status().message().find("no --calib-data"), std::string::npos) << fourth.status().message();
  std::filesystem::remove(cache);
}

// --calib-backend: "cpu" (or empty) is the CPU executor as before; an unknown name, or "cuda" where
// no CUDA backend can run (this test binary links none), is an error naming the flag.
TEST(QdqInsertion, CalibrationBackendChoice) {
  EXPECT_EQ(check_calibration_backend("").value(), "cpu");
  EXPECT_EQ(check_calibration_backend("cpu").value(), "cpu");
  auto bad = check_calibration_backend("gpu");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("'gpu'"), std::string::npos) << bad.status().message();
  const Backend* cuda = find_backend("cuda");
  const bool have_cuda = cuda && cuda->available().ok();
  auto c = check_calibration_backend("cuda");
  EXPECT_EQ(c.ok(), have_cuda);
  if (!have_cuda) {
    EXPECT_NE(c.status().message().find("--calib-backend cuda"), std::string::npos) << c.status().message();
  }

  // The CPU path: explicit "cpu" equals the default, progress lines name it, and the input's
  // minmax range is its largest |x|.
  const auto data = batches(3, 40);
  const auto algo = *parse_calibration_algorithm("minmax");
  std::vector<std::string> log;
  CalibrationOptions cpu;
  cpu.backend = "cpu";
  auto a = collect_ranges(*small_net(), data, algo, {});
  auto b = collect_ranges(*small_net(), data, algo, [&log](std::string_view l) { log.emplace_back(l); }, cpu);
  ASSERT_TRUE(a.ok()) << a.status().message();
  ASSERT_TRUE(b.ok()) << b.status().message();
  EXPECT_EQ(a->amax, b->amax);
  ASSERT_EQ(log.size(), 4u);  // three batches, then where the time went
  EXPECT_EQ(log[2], "calibration: batch 3/3 (cpu)");
  EXPECT_NE(log[3].find("s running the float32 model (cpu), "), std::string::npos) << log[3];
  float max_x = 0;
  for (const auto& batch : data)
    for (int64_t i = 0; i < batch.at("x").numel(); ++i) max_x = std::max(max_x, std::fabs(batch.at("x").data<float>()[i]));
  EXPECT_FLOAT_EQ(a->amax.at("x"), max_x);
  if (!have_cuda) {
    CalibrationOptions on_cuda;
    on_cuda.backend = "cuda";
    auto r = collect_ranges(*small_net(), data, algo, {}, on_cuda);
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.status().message().find("no CUDA backend"), std::string::npos) << r.status().message();
  }
}

// Large batches: the histograms are filled on several threads (one per value at a time); the
// ranges equal those of histograms filled here one value after another.
TEST(QdqInsertion, ThreadedHistogramsEqualSerialOnes) {
  auto g = std::make_shared<Graph>();
  Value* x = g->add_value("x", {DType::kFloat32, Shape({Dim::symbolic("n"), Dim(3), Dim(128), Dim(128)})});
  g->inputs = {x};
  Value* r = g->add_value("r");
  Value* ng = g->add_value("ng");
  Value* sq = g->add_value("sq");
  g->add_node("Relu", {x}, {r}, "relu", "", 21);
  g->add_node("Neg", {r}, {ng}, "neg", "", 21);
  g->add_node("Mul", {x, x}, {sq}, "square", "", 21);
  g->outputs = {ng, sq};
  ASSERT_TRUE(infer_shapes(*g).ok());
  std::vector<std::map<std::string, Tensor>> data;
  for (int b = 0; b < 3; ++b) data.push_back({{"x", random({16, 3, 128, 128}, 70 + b, 1.0f + b)}});
  for (const char* name : {"entropy", "percentile=99.9", "minmax"}) {
    const auto algo = *parse_calibration_algorithm(name);
    auto got = collect_ranges(*g, data, algo);
    ASSERT_TRUE(got.ok()) << got.status().message();
    std::map<std::string, Histogram> want;
    for (const auto& batch : data) {
      const Tensor& t = batch.at("x");
      std::vector<float> relu(t.numel()), neg(t.numel()), square(t.numel());
      for (int64_t i = 0; i < t.numel(); ++i) {
        const float v = t.data<float>()[i];
        relu[i] = std::max(v, 0.0f);
        neg[i] = -relu[i];
        square[i] = v * v;
      }
      want["x"].add(t.data<float>(), t.numel());
      want["r"].add(relu.data(), t.numel());
      want["ng"].add(neg.data(), t.numel());
      want["sq"].add(square.data(), t.numel());
    }
    ASSERT_EQ(got->amax.size(), 4u) << name;
    for (const auto& [v, h] : want) EXPECT_EQ(got->amax.at(v), static_cast<float>(choose_amax(h, algo))) << name << v;
  }
}

// In a build: the default is the build's backend (a CPU build calibrates on the CPU); an asked-for
// backend that cannot run fails the build rather than quietly using another.
TEST(QdqInsertion, BuildCalibrationBackend) {
  const std::string dir = tmp("data_backend");
  std::filesystem::create_directories(dir);
  for (int i = 0; i < 2; ++i)
    ASSERT_TRUE(save_npy(dir + "/" + std::to_string(i) + ".npy", random({2, 16, 8, 8}, 50 + i)).ok());
  std::vector<std::string> log;
  BuildOptions o;
  o.backend = "cpu";
  o.int8 = true;
  o.calibration.data.dir = dir;
  o.calibration.data.batch = 2;
  o.log = [&log](std::string_view l) { log.emplace_back(l); };
  auto dflt = build_bytes(o);
  ASSERT_TRUE(dflt.ok()) << dflt.status().message();
  EXPECT_NE(std::find(log.begin(), log.end(), "calibration: batch 2/2 (cpu)"), log.end());
  o.calibration.backend = "cpu";
  auto cpu = build_bytes(o);
  ASSERT_TRUE(cpu.ok()) << cpu.status().message();
  EXPECT_EQ(*cpu, *dflt);
  o.calibration.backend = "tpu";
  auto bad = build_bytes(o);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("unknown calibration backend 'tpu'"), std::string::npos)
      << bad.status().message();
  const Backend* cuda = find_backend("cuda");
  if (!cuda || !cuda->available().ok()) {
    o.calibration.backend = "cuda";
    auto no_gpu = build_bytes(o);
    ASSERT_FALSE(no_gpu.ok());
    EXPECT_NE(no_gpu.status().message().find("--calib-backend cuda"), std::string::npos) << no_gpu.status().message();
  }
  std::filesystem::remove_all(dir);
}

TEST(QdqInsertion, CacheOfAnotherModelIsReplaced) {
  const std::string dir = tmp("data2"), cache = tmp("other.cache");
  std::filesystem::create_directories(dir);
  ASSERT_TRUE(save_npy(dir + "/0.npy", random({2, 16, 8, 8}, 1)).ok());
  RangeTable other;
  other.algorithm = "entropy";
  other.amax = {{"not_in_this_model", 1.0f}};
  ASSERT_TRUE(write_calibration_cache(cache, other).ok());
  CalibrationOptions c;
  c.data.dir = dir;
  c.data.batch = 2;
  c.cache = cache;
  std::vector<std::string> log;
  c.data.log = [&log](std::string_view l) { log.emplace_back(l); };
  GraphPtr g = small_net();
  auto ranges = calibrate(*g, c);
  ASSERT_TRUE(ranges.ok()) << ranges.status().message();
  ASSERT_FALSE(log.empty());
  EXPECT_NE(log[0].find("names 1 values this model lacks (e.g. 'not_in_this_model')"), std::string::npos) << log[0];
  EXPECT_TRUE(ranges->amax.count("conv"));
  auto rewritten = read_calibration_cache(cache);
  ASSERT_TRUE(rewritten.ok());
  EXPECT_EQ(rewritten->amax, ranges->amax);
  std::filesystem::remove_all(dir);
  std::filesystem::remove(cache);
}

}  // namespace
}  // namespace kiln
