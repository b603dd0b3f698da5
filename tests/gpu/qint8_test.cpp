// INT8 on CUDA: QuantizeLinear/DequantizeLinear layers, kiln.QConv / kiln.QMatMul (every tactic)
// against the CPU reference, the PyTorch fake-quant CNN built into INT8 layers, and (printed, not
// asserted) INT8 vs FP16 convolution timings at a ResNet shape.
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>

#include "backends/cuda/cuda_layer.hpp"
#include "gpu_test_util.hpp"
#include "io/npy.hpp"
#include "onnx/importer.hpp"

namespace kiln::test {
namespace {

Tensor scalar_of(DType t, double v) {
  Tensor d(DType::kFloat64, {});
  *d.data<double>() = v;
  return d.cast(t);
}

Tensor int8_random(Dims d, uint32_t seed) { return random_tensor(DType::kInt8, std::move(d), seed, -128, 128); }

// Runs every tactic the layer offers; a tactic that cannot be created or run (cuDNN refusing an
// int8 algorithm: the builder's timer skips those too) is listed, one that runs must match the
// CPU within `tol` rel L2 (int8 outputs compare as their integer values: the dequantized error).
// At least `min_ok` tactics must run; `prefix` set: only the tactics whose names start with it.
::testing::AssertionResult tactics_match_cpu(const OpCall& call, double tol, size_t min_ok = 1,
                                             const std::string& prefix = "") {
  BuildOptions options;
  options.backend = "cuda";
  auto cpu = run_op(call);
  if (!cpu.ok()) return ::testing::AssertionFailure() << "CPU: " << cpu.status().message();
  Model model;
  model.graph = make_op_graph(call);
  auto plan = build_plan(std::move(model), options);
  if (!plan.ok()) return ::testing::AssertionFailure() << "build: " << plan.status().message();
  const auto& nodes = plan->graph->nodes();
  size_t index = nodes.size();
  for (size_t i = 0; i < nodes.size(); ++i)
    if (nodes[i]->op_type == call.op_type) index = i;
  if (index == nodes.size()) return ::testing::AssertionFailure() << "no " << call.op_type << " in the plan";
  const Node& node = *nodes[index];
  auto tactics = cuda::find_cuda_layer(node)->tactics(node, options);
  std::erase_if(tactics, [&](const std::string& t) { return t.rfind(prefix, 0) != 0; });
  std::map<std::string, Tensor> feeds;
  for (const Value* v : plan->graph->inputs) feeds[v->name] = call.inputs[static_cast<size_t>(std::stoi(v->name.substr(2)))];
  size_t ok = 0;
  std::string wrong;
  std::string report = "chosen '" + plan->layers[index].tactic + "';";
  for (const std::string& t : tactics) {
    Plan p = *plan;
    p.layers[index].tactic = t;
    auto engine = Engine::from_plan(std::move(p));
    Expected<std::vector<Tensor>> gpu = Status(StatusCode::kInternal, "no engine");
    if (engine.ok()) {
      auto ctx = (*engine)->create_context();
      if (ctx.ok()) gpu = (*ctx)->run(feeds);
      else gpu = ctx.status();
    } else {
      gpu = engine.status();
    }
    if (!gpu.ok()) {
      report += " " + t.substr(0, 24) + ": does not run (" + gpu.status().message().substr(0, 120) + ");";
      continue;
    }
    const Tensor &c = (*cpu)[0], &g = (*gpu)[0];
    if (c.dtype() != g.dtype() || c.dims() != g.dims())
      return ::testing::AssertionFailure() << "tactic " << t << ": CUDA " << g.describe() << " vs CPU " << c.describe();
    const double err = rel_l2(g, c);
    if (!(err <= tol)) {  // every tactic is reported: which ones are wrong matters
      wrong += " " + t + ": rel L2 " + std::to_string(err) + ";";
      continue;
    }
    report += " " + t.substr(0, 24) + " ok;";
    ++ok;
  }
  std::cout << call.op_type << ": " << ok << "/" << tactics.size() << " tactics ran: " << report << "\n";
  if (!wrong.empty()) return ::testing::AssertionFailure() << "wrong:" << wrong << " (" << report << ")";
  if (ok < min_ok) return ::testing::AssertionFailure() << "only " << ok << " tactics ran: " << report;
  return ::testing::AssertionSuccess();
}

TEST(CudaQdq, QuantizeAndDequantizeMatchCpu) {
  KILN_REQUIRE_GPU();
  for (DType xt : {DType::kFloat32, DType::kFloat16}) {
    // Per tensor, int8, zero point 0.
    OpCall q{.op_type = "QuantizeLinear",
             .inputs = {random_tensor(xt, {2, 5, 7, 3}, 1), scalar_of(xt, 0.013), Tensor(DType::kInt8, {})}};
    *q.inputs[2].data<int8_t>() = 0;
    q.constant_inputs = {false, true, true};
    EXPECT_TRUE(matches_cpu(q, 1e-6)) << dtype_name(xt);
    // Per axis 1, uint8 with zero points.
    Tensor zp = random_tensor(DType::kUInt8, {5}, 2, 100, 150);
    q.inputs = {random_tensor(xt, {2, 5, 7, 3}, 3), random_tensor(xt, {5}, 4, 0.01, 0.03), zp};
    EXPECT_TRUE(matches_cpu(q, 1e-6)) << dtype_name(xt);
    // DequantizeLinear: int8 per axis 0, and uint8 with a zero point per tensor.
    OpCall dq{.op_type = "DequantizeLinear",
              .inputs = {int8_random({6, 4, 3}, 5), random_tensor(xt, {6}, 6, 0.01, 0.03)}};
    dq.attrs.set("axis", int64_t{0});
    EXPECT_TRUE(matches_cpu(dq, 1e-6)) << dtype_name(xt);
    dq.attrs = {};
    dq.inputs = {random_tensor(DType::kUInt8, {6, 4, 3}, 7, 0, 256), scalar_of(xt, 0.02), Tensor(DType::kUInt8, {})};
    *dq.inputs[2].data<uint8_t>() = 128;
    EXPECT_TRUE(matches_cpu(dq, 1e-6)) << dtype_name(xt);
  }
}

struct QCase {
  Dims x, w;  // QConv: NCHW, MCkk; QMatMul: (..., K), (N, K)
  int64_t stride = 1, pad = 0;
  DType ft = DType::kFloat32;  // the scales' (and float output's) dtype
  bool bias = true, relu = true;
  int z = 0;  // 0 none, 1 float, 2 int8
  bool int8_out = false;
};

OpCall q_layer_call(const char* op, const QCase& c, const Dims& ydims) {
  const int64_t m = c.w[0];
  OpCall call{.op_type = op, .domain = "kiln"};
  call.inputs = {int8_random(c.x, 1), scalar_of(c.ft, 0.02), int8_random(c.w, 2),
                 random_tensor(DType::kFloat32, {m}, 3, 0.002, 0.01).cast(c.ft),
                 c.bias ? random_tensor(c.ft, {m}, 4, -1, 1) : Tensor()};
  call.inputs.push_back(c.z == 1 ? random_tensor(c.ft, ydims, 5) : c.z == 2 ? int8_random(ydims, 5) : Tensor());
  call.inputs.push_back(c.z == 2 ? scalar_of(c.ft, 0.03) : Tensor());
  call.inputs.push_back(c.int8_out ? scalar_of(c.ft, 0.05) : Tensor());
  while (!call.inputs.back().defined()) call.inputs.pop_back();
  call.constant_inputs = {false, true, true, true, true, false, true, true};
  call.attrs.set("activation", std::string(c.relu ? "Relu" : ""));
  if (std::string(op) == "QConv") {
    call.attrs.set("strides", Dims{c.stride, c.stride});
    call.attrs.set("pads", Dims{c.pad, c.pad, c.pad, c.pad});
  }
  return call;
}

TEST(CudaQConv, AllTacticsMatchCpu) {
  KILN_REQUIRE_GPU();
  const std::vector<QCase> cases = {
      // ResNet-like 3x3 + int8 residual + Relu, requantized; 3-channel stem (channels padded),
      // stride 2; 1x1 with float16 output and residual; 10 output channels (padded to 12).
      {{2, 32, 14, 14}, {32, 32, 3, 3}, 1, 1, DType::kFloat32, true, true, 2, true},
      {{2, 3, 17, 17}, {16, 3, 3, 3}, 2, 1, DType::kFloat32, true, true, 0, false},
      {{2, 64, 9, 9}, {32, 64, 1, 1}, 1, 0, DType::kFloat16, true, false, 1, false},
      {{1, 16, 8, 8}, {10, 16, 3, 3}, 1, 1, DType::kFloat32, false, false, 1, true},
  };
  for (const QCase& c : cases) {
    const int64_t oh = (c.x[2] + 2 * c.pad - c.w[2]) / c.stride + 1, ow = (c.x[3] + 2 * c.pad - c.w[3]) / c.stride + 1;
    // direct and at least one cuBLASLt GEMM tactic must run
    EXPECT_TRUE(tactics_match_cpu(q_layer_call("QConv", c, {c.x[0], c.w[0], oh, ow}), 1e-2, 2))
        << dims_to_string(c.x) << " * " << dims_to_string(c.w);
  }
}

// The call in NHWC layout: X and Z (N, H, W, C) (random values: only the dims change), W as it is.
OpCall to_nhwc_call(OpCall call) {
  call.attrs.set("layout", std::string("NHWC"));
  auto nhwc = [](const Dims& d) { return Dims{d[0], d[2], d[3], d[1]}; };
  const Tensor& x = call.inputs[0];
  call.inputs[0] = int8_random(nhwc(x.dims()), 11);
  if (call.inputs.size() > 5 && call.inputs[5].defined()) {
    const Tensor& z = call.inputs[5];
    call.inputs[5] = z.dtype() == DType::kInt8 ? int8_random(nhwc(z.dims()), 12)
                                                : random_tensor(z.dtype(), nhwc(z.dims()), 12);
  }
  return call;
}

// The cuDNN graph-API tactics ("cudnn_f32:" configs): at least one must run per case
// and every one that runs must match the CPU kernel. 64/256 channels, 1x1 and 3x3, strides,
// bias, float and int8 residuals, Relu, int8 and float16 outputs.
TEST(CudaQConvGraph, GraphTacticsMatchCpu) {
  KILN_REQUIRE_GPU();
  setenv("KILN_QCONV_CUDNN_GRAPH", "1", 1);  // offered only on request until verified here
  const std::vector<QCase> cases = {
      {{2, 64, 14, 14}, {64, 64, 3, 3}, 1, 1, DType::kFloat32, true, true, 2, true},
      {{2, 64, 14, 14}, {64, 64, 3, 3}, 2, 1, DType::kFloat16, true, true, 1, false},
      {{2, 256, 7, 7}, {64, 256, 1, 1}, 1, 0, DType::kFloat16, true, false, 0, false},
      {{2, 64, 7, 7}, {256, 64, 1, 1}, 1, 0, DType::kFloat32, true, true, 2, true},
      {{2, 256, 7, 7}, {256, 256, 3, 3}, 1, 1, DType::kFloat16, false, true, 0, true},
      {{1, 256, 8, 8}, {256, 256, 1, 1}, 2, 0, DType::kFloat32, true, false, 1, false},
  };
  for (const QCase& c : cases) {
    const int64_t oh = (c.x[2] + 2 * c.pad - c.w[2]) / c.stride + 1, ow = (c.x[3] + 2 * c.pad - c.w[3]) / c.stride + 1;
    const OpCall call = q_layer_call("QConv", c, {c.x[0], c.w[0], oh, ow});
    EXPECT_TRUE(tactics_match_cpu(call, 1e-2, 1, "cudnn_"))
        << dims_to_string(c.x) << " * " << dims_to_string(c.w) << " stride " << c.stride;
    EXPECT_TRUE(tactics_match_cpu(to_nhwc_call(call), 1e-2, 1, "cudnn_"))
        << "NHWC " << dims_to_string(c.x) << " * " << dims_to_string(c.w) << " stride " << c.stride;
  }
  unsetenv("KILN_QCONV_CUDNN_GRAPH");
}

// NHWC layout (int8 X used as it is, Y written NHWC), every tactic (direct, cuBLASLt, cuDNN).
TEST(CudaQConv, NhwcAllTacticsMatchCpu) {
  KILN_REQUIRE_GPU();
  const std::vector<QCase> cases = {
      {{2, 32, 14, 14}, {32, 32, 3, 3}, 1, 1, DType::kFloat32, true, true, 2, true},
      {{2, 64, 9, 9}, {36, 64, 1, 1}, 1, 0, DType::kFloat16, true, false, 1, false},
      {{2, 16, 9, 9}, {16, 16, 3, 3}, 2, 1, DType::kFloat16, false, true, 0, true},
  };
  for (const QCase& c : cases) {
    const int64_t oh = (c.x[2] + 2 * c.pad - c.w[2]) / c.stride + 1, ow = (c.x[3] + 2 * c.pad - c.w[3]) / c.stride + 1;
    EXPECT_TRUE(tactics_match_cpu(to_nhwc_call(q_layer_call("QConv", c, {c.x[0], c.w[0], oh, ow})), 1e-2, 2))
        << dims_to_string(c.x) << " * " << dims_to_string(c.w);
  }
}

TEST(CudaQMatMul, AllTacticsMatchCpu) {
  KILN_REQUIRE_GPU();
  const std::vector<QCase> cases = {
      {{2, 24, 64}, {48, 64}, 1, 0, DType::kFloat32, true, true, 2, true},
      {{16, 32}, {24, 32}, 1, 0, DType::kFloat16, true, false, 1, false},
      {{5, 8}, {12, 8}, 1, 0, DType::kFloat32, false, true, 0, false},
      // igemm_s8 as a 1x1 convolution: float16 Y with a float16 residual (fused), many rows with an
      // int8 residual and int8 Y over 384 channels (fused, the 256-channel wgmma tile too)
      {{4, 50, 128}, {160, 128}, 1, 0, DType::kFloat16, true, true, 1, false},
      {{8, 128, 256}, {384, 256}, 1, 0, DType::kFloat32, true, false, 2, true},
  };
  for (const QCase& c : cases) {
    Dims y = c.x;
    y.back() = c.w[0];
    EXPECT_TRUE(tactics_match_cpu(q_layer_call("QMatMul", c, y), 1e-2, 2)) << dims_to_string(c.x);
  }
}

std::string qdq_cnn_dir() {
  if (const char* env = std::getenv("KILN_QDQ_CNN_DIR")) return env;
  if (std::filesystem::exists("tests/models/data/qdq_cnn/model.onnx")) return "tests/models/data/qdq_cnn";
  return std::string(KILN_SOURCE_DIR) + "/tests/models/data/qdq_cnn";
}


TEST(CudaQdqModel, QatCnnBuildsInt8Layers) {
  KILN_REQUIRE_GPU();
  const std::string dir = qdq_cnn_dir();
  auto model = import_onnx_file(dir + "/model.onnx");
  ASSERT_TRUE(model.ok()) << model.status().message();
  auto x = load_npy(dir + "/input_0.npy");
  auto expected = load_npy(dir + "/expected_0.npy");
  ASSERT_TRUE(x.ok() && expected.ok());
  BuildOptions o;
  o.backend = "cuda";
  auto plan = build_plan(std::move(*model), o);
  ASSERT_TRUE(plan.ok()) << plan.status().message();
  int qconv = 0, qmatmul = 0;
  std::string tactics;
  for (size_t i = 0; i < plan->graph->nodes().size(); ++i) {
    const Node& n = *plan->graph->nodes()[i];
    qconv += n.op_type == "QConv";
    qmatmul += n.op_type == "QMatMul";
    tactics += " " + n.op_type + ":" + plan->layers[i].tactic.substr(0, 24);
  }
  std::cout << "qdq_cnn plan:" << tactics << "\n";
  EXPECT_EQ(qconv, 3);  // every Conv but the 3-channel stem (float16 is faster there)
  EXPECT_EQ(qmatmul, 2);
  auto engine = Engine::from_plan(std::move(*plan));
  ASSERT_TRUE(engine.ok()) << engine.status().message();
  auto ctx = (*engine)->create_context();
  ASSERT_TRUE(ctx.ok());
  auto out = (*ctx)->run({{(*engine)->inputs()[0].name, *x}});
  ASSERT_TRUE(out.ok()) << out.status().message();
  const double cos = cosine((*out)[0], *expected);
  std::cout << "qdq_cnn: cosine " << cos << ", rel L2 " << rel_l2((*out)[0], *expected) << "\n";
  EXPECT_GE(cos, 0.999);
}

// Device time per enqueue (median of 5 after warm-up) and each layer's time, for one plan.
void time_plan(const char* label, Model model, const std::map<std::string, Tensor>& feeds) {
  BuildOptions o;
  o.backend = "cuda";
  auto plan = build_plan(std::move(model), o);
  ASSERT_TRUE(plan.ok()) << plan.status().message();
  std::vector<std::string> names;
  for (size_t i = 0; i < plan->graph->nodes().size(); ++i)
    names.push_back(plan->graph->nodes()[i]->op_type + "[" + plan->layers[i].tactic.substr(0, 28) + "]");
  auto engine = Engine::from_plan(std::move(*plan));
  ASSERT_TRUE(engine.ok()) << engine.status().message();
  ContextOptions co;
  co.layer_timing = true;
  auto ctx = (*engine)->create_context(co);
  ASSERT_TRUE(ctx.ok());
  ASSERT_TRUE((*ctx)->set_inputs(feeds).ok());
  std::vector<double> total;
  std::vector<double> layers;
  for (int it = 0; it < 8; ++it) {
    ASSERT_TRUE((*ctx)->enqueue().ok());
    ASSERT_TRUE((*ctx)->synchronize().ok());
    if (it < 3) continue;
    auto lt = (*ctx)->layer_times_ms();
    ASSERT_TRUE(lt.ok());
    double sum = 0;
    for (double v : *lt) sum += v;
    total.push_back(sum);
    layers = *lt;
  }
  std::sort(total.begin(), total.end());
  std::string detail;
  for (size_t i = 0; i < layers.size() && i < names.size(); ++i) detail += fmt::format(" {} {:.3f};", names[i], layers[i]);
  std::cout << label << ": " << fmt::format("{:.3f}", total[total.size() / 2]) << " ms (" << detail << ")\n";
}

// Conv (+bias; INT8 also Relu and requantization) at ResNet shapes: INT8 (QConv int8 -> int8) vs FP16 (the float
// pipeline: NHWC FusedConv with its layout Transposes). Printed for the report, not asserted.
TEST(CudaQConv, TimingInt8VsFp16) {
  KILN_REQUIRE_GPU();
  struct Shape { int64_t n, c, h, m, k; };
  for (const Shape s : {Shape{256, 64, 56, 64, 3}, Shape{256, 256, 14, 256, 3}, Shape{256, 1024, 14, 256, 1}}) {
    const Dims xd{s.n, s.c, s.h, s.h}, wd{s.m, s.c, s.k, s.k};
    QCase c{xd, wd, 1, s.k / 2, DType::kFloat32, true, true, 0, true};
    OpCall q = q_layer_call("QConv", c, {s.n, s.m, s.h, s.h});
    Model mq;
    mq.graph = make_op_graph(q);
    time_plan(fmt::format("INT8 QConv {}x{}x{}x{} * {}x{}x{}x{}", s.n, s.c, s.h, s.h, s.m, s.c, s.k, s.k).c_str(), std::move(mq),
              {{"in0", q.inputs[0]}});
    // NHWC: how it runs inside a chain of int8 convolutions (no layout copies).
    OpCall qn = to_nhwc_call(q);
    Model mn;
    mn.graph = make_op_graph(qn);
    time_plan(fmt::format("INT8 QConv NHWC {}x{}x{}x{} * {}x{}x{}x{}", s.n, s.c, s.h, s.h, s.m, s.c, s.k, s.k).c_str(),
              std::move(mn), {{"in0", qn.inputs[0]}});
    OpCall f{.op_type = "Conv",
             .inputs = {random_tensor(DType::kFloat16, xd, 1), random_tensor(DType::kFloat16, wd, 2, -0.1, 0.1),
                        random_tensor(DType::kFloat16, {s.m}, 3)},
             .constant_inputs = {false, true, true}};
    f.attrs.set("pads", Dims{s.k / 2, s.k / 2, s.k / 2, s.k / 2});
    Model mf;
    mf.graph = make_op_graph(f);
    time_plan(fmt::format("FP16 Conv {}x{}x{}x{} * {}x{}x{}x{}", s.n, s.c, s.h, s.h, s.m, s.c, s.k, s.k).c_str(), std::move(mf),
              {{"in0", f.inputs[0]}});
  }
}

}  // namespace
}  // namespace kiln::test
