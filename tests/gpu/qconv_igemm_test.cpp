// kiln.QConv's implicit-GEMM tactics ("igemm_s8:<tile>", layers/qconv_igemm.cu) forced, against
// the CPU reference: 1x1/3x3/7x7, strides 1/2, pads 0/1/3, C 3/16/24/32/48/64/.../512, M 32-256, odd
// spatial sizes, int8/float residuals, Relu, per-tensor and per-channel weight scales, NHWC int8
// and float16 outputs (fused epilogue) and NCHW / float32 outputs (int32 sums + the epilogue
// kernel); shapes it cannot take fall back; and (printed, not asserted) its time at ResNet-50
// batch-256 shapes against the other tactics and FP16.
#include <cmath>
#include <limits>

#include <cuda_runtime.h>

#include "backends/cuda/cuda_layer.hpp"
#include "backends/cuda/layers/qconv_igemm.hpp"
#include "backends/cuda/layers/qlayer_util.hpp"
#include "gpu_test_util.hpp"

namespace kiln::test {
namespace {

Tensor scalar_of(DType t, double v) {
  Tensor d(DType::kFloat64, {});
  *d.data<double>() = v;
  return d.cast(t);
}

Tensor int8_random(Dims d, uint32_t seed) { return random_tensor(DType::kInt8, std::move(d), seed, -128, 128); }

struct Case {
  int64_t n, c, h, w, m, k, stride, pad;
  bool nhwc = true;
  int z = 0;  // 0 none, 1 float, 2 int8
  bool int8_out = true, relu = true, bias = true, per_channel = true;
  DType ft = DType::kFloat32;
  bool x_nchw = false;  // NHWC Y with an NCHW X (x_layout)
};

int64_t out_dim(int64_t in, const Case& c) { return (in + 2 * c.pad - c.k) / c.stride + 1; }

// A QConv call whose int8 output is spread over the int8 range (y_scale from the sums' typical
// size), so that a wrong sum shows instead of saturating.
OpCall igemm_call(const Case& c) {
  const int64_t oh = out_dim(c.h, c), ow = out_dim(c.w, c);
  const Dims xd = c.nhwc && !c.x_nchw ? Dims{c.n, c.h, c.w, c.c} : Dims{c.n, c.c, c.h, c.w};
  const Dims yd = c.nhwc ? Dims{c.n, oh, ow, c.m} : Dims{c.n, c.m, oh, ow};
  const double x_scale = 0.02, w_typ = 0.006;
  // |int8| ~ 74 rms: a sum of K products has rms ~ sqrt(K) * 74^2.
  const double v_rms = std::sqrt(static_cast<double>(c.c * c.k * c.k)) * 74.0 * 74.0 * x_scale * w_typ;
  const double y_scale = v_rms / 40;
  OpCall call{.op_type = "QConv", .domain = "kiln"};
  call.inputs = {int8_random(xd, 1), scalar_of(c.ft, x_scale), int8_random({c.m, c.c, c.k, c.k}, 2),
                 c.per_channel ? random_tensor(DType::kFloat32, {c.m}, 3, 0.002, 0.01).cast(c.ft)
                               : scalar_of(c.ft, w_typ),
                 c.bias ? random_tensor(c.ft, {c.m}, 4, -2, 2) : Tensor()};
  call.inputs.push_back(c.z == 1 ? random_tensor(c.ft, yd, 5, -v_rms, v_rms) : c.z == 2 ? int8_random(yd, 5) : Tensor());
  call.inputs.push_back(c.z == 2 ? scalar_of(c.ft, y_scale / 2) : Tensor());
  call.inputs.push_back(c.int8_out ? scalar_of(c.ft, y_scale) : Tensor());
  while (!call.inputs.back().defined()) call.inputs.pop_back();
  call.constant_inputs = {false, true, true, true, true, false, true, true};
  call.attrs.set("activation", std::string(c.relu ? "Relu" : ""));
  call.attrs.set("strides", Dims{c.stride, c.stride});
  call.attrs.set("pads", Dims{c.pad, c.pad, c.pad, c.pad});
  if (c.nhwc) call.attrs.set("layout", std::string("NHWC"));
  if (c.x_nchw) call.attrs.set("x_layout", std::string("NCHW"));
  return call;
}

struct Built {
  Plan plan;
  size_t index = 0;
  std::vector<std::string> tactics;
};

Expected<Built> build(const OpCall& call) {
  BuildOptions options;
  options.backend = "cuda";
  Model model;
  model.graph = make_op_graph(call);
  Built b;
  KILN_ASSIGN_OR_RETURN(b.plan, build_plan(std::move(model), options));
  const auto& nodes = b.plan.graph->nodes();
  b.index = nodes.size();
  for (size_t i = 0; i < nodes.size(); ++i)
    if (nodes[i]->op_type == "QConv") b.index = i;
  if (b.index == nodes.size()) return internal_error("no QConv in the plan");
  const Node& node = *nodes[b.index];
  b.tactics = cuda::find_cuda_layer(node)->tactics(node, options);
  return b;
}

Expected<std::shared_ptr<Engine>> engine_with(const Built& b, const std::string& tactic) {
  Plan p = b.plan;
  p.layers[b.index].tactic = tactic;
  return Engine::from_plan(std::move(p));
}

std::map<std::string, Tensor> feeds_of(const Built& b, const OpCall& call) {
  std::map<std::string, Tensor> feeds;
  for (const Value* v : b.plan.graph->inputs)
    feeds[v->name] = call.inputs[static_cast<size_t>(std::stoi(v->name.substr(2)))];
  return feeds;
}

// Every "igemm_s8:" tactic must be offered and match the CPU: float outputs within `float_tol`
// rel L2 (the sums are exact), int8 outputs within 1e-2 rel L2 and at most one step off (float vs
// the CPU's double epilogue can round a value near .5 the other way), with few saturated values.
::testing::AssertionResult igemm_call_matches_cpu(const OpCall& call, double float_tol,
                                                  const std::string& prefix = "igemm_s8:") {
  auto cpu = run_op(call);
  if (!cpu.ok()) return ::testing::AssertionFailure() << "CPU: " << cpu.status().message();
  auto b = build(call);
  if (!b.ok()) return ::testing::AssertionFailure() << "build: " << b.status().message();
  size_t tried = 0;
  for (const std::string& t : b->tactics) {
    if (t.rfind(prefix, 0) != 0) continue;
    ++tried;
    auto engine = engine_with(*b, t);
    if (!engine.ok()) return ::testing::AssertionFailure() << t << ": " << engine.status().message();
    auto ctx = (*engine)->create_context();
    if (!ctx.ok()) return ::testing::AssertionFailure() << t << ": " << ctx.status().message();
    auto gpu = (*ctx)->run(feeds_of(*b, call));
    if (!gpu.ok()) return ::testing::AssertionFailure() << t << ": " << gpu.status().message();
    const Tensor &ref = (*cpu)[0], &got = (*gpu)[0];
    if (ref.dtype() != got.dtype() || ref.dims() != got.dims())
      return ::testing::AssertionFailure() << t << ": CUDA " << got.describe() << " vs CPU " << ref.describe();
    const double err = rel_l2(got, ref);
    if (ref.dtype() == DType::kInt8) {
      const int8_t *g = got.data<int8_t>(), *r = ref.data<int8_t>();
      int64_t off = 0, saturated = 0, max_diff = 0;
      for (int64_t i = 0; i < ref.numel(); ++i) {
        const int64_t d = std::abs(static_cast<int64_t>(g[i]) - r[i]);
        off += d != 0;
        max_diff = std::max(max_diff, d);
        saturated += r[i] == 127 || r[i] == -128;
      }
      if (!(err <= 1e-2) || max_diff > 1)
        return ::testing::AssertionFailure() << t << ": rel L2 " << err << ", " << off << "/" << ref.numel()
                                             << " values differ, by up to " << max_diff;
      if (saturated * 5 > ref.numel())
        return ::testing::AssertionFailure() << "test data: " << saturated << "/" << ref.numel() << " saturated";
      if (off > 0) std::cout << t << ": " << off << "/" << ref.numel() << " int8 values one step off\n";
    } else if (!(err <= float_tol)) {
      return ::testing::AssertionFailure() << t << ": rel L2 " << err << " > " << float_tol;
    }
  }
  if (tried == 0) return ::testing::AssertionFailure() << "no " << prefix << " tactic offered";
  return ::testing::AssertionSuccess();
}

::testing::AssertionResult igemm_matches_cpu(const Case& c, double float_tol) {
  return igemm_call_matches_cpu(igemm_call(c), float_tol);
}

std::string describe(const Case& c) {
  return fmt::format("n{} c{} {}x{} m{} k{} s{} p{} {} z{} {} relu{} wscale{}", c.n, c.c, c.h, c.w, c.m, c.k, c.stride,
                     c.pad, c.nhwc ? (c.x_nchw ? "NCHW->NHWC" : "NHWC") : "NCHW", c.z, c.int8_out ? "int8" : dtype_name(c.ft), c.relu,
                     c.per_channel ? "[m]" : "[1]");
}

TEST(CudaQConvIgemm, NhwcInt8MatchesCpu) {
  KILN_REQUIRE_GPU();
  const std::vector<Case> cases = {
      // n, c, h, w, m, k, stride, pad
      {2, 64, 7, 7, 64, 3, 1, 1},
      {2, 32, 13, 13, 96, 3, 2, 1, true, 2},
      {1, 256, 7, 7, 128, 1, 1, 0, true, 2},
      {2, 64, 13, 13, 128, 1, 2, 0, true, 0, true, false},
      {3, 256, 13, 13, 64, 3, 1, 0, true, 2, true, true, false, false},
      {2, 32, 7, 13, 64, 3, 2, 0, true, 0, true, true, true, false},
      {1, 96, 15, 15, 96, 1, 1, 0, true, 2, true, false, true, true},
      // many pixels (several row tiles per image and across images) and K not a multiple of 64
      {4, 48, 28, 28, 64, 3, 1, 1, true, 2},
  };
  for (const Case& c : cases) EXPECT_TRUE(igemm_matches_cpu(c, 0)) << describe(c);
}

// Less common shapes: C 16/32/48/80/144 (one 64-byte stage spans several window positions), K from
// 32 to 4608 bytes (fewer and more stages than the pipeline holds), M 32/80/144/64 (partial channel
// tiles), odd pixel counts (partial row tiles), 1x1 with stride 2 and with padding, residuals.
// Every offered igemm tile runs each case.
TEST(CudaQConvIgemm, WideStageShapesMatchCpu) {
  KILN_REQUIRE_GPU();
  const std::vector<Case> cases = {
      // n, c, h, w, m, k, stride, pad
      {2, 16, 9, 9, 32, 3, 1, 1},
      {2, 16, 21, 21, 64, 3, 1, 1, true, 2},
      {3, 48, 11, 11, 80, 3, 2, 1},
      {2, 32, 10, 10, 144, 1, 1, 0, true, 2},
      {1, 80, 17, 17, 48, 1, 2, 0, true, 0, true, false},
      {2, 144, 15, 15, 64, 1, 1, 0, true, 2, true, true, false, false},
      {5, 64, 23, 23, 64, 1, 1, 0},
      {2, 32, 8, 8, 32, 1, 1, 1},
      {1, 512, 7, 7, 256, 3, 1, 1, true, 2},
      {3, 128, 19, 19, 128, 3, 1, 1},
      {2, 256, 9, 9, 112, 1, 1, 0, true, 1, false, true, true, true, DType::kFloat16},  // float16 Y, fused
      {2, 48, 13, 11, 40, 3, 1, 1, false, 0, false, false},  // NCHW float32 Y: int32 sums
      {2, 64, 13, 13, 72, 1, 1, 0, true, 0, false, true, true, false},  // 1x1, M % 16 != 0: int32 sums
  };
  for (const Case& c : cases) {
    const double tol = c.int8_out ? 0 : c.ft == DType::kFloat16 ? 2e-3 : 1e-5;
    EXPECT_TRUE(igemm_matches_cpu(c, tol)) << describe(c);
  }
}

// Float outputs and residuals (float16 scales), NCHW layout: NHWC float16 outputs and float16
// residuals have their epilogue fused too; the others (float32, NCHW, M 40) write int32 sums for
// the layer's epilogue kernel. NCHW X with C 3 / 24: channels padded to 16 / 32 in the NHWC copy.
TEST(CudaQConvIgemm, FloatOutputsAndNchwMatchCpu) {
  KILN_REQUIRE_GPU();
  std::vector<Case> cases = {
      {2, 64, 7, 7, 64, 3, 1, 1, false, 2},
      {2, 32, 13, 13, 96, 3, 2, 1, false, 0, false, false},
      {2, 256, 7, 7, 128, 1, 1, 0, true, 1, true, true, true, true, DType::kFloat16},
      {1, 64, 13, 13, 40, 3, 1, 1, true, 0, false, false, false, false},
      {1, 64, 13, 13, 40, 3, 1, 1, true, 2},  // int8 NHWC, but M % 16 != 0: not fused
      {2, 32, 9, 9, 64, 1, 2, 0, true, 1, false, true, true, false, DType::kFloat16},
      {2, 64, 9, 9, 384, 1, 1, 0, true, 1, false, true, true, true, DType::kFloat16},  // M 384: 256-channel tiles
      {2, 64, 13, 13, 96, 3, 1, 1, true, 0, false, true, true, true, DType::kFloat16},
      {2, 64, 7, 7, 64, 3, 1, 1, true, 2, false, true, true, false, DType::kFloat16},  // int8 Z, float16 Y
      {3, 32, 7, 7, 128, 3, 2, 1, true, 1, false, false, false, true, DType::kFloat16},
      // NCHW X whose channels are not a multiple of 16: copied with them padded to 16 (32).
      // A ResNet-like stem (3 channels, 7x7 stride 2 pad 3), float16 out, and int8 out.
      {2, 3, 23, 23, 64, 7, 2, 3, false, 0, false, true, true, true, DType::kFloat16},
      {1, 3, 19, 19, 32, 7, 2, 3, false, 0},
      {2, 24, 9, 9, 48, 3, 1, 1, false, 2},
  };
  for (const Case& c : cases) {
    const double tol = c.int8_out ? 0 : c.ft == DType::kFloat16 ? 2e-3 : 1e-5;
    EXPECT_TRUE(igemm_matches_cpu(c, tol)) << describe(c);
  }
}

// The TMA tiles (C a multiple of 64, M of 16) on shapes the tests above miss: 3x3 stride 2 (the
// im2col copies' traversal stride), H != W with stride 2 and asymmetric row/column counts, M
// below and between channel tiles, K longer than the stage ring, pixel counts that end inside a
// row tile, every residual and output kind. On an sm_90 GPU every TMA tile must be offered
// (tma64x256 only for M > 128).
TEST(CudaQConvIgemm, TmaTilesMatchCpu) {
  KILN_REQUIRE_GPU();
  const std::vector<Case> cases = {
      // n, c, h, w, m, k, stride, pad
      {2, 64, 15, 15, 128, 3, 2, 1, true, 2},
      {2, 64, 9, 14, 64, 3, 2, 1},
      {3, 128, 10, 7, 48, 3, 1, 1, true, 2, true, false},
      {2, 192, 11, 5, 80, 1, 2, 0, true, 0, true, true, true, false},
      {1, 64, 12, 12, 208, 3, 1, 0, true, 1, true, true, true, true, DType::kFloat16},
      {2, 128, 6, 6, 64, 3, 1, 1, true, 1, false, true, true, true, DType::kFloat16},
      {2, 64, 8, 8, 32, 1, 1, 0, true, 2, false, false, false, false, DType::kFloat16},
      {1, 64, 7, 9, 64, 3, 1, 1, false, 0, false, false},  // NCHW float32 Y: int32 sums
      // M 144 on tma64x256: its last float16 strips (channels 192-255) lie wholly past the tensor.
      {2, 64, 9, 9, 144, 1, 1, 0, true, 1, false, true, true, true, DType::kFloat16},
  };
  int major = 0, minor = 0;
  ASSERT_EQ(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, 0), cudaSuccess);
  ASSERT_EQ(cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, 0), cudaSuccess);
  const bool hopper = major == 9 && minor == 0;
  for (const Case& c : cases) {
    if (hopper) {
      auto b = build(igemm_call(c));
      ASSERT_TRUE(b.ok()) << b.status().message();
      size_t tma = 0;
      for (const std::string& t : b->tactics) tma += t.rfind("igemm_s8:tma", 0) == 0;
      EXPECT_EQ(tma, c.m > 128 ? 4u : 3u) << describe(c);
    }
    const double tol = c.int8_out ? 0 : c.ft == DType::kFloat16 ? 2e-3 : 1e-5;
    EXPECT_TRUE(igemm_matches_cpu(c, tol)) << describe(c);
  }
}

// NHWC X with fewer than 16 channels and a window of 64-512 values (an RGB 7x7 stem): the
// repacking tactics are the only ones offered, and each matches the CPU:
//  - "s2d_igemm" (stride s >= 2, s*s*C <= 64): X copied s x s space-to-depth, a ceil(k/s)-square
//    stride-1 conv of the copy (stride 2 and 3, odd sizes, 12/24/27 channels padded to 16/32);
//  - "im2col_igemm" (each window gathered into a row of kh*kw*C bytes, the igemm tile as a 1x1
//    conv over the rows), whole batch, and a few images at a time ("_l2": 16 MiB of rows per
//    launch, 6 images of 112x112 here, the last launch partial);
// int8 and float16 outputs, residuals, M not a multiple of 16 (int32 sums + the epilogue kernel).
TEST(CudaQConvIgemm, RepackTacticsMatchCpu) {
  KILN_REQUIRE_GPU();
  const std::vector<Case> cases = {
      // n, c, h, w, m, k, stride, pad
      {2, 3, 23, 23, 64, 7, 2, 3},
      {7, 3, 224, 224, 64, 7, 2, 3},  // ResNet's stem: the "_l2" tactics run 6 + 1 images
      {2, 3, 17, 15, 32, 7, 2, 3, true, 2, true, false},
      {2, 3, 19, 19, 48, 7, 2, 3, true, 1, false, true, true, true, DType::kFloat16},
      {3, 1, 12, 12, 16, 9, 1, 4, true, 0, true, true, false, false},  // 1 channel, 81 values
      {2, 6, 11, 13, 64, 5, 1, 2, true, 2, false, false, true, true, DType::kFloat16},  // 150 values
      {2, 10, 9, 9, 32, 7, 1, 3},  // 490 values: rows of 512
      {2, 3, 15, 15, 40, 7, 2, 3, true, 0, false, true, true, false},  // M 40: int32 sums
      {2, 6, 17, 14, 32, 5, 2, 2, true, 2},  // space-to-depth: 24 channels (32), a 3x3 window
      {2, 3, 20, 22, 32, 7, 3, 3},           // stride 3: 27 channels (32), a 3x3 window
  };
  // NCHW X under NHWC Y (x_layout, the layout pass's stem): the s2d tactics only.
  std::vector<Case> nchw_x = {cases[0], cases[1], cases[3], cases[8]};
  for (Case& c : nchw_x) {
    c.x_nchw = true;
    auto b = build(igemm_call(c));
    ASSERT_TRUE(b.ok()) << b.status().message();
    for (const std::string& t : b->tactics) EXPECT_EQ(t.rfind("s2d_igemm:", 0), 0u) << describe(c) << ": " << t;
    const double tol = c.int8_out ? 0 : c.ft == DType::kFloat16 ? 2e-3 : 1e-5;
    EXPECT_TRUE(igemm_call_matches_cpu(igemm_call(c), tol, "s2d_igemm:")) << describe(c) << " NCHW X";
  }
  for (const Case& c : cases) {
    auto b = build(igemm_call(c));
    ASSERT_TRUE(b.ok()) << b.status().message();
    size_t l2 = 0, s2d = 0;
    for (const std::string& t : b->tactics) {
      EXPECT_TRUE(t.rfind("im2col_igemm", 0) == 0 || t.rfind("s2d_igemm:", 0) == 0) << describe(c) << ": " << t;
      l2 += t.rfind("im2col_igemm_l2:", 0) == 0;
      s2d += t.rfind("s2d_igemm:", 0) == 0;
    }
    if (c.h == 224) {
      EXPECT_GT(l2, 0u) << describe(c);
    }
    EXPECT_EQ(s2d > 0, c.stride > 1) << describe(c);
    const double tol = c.int8_out ? 0 : c.ft == DType::kFloat16 ? 2e-3 : 1e-5;
    EXPECT_TRUE(igemm_call_matches_cpu(igemm_call(c), tol, "im2col_igemm")) << describe(c);
    if (c.stride > 1) {
      EXPECT_TRUE(igemm_call_matches_cpu(igemm_call(c), tol, "s2d_igemm:")) << describe(c);
    }
  }
  // An igemm tactic forced on NHWC X with 3 channels is refused (X is not padded).
  auto b = build(igemm_call(Case{2, 3, 23, 23, 64, 7, 2, 3}));
  ASSERT_TRUE(b.ok()) << b.status().message();
  auto forced = engine_with(*b, "igemm_s8:wg128x64");
  ASSERT_FALSE(forced.ok());
  EXPECT_NE(forced.status().message().find("im2col"), std::string::npos) << forced.status().message();
}

// NHWC X (used as it is) with channels not a multiple of 16 (8, 36): no igemm tactic (C 8 with a
// 3x3 window gets the im2col ones), a forced one is refused, and the builder's choice still
// matches the CPU.
TEST(CudaQConvIgemm, OtherShapesFallBack) {
  KILN_REQUIRE_GPU();
  for (const Case& c : {Case{2, 8, 9, 9, 32, 3, 1, 1}, Case{2, 36, 7, 7, 16, 1, 1, 0, true, 0, false}}) {
    const OpCall call = igemm_call(c);
    auto b = build(call);
    ASSERT_TRUE(b.ok()) << b.status().message();
    for (const std::string& t : b->tactics) EXPECT_NE(t.rfind("igemm_s8:", 0), 0u) << t << " offered for " << describe(c);
    EXPECT_EQ(b->plan.layers[b->index].tactic.rfind("igemm_s8:", 0), std::string::npos);
    EXPECT_FALSE(engine_with(*b, "igemm_s8:128x128").ok()) << describe(c);
    EXPECT_TRUE(matches_cpu(call, 1e-2)) << describe(c);
  }
}

// Median device time (ms) of layer b.index with `tactic` (layer timing, 5 runs after warm-up).
double time_tactic(const Built& b, const std::string& tactic, const std::map<std::string, Tensor>& feeds) {
  auto engine = engine_with(b, tactic);
  if (!engine.ok()) return -1;
  ContextOptions co;
  co.layer_timing = true;
  auto ctx = (*engine)->create_context(co);
  if (!ctx.ok() || !(*ctx)->set_inputs(feeds).ok()) return -1;
  std::vector<double> total;
  for (int it = 0; it < 8; ++it) {
    if (!(*ctx)->enqueue().ok() || !(*ctx)->synchronize().ok()) return -1;
    if (it < 3) continue;
    auto lt = (*ctx)->layer_times_ms();
    if (!lt.ok() || lt->size() <= b.index) return -1;
    total.push_back((*lt)[b.index]);
  }
  std::sort(total.begin(), total.end());
  return total[total.size() / 2];
}

// On an sm_90 GPU the wgmma tiles must be offered (every build has sm_90a code: CMake's default
// architecture list is 90a), so that the tests above ran them and did not fall back silently.
TEST(CudaQConvIgemm, WgmmaTilesOfferedOnHopper) {
  KILN_REQUIRE_GPU();
  int major = 0, minor = 0;
  ASSERT_EQ(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, 0), cudaSuccess);
  ASSERT_EQ(cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, 0), cudaSuccess);
  if (major != 9 || minor != 0) GTEST_SKIP() << "not an sm_90 GPU: the wgmma tiles are not offered";
  EXPECT_TRUE(cuda::kernels::igemm_s8_wgmma_available()) << "sm_90 GPU but no sm_90a code in this build";
  const Case c{2, 64, 9, 9, 128, 3, 1, 1};
  auto b = build(igemm_call(c));
  ASSERT_TRUE(b.ok()) << b.status().message();
  size_t wg = 0;
  for (const std::string& t : b->tactics) wg += t.rfind("igemm_s8:wg", 0) == 0;
  EXPECT_EQ(wg, 4u);
}

// A weight scale of +inf on one channel (alpha inf: sums of 0 give NaN, which the reference turns
// into 0): the int8 epilogue is not fused (it clamps before rounding, so NaN would become -128),
// and every igemm tactic, through the int32 sums and the epilogue kernel, matches the CPU.
TEST(CudaQConvIgemm, NonFiniteScalesAreNotFused) {
  KILN_REQUIRE_GPU();
  const Case c{2, 64, 7, 7, 64, 1, 1, 0, true, 2, true, false};
  OpCall call = igemm_call(c);
  {
    auto b = build(call);
    ASSERT_TRUE(b.ok()) << b.status().message();
    EXPECT_TRUE(cuda::igemm_fusable(*b->plan.graph->nodes()[b->index], c.m));
  }
  call.inputs[3].data<float>()[5] = std::numeric_limits<float>::infinity();
  auto b = build(call);
  ASSERT_TRUE(b.ok()) << b.status().message();
  EXPECT_FALSE(cuda::igemm_fusable(*b->plan.graph->nodes()[b->index], c.m));
  EXPECT_TRUE(igemm_call_matches_cpu(call, 0)) << describe(c);
}

// Sums at the edge of the fused epilogue's exact float conversion (acc_small: |sum| <= 2^22):
// X all -128 times a row of -128s over K = 256 is exactly 2^22, a row of 127s -4161536; float16
// and int8 outputs (halves: round half to even) must be exact with and without acc_small, on
// every tile. And the host bound: 128 * max row sum |w| <= 2^22.
TEST(CudaQConvIgemm, SumsAtTheExactBound) {
  KILN_REQUIRE_GPU();
  const int n = 1, h = 4, c = 256, m = 16, rows = n * h * h;
  std::vector<int8_t> w(static_cast<size_t>(m) * c);
  for (int r = 0; r < m; ++r)
    for (int k = 0; k < c; ++k) w[r * c + k] = static_cast<int8_t>(r == 0 ? -128 : r == 1 ? 127 : r - 8);
  EXPECT_TRUE(cuda::kernels::igemm_s8_sums_small(w.data(), m, c));
  std::vector<int8_t> wider(static_cast<size_t>(c + 16), -128);
  EXPECT_FALSE(cuda::kernels::igemm_s8_sums_small(wider.data(), 1, c + 16));
  auto sum_of = [&](int r) { return -128.0 * c * w[r * c]; };
  std::vector<float> alpha(m, 1.0f / 65536);
  void *dx = nullptr, *dw = nullptr, *dy = nullptr, *dalpha = nullptr;
  ASSERT_EQ(cudaMalloc(&dx, rows * c), cudaSuccess);
  ASSERT_EQ(cudaMalloc(&dw, w.size()), cudaSuccess);
  ASSERT_EQ(cudaMalloc(&dy, rows * m * 2), cudaSuccess);
  ASSERT_EQ(cudaMalloc(&dalpha, m * sizeof(float)), cudaSuccess);
  cudaMemset(dx, 0x80, rows * c);  // -128
  cudaMemcpy(dw, w.data(), w.size(), cudaMemcpyHostToDevice);
  cudaMemcpy(dalpha, alpha.data(), m * sizeof(float), cudaMemcpyHostToDevice);
  for (int config = 0; config < cuda::kernels::kIgemmConfigs; ++config) {
    if (!cuda::kernels::igemm_s8_supports(n, h, h, c, m, 1, 1, h, h, config)) continue;
    ASSERT_EQ(cuda::kernels::igemm_s8_prepare(config), cudaSuccess);
    for (bool small : {true, false})
      for (bool int8_out : {true, false}) {
        cuda::kernels::IgemmS8Params p;
        p.x = static_cast<const int8_t*>(dx);
        p.w = static_cast<const int8_t*>(dw);
        p.n = n;
        p.h = p.w_in = p.oh = p.ow = h;
        p.c = c;
        p.m = m;
        p.kh = p.kw = 1;
        p.alpha = static_cast<const float*>(dalpha);
        p.acc_small = small;
        if (int8_out) p.y = static_cast<int8_t*>(dy);
        else p.y_h = static_cast<__half*>(dy);
        cudaMemset(dy, 0x55, rows * m * 2);
        ASSERT_EQ(cuda::kernels::igemm_s8_conv(p, config, nullptr), cudaSuccess);
        std::vector<int8_t> y8(rows * m);
        std::vector<__half> yh(rows * m);
        if (int8_out) ASSERT_EQ(cudaMemcpy(y8.data(), dy, y8.size(), cudaMemcpyDeviceToHost), cudaSuccess);
        else ASSERT_EQ(cudaMemcpy(yh.data(), dy, yh.size() * 2, cudaMemcpyDeviceToHost), cudaSuccess);
        for (int px = 0; px < rows; ++px)
          for (int r = 0; r < m; ++r) {
            const double want = sum_of(r) / 65536;  // exact in float16; a multiple of 0.5
            const double got = int8_out ? y8[px * m + r] : __half2float(yh[px * m + r]);
            const double want8 = std::nearbyint(want);  // half to even (the default rounding mode)
            ASSERT_EQ(got, int8_out ? want8 : want)
                << cuda::kernels::igemm_s8_config_name(config) << " acc_small " << small << " int8 " << int8_out
                << " pixel " << px << " channel " << r;
          }
      }
  }
  for (void* b : {dx, dw, dy, dalpha}) cudaFree(b);
}

// ResNet-50 batch 256 shapes, int8 NHWC -> int8 NHWC + bias + Relu (the stem: int8 NCHW with 3
// channels -> float16 NCHW, as in the INT8 ResNet-50 plan): each igemm tile and the best other
// tactic vs the FP16 Conv (the float pipeline's cuDNN convolution). Printed only.
TEST(CudaQConvIgemm, TimingResNet50Batch256) {
  KILN_REQUIRE_GPU();
  struct Shape { int64_t c, h, m, k, stride = 1; };
  for (const Shape s : {Shape{64, 56, 64, 3}, Shape{128, 28, 128, 3}, Shape{256, 14, 256, 3}, Shape{1024, 14, 256, 1},
                        Shape{512, 28, 128, 1}, Shape{64, 56, 64, 1}, Shape{256, 56, 64, 1}, Shape{3, 224, 64, 7, 2}}) {
    const bool stem = s.c % 16 != 0;
    const Case c = stem ? Case{256, s.c, s.h, s.h, s.m, s.k, s.stride, s.k / 2, false, 0, false, true, true, true,
                               DType::kFloat16}
                        : Case{256, s.c, s.h, s.h, s.m, s.k, s.stride, s.k / 2};
    const OpCall call = igemm_call(c);
    auto b = build(call);
    ASSERT_TRUE(b.ok()) << b.status().message();
    const auto feeds = feeds_of(*b, call);
    std::string line = fmt::format("QConv b256 {}x{}x{} -> {} k{} s{}: chosen '{}';", s.c, s.h, s.h, s.m, s.k,
                                   s.stride, b->plan.layers[b->index].tactic.substr(0, 40));
    double best_lt = -1;
    std::string best_lt_name;
    for (const std::string& t : b->tactics) {
      if (t == "direct" && !stem) continue;  // dp4a: far slower, and slow to time at this size
      const double ms = time_tactic(*b, t, feeds);
      if (t.rfind("igemm_s8:", 0) == 0) {
        line += fmt::format(" {} {:.3f} ms;", t, ms);
      } else if (ms > 0 && (best_lt < 0 || ms < best_lt)) {
        best_lt = ms;
        best_lt_name = t;
      }
    }
    line += fmt::format(" best other {} {:.3f} ms;", best_lt_name.substr(0, 24), best_lt);
    OpCall f{.op_type = "Conv",
             .inputs = {random_tensor(DType::kFloat16, {256, s.c, s.h, s.h}, 1),
                        random_tensor(DType::kFloat16, {s.m, s.c, s.k, s.k}, 2, -0.1, 0.1),
                        random_tensor(DType::kFloat16, {s.m}, 3)},
             .constant_inputs = {false, true, true}};
    f.attrs.set("pads", Dims{s.k / 2, s.k / 2, s.k / 2, s.k / 2});
    f.attrs.set("strides", Dims{s.stride, s.stride});
    BuildOptions o;
    o.backend = "cuda";
    Model mf;
    mf.graph = make_op_graph(f);
    auto pf = build_plan(std::move(mf), o);
    ASSERT_TRUE(pf.ok()) << pf.status().message();
    double fp16 = -1;
    std::string fp16_layers;
    {
      Built bf;
      bf.plan = std::move(*pf);
      for (size_t i = 0; i < bf.plan.graph->nodes().size(); ++i) {
        fp16_layers += " " + bf.plan.graph->nodes()[i]->op_type;
        if (bf.plan.graph->nodes()[i]->op_type.find("Conv") != std::string::npos) bf.index = i;
      }
      fp16 = time_tactic(bf, bf.plan.layers[bf.index].tactic, {{"in0", f.inputs[0]}});
    }
    line += fmt::format(" FP16 plan ({}): its conv {:.3f} ms", fp16_layers.substr(1), fp16);
    std::cout << line << "\n";
  }
}


// Where the kernel's time goes (printed, not asserted): each tile configuration called directly
// (no plan) at ResNet-50 batch-256 shapes, once with the fused int8 epilogue (alpha, bias, Relu,
// requantization) and once writing the int32 sums, plus the same output size with a 16-byte
// reduction (1x1, 16 channels): what the output tiles cost apart from the main loop.
TEST(CudaQConvIgemm, CostProbe) {
  KILN_REQUIRE_GPU();
  struct Shape { int c, h, m, k; };
  // {192, 112, 64, 1}: the RGB stem's rows (im2col tactics) as a 1x1 conv; {16, 112, 64, 4}: the
  // stem after a 2x2 space-to-depth (12 channels padded to 16, a 4x4 window).
  const Shape shapes[] = {{64, 56, 256, 1}, {64, 56, 64, 3}, {64, 56, 64, 1}, {16, 56, 64, 1}, {256, 14, 256, 3}, {1024, 14, 256, 1},
                          {16, 14, 256, 1}, {192, 112, 64, 1}, {16, 112, 64, 4}};
  const int n = 256;
  size_t x_bytes = 0, w_bytes = 0, y_rows = 0;
  int max_m = 0;
  for (const Shape& s : shapes) {
    x_bytes = std::max(x_bytes, static_cast<size_t>(n) * s.h * s.h * s.c);
    w_bytes = std::max(w_bytes, static_cast<size_t>(s.m) * s.k * s.k * s.c);
    y_rows = std::max(y_rows, static_cast<size_t>(n) * s.h * s.h * s.m);
    max_m = std::max(max_m, s.m);
  }
  void *x = nullptr, *w = nullptr, *y = nullptr, *acc = nullptr, *alpha = nullptr, *bias = nullptr;
  ASSERT_EQ(cudaMalloc(&x, x_bytes), cudaSuccess);
  ASSERT_EQ(cudaMalloc(&w, w_bytes), cudaSuccess);
  ASSERT_EQ(cudaMalloc(&y, y_rows), cudaSuccess);
  ASSERT_EQ(cudaMalloc(&acc, y_rows * 4), cudaSuccess);
  ASSERT_EQ(cudaMalloc(&alpha, max_m * sizeof(float)), cudaSuccess);
  ASSERT_EQ(cudaMalloc(&bias, max_m * sizeof(float)), cudaSuccess);
  cudaMemset(x, 3, x_bytes);
  cudaMemset(w, 5, w_bytes);
  cudaMemset(alpha, 0, max_m * sizeof(float));
  cudaMemset(bias, 0, max_m * sizeof(float));
  cudaEvent_t start, stop;
  cudaEventCreate(&start);
  cudaEventCreate(&stop);
  auto time_ms = [&](const cuda::kernels::IgemmS8Params& p, int config) {
    for (int i = 0; i < 2; ++i)
      if (cuda::kernels::igemm_s8_conv(p, config, nullptr) != cudaSuccess) return -1.0;
    cudaEventRecord(start);
    for (int i = 0; i < 10; ++i) cuda::kernels::igemm_s8_conv(p, config, nullptr);
    cudaEventRecord(stop);
    cudaEventSynchronize(stop);
    float ms = 0;
    cudaEventElapsedTime(&ms, start, stop);
    return ms / 10.0;
  };
  for (const Shape& s : shapes) {
    cuda::kernels::IgemmS8Params p;
    p.x = static_cast<const int8_t*>(x);
    p.w = static_cast<const int8_t*>(w);
    p.n = n;
    p.h = p.w_in = p.oh = p.ow = s.h;
    p.c = s.c;
    p.m = s.m;
    p.kh = p.kw = s.k;
    p.pad_h = p.pad_w = s.k / 2;
    std::string line = fmt::format("igemm b256 {}x{}x{} -> {} k{} (int8 / int32 out):", s.c, s.h, s.h, s.m, s.k);
    for (int config = 0; config < cuda::kernels::kIgemmConfigs; ++config) {
      if (cuda::kernels::igemm_s8_wgmma_config(config) && !cuda::kernels::igemm_s8_wgmma_available()) continue;
      ASSERT_EQ(cuda::kernels::igemm_s8_prepare(config), cudaSuccess);
      cuda::kernels::IgemmS8Params fused = p;
      fused.alpha = static_cast<const float*>(alpha);
      fused.bias = static_cast<const float*>(bias);
      fused.relu = true;
      fused.y = static_cast<int8_t*>(y);
      fused.acc_small = 128 * 5 * s.c * s.k * s.k <= (1 << 22);  // the weights are all 5
      cuda::kernels::IgemmS8Params sums = p;
      sums.acc = static_cast<int32_t*>(acc);
      sums.acc_stride = s.m;
      line += fmt::format(" {} {:.3f} / {:.3f};", cuda::kernels::igemm_s8_config_name(config), time_ms(fused, config),
                          time_ms(sums, config));
    }
    std::cout << line << "\n";
  }
  {
    // The stem's gather alone: 3x224x224 images, 7x7 stride 2 pad 3, rows of 192 bytes.
    cuda::kernels::Im2colRows g;
    g.n = n;
    g.h = g.w = 224;
    g.c = 3;
    g.kh = g.kw = 7;
    g.oh = g.ow = 112;
    g.stride_h = g.stride_w = 2;
    g.pad_h = g.pad_w = 3;
    g.kp = 192;
    auto* rows = static_cast<int8_t*>(acc);
    for (int i = 0; i < 2; ++i) ASSERT_EQ(cuda::kernels::im2col_rows_int8(static_cast<const int8_t*>(x), rows, g, nullptr), cudaSuccess);
    cudaEventRecord(start);
    for (int i = 0; i < 10; ++i) cuda::kernels::im2col_rows_int8(static_cast<const int8_t*>(x), rows, g, nullptr);
    cudaEventRecord(stop);
    cudaEventSynchronize(stop);
    float ms = 0;
    cudaEventElapsedTime(&ms, start, stop);
    std::cout << fmt::format("im2col rows b256 3x224x224 7x7 s2 -> 192 bytes: {:.3f} ms\n", ms / 10.0);
  }
  EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  for (void* b : {x, w, y, acc, alpha, bias}) cudaFree(b);
}

}  // namespace
}  // namespace kiln::test
