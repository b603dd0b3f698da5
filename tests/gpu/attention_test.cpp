// kiln.Attention on CUDA against the CPU reference: the tensor-core kernels (float16/bfloat16, head
// dim 64/32/128, BERT's [B,S,H,d] and ViT's packed [S,B,3,H,d] views, masked and unaligned
// sequence lengths), every tactic of each (flash64/128[s4], wmma: all_tactics_match_cpu), the
// simple kernel (float32, odd head dims, misaligned views), the fusion on the PyTorch 2 BERT/ViT
// test models end to end, and timings of the ViT-B/16 and BERT-base batch-64 shapes (printed).
#include <cuda_runtime_api.h>

#include <chrono>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "backends/cuda/layers/attention_kernels.hpp"
#include "gpu_test_util.hpp"
#include "tactic_test_util.hpp"
#include "io/npy.hpp"
#include "onnx/importer.hpp"
#include "ops/attention.hpp"

namespace kiln::test {
namespace {

// Q, K, V each [B, S, H, d] (the projections reshaped, as BERT), output [B, S, H, d]
// (the head-merge Transpose absorbed); mask [B, 1, 1, S] when `mask`.
// `sk` (default: s) keys; `full_mask`: mask [B, 1, S, Sk] instead.
OpCall bert_call(DType t, int64_t b, int64_t h, int64_t s, int64_t d, bool mask, uint32_t seed = 1, int64_t sk = 0,
                 bool full_mask = false) {
  if (sk == 0) sk = s;
  OpCall call{.op_type = "Attention",
              .inputs = {random_tensor(t, {b, s, h, d}, seed, -2, 2), random_tensor(t, {b, sk, h, d}, seed + 1, -2, 2),
                         random_tensor(t, {b, sk, h, d}, seed + 2, -2, 2)},
              .domain = "kiln"};
  AttentionGeometry g;
  g.batch = b, g.heads = h, g.sq = s, g.sk = sk, g.d = d, g.dv = d;
  g.q = AttentionView{0, {s * h * d, d, h * d, 1}};
  g.k = g.v = AttentionView{0, {sk * h * d, d, h * d, 1}};
  g.out = AttentionView{0, {s * h * d, d, h * d, 1}};
  g.out_shape = {b, s, h, d};
  g.scale = 1.f / std::sqrt(static_cast<float>(d));
  if (mask)
    call.inputs.push_back(
        full_mask ? random_tensor(t, {b, 1, s, sk}, seed + 3, -3, 3) : random_tensor(t, {b, 1, 1, sk}, seed + 3, -3, 3));
  set_attention_attrs(call.attrs, g);
  return call;
}

// The kernel launch_attention picks for the layouts of bert_call / vit_call (16-byte aligned
// stand-in pointers: the choice looks only at their alignment).
cuda::AttentionArgs bert_args(int64_t b, int64_t h, int64_t s, int64_t d) {
  cuda::AttentionArgs a;
  a.batch = b, a.heads = h, a.sq = s, a.sk = s, a.d = static_cast<int>(d), a.dv = static_cast<int>(d);
  const int64_t st[4] = {s * h * d, d, h * d, 1};
  for (int i = 0; i < 4; ++i) a.qs[i] = a.ks[i] = a.vs[i] = a.ys[i] = st[i];
  alignas(16) static unsigned char dummy[64];
  a.q = a.k = a.v = dummy;
  a.y = dummy;
  a.scale = 0.125f;
  return a;
}

// One packed input [S, B, 3, H, d] (torchvision's in_proj output) read as Q, K and V at offsets
// 0, H*d, 2*H*d; output [S, B, H, d].
OpCall vit_call(DType t, int64_t b, int64_t h, int64_t s, int64_t d) {
  Tensor qkv = random_tensor(t, {s, b, 3, h, d}, 7, -2, 2);
  OpCall call{.op_type = "Attention", .inputs = {qkv, qkv, qkv}, .domain = "kiln"};
  AttentionGeometry g;
  g.batch = b, g.heads = h, g.sq = s, g.sk = s, g.d = d, g.dv = d;
  const int64_t e = h * d;
  g.q = AttentionView{0, {3 * e, d, b * 3 * e, 1}};
  g.k = AttentionView{e, {3 * e, d, b * 3 * e, 1}};
  g.v = AttentionView{2 * e, {3 * e, d, b * 3 * e, 1}};
  g.out = AttentionView{0, {e, d, b * e, 1}};
  g.out_shape = {s, b, h, d};
  g.scale = 0.125f;
  set_attention_attrs(call.attrs, g);
  return call;
}

TEST(CudaAttention, TensorCoreBertLayoutWithMask) {
  KILN_REQUIRE_GPU();
  EXPECT_TRUE(all_tactics_match_cpu(bert_call(DType::kFloat16, 2, 3, 128, 64, true), 2e-3, {}, 3));
  EXPECT_TRUE(all_tactics_match_cpu(bert_call(DType::kBFloat16, 2, 3, 128, 64, true), 2e-2, {}, 3));
  EXPECT_TRUE(all_tactics_match_cpu(bert_call(DType::kFloat16, 2, 2, 77, 32, true), 2e-3, {}, 3));   // unaligned S, d 32
  EXPECT_TRUE(all_tactics_match_cpu(bert_call(DType::kFloat16, 1, 2, 130, 128, false), 2e-3, {}, 3));  // d 128, S past a tile
}

TEST(CudaAttention, FlashKernelIsPreferred) {
  cuda::AttentionArgs a = bert_args(64, 12, 128, 64);
  EXPECT_STREQ(cuda::attention_kernel_name(DType::kFloat16, a), "flash");
  EXPECT_STREQ(cuda::attention_kernel_name(DType::kBFloat16, a), "flash");
  EXPECT_STREQ(cuda::attention_kernel_name(DType::kFloat16, bert_args(2, 2, 77, 32)), "flash");
  EXPECT_STREQ(cuda::attention_kernel_name(DType::kFloat16, bert_args(1, 2, 130, 128)), "flash");
  EXPECT_STREQ(cuda::attention_kernel_name(DType::kFloat32, a), "simple");
  EXPECT_STREQ(cuda::attention_kernel_name(DType::kFloat16, bert_args(2, 2, 40, 48)), "simple");
  a.no_flash = true;
  EXPECT_STREQ(cuda::attention_kernel_name(DType::kFloat16, a), "tensor-core");
  a.no_flash = false;
  a.q_off = 1;  // cp.async needs 16-byte aligned rows
  EXPECT_STREQ(cuda::attention_kernel_name(DType::kFloat16, a), "simple");
  a.q_off = 0;
  a.ys[2] = 12 * 64 + 4;  // output rows not 16-byte aligned: the WMMA kernel stores by element
  EXPECT_STREQ(cuda::attention_kernel_name(DType::kFloat16, a), "tensor-core");
  a.ys[2] = 12 * 64;
  // The tactics' row counts, else a heuristic (128 rows once that still gives 4 CTAs per SM).
  a.flash_rows = 64;
  EXPECT_EQ(cuda::attention_flash_rows(a), 64);
  a.flash_rows = 128;
  EXPECT_EQ(cuda::attention_flash_rows(a), 128);
  a.flash_rows = 0;
  EXPECT_EQ(cuda::attention_flash_rows(a), 128);                    // 64 x 12 heads
  EXPECT_EQ(cuda::attention_flash_rows(bert_args(2, 2, 77, 32)), 64);  // few CTAs
  a.flash_rows = 96;  // not a variant
  EXPECT_STREQ(cuda::attention_kernel_name(DType::kFloat16, a), "tensor-core");
  a.flash_rows = 0;
  a.flash_stages = 4;
  EXPECT_STREQ(cuda::attention_kernel_name(DType::kFloat16, a), "flash");
  cuda::AttentionArgs wide = bert_args(1, 2, 130, 128);
  wide.flash_stages = 4;  // 4 stages: d <= 64 only
  EXPECT_STREQ(cuda::attention_kernel_name(DType::kFloat16, wide), "tensor-core");
}

TEST(CudaAttention, FlashCrossLengthsAndFullMask) {
  KILN_REQUIRE_GPU();
  // Sq != Sk, several key tiles with a tail, per-query mask [B, 1, Sq, Sk].
  EXPECT_TRUE(all_tactics_match_cpu(bert_call(DType::kFloat16, 2, 3, 100, 64, true, 3, 197, true), 2e-3, {}, 3));
  EXPECT_TRUE(all_tactics_match_cpu(bert_call(DType::kBFloat16, 2, 3, 70, 128, true, 4, 130, true), 2e-2, {}, 3));
  EXPECT_TRUE(all_tactics_match_cpu(bert_call(DType::kFloat16, 1, 2, 1, 32, true, 5, 9, true), 2e-3, {}, 3));  // tiny
  EXPECT_TRUE(all_tactics_match_cpu(bert_call(DType::kFloat16, 1, 2, 300, 64, false, 6, 65), 2e-3, {}, 3));
}

TEST(CudaAttention, TensorCoreVitLayoutUnaligned) {
  KILN_REQUIRE_GPU();
  EXPECT_TRUE(all_tactics_match_cpu(vit_call(DType::kFloat16, 2, 3, 197, 64), 2e-3, {}, 3));
  EXPECT_TRUE(all_tactics_match_cpu(vit_call(DType::kBFloat16, 2, 3, 197, 64), 2e-2, {}, 3));
}

TEST(CudaAttention, SimpleKernelPaths) {
  KILN_REQUIRE_GPU();
  EXPECT_TRUE(all_tactics_match_cpu(bert_call(DType::kFloat32, 2, 3, 50, 64, true), 1e-5, {}, 0));
  EXPECT_TRUE(all_tactics_match_cpu(vit_call(DType::kFloat32, 2, 2, 197, 64), 1e-5, {}, 0));
  EXPECT_TRUE(all_tactics_match_cpu(bert_call(DType::kFloat16, 2, 2, 40, 48, true), 2e-3, {}, 0));     // d 48: no tensor cores
  EXPECT_TRUE(all_tactics_match_cpu(bert_call(DType::kFloat32, 1, 2, 33, 100, false), 1e-5, {}, 0));   // d 100: the 128 variant
  // A view at an odd offset cannot be read 16 bytes at a time.
  OpCall odd = bert_call(DType::kFloat16, 1, 2, 64, 64, false);
  Tensor big = random_tensor(DType::kFloat16, {1 * 64 * 2 * 64 + 1}, 9);
  odd.inputs[0] = big;
  auto q = odd.attrs.ints("q_view");
  q[0] = 1;
  odd.attrs.set("q_view", q);
  EXPECT_TRUE(all_tactics_match_cpu(odd, 2e-3, {}, 0));
}

TEST(CudaAttention, FullyMaskedRowsGiveZeroWithTheGuard) {
  KILN_REQUIRE_GPU();
  for (DType t : {DType::kFloat16, DType::kFloat32}) {
    OpCall call = bert_call(t, 2, 2, 70, 64, true);
    // Batch 1: every key masked with -inf.
    Tensor m = call.inputs[3].cast(DType::kFloat32);
    for (int64_t j = 70; j < 140; ++j) m.data<float>()[j] = -INFINITY;
    call.inputs[3] = m.cast(t);
    call.attrs.set("nan_to_zero", int64_t{1});
    EXPECT_TRUE(all_tactics_match_cpu(call, t == DType::kFloat32 ? 1e-5 : 2e-3, {}, t == DType::kFloat16 ? 3u : 0u));
  }
}

TEST(CudaAttention, BoolMaskFill) {
  KILN_REQUIRE_GPU();
  for (DType t : {DType::kFloat16, DType::kFloat32}) {
    for (int64_t d : {64, 48}) {  // tensor-core and simple kernels (float32: simple only)
      OpCall call = bert_call(t, 2, 2, 66, d, false);
      Tensor m = random_tensor(DType::kFloat32, {2, 1, 1, 66}, 12, -1, 1);
      Tensor mb(DType::kBool, {2, 1, 1, 66});
      for (int64_t j = 0; j < m.numel(); ++j) mb.data<bool>()[j] = m.data<float>()[j] > 0.3f;
      call.inputs.push_back(mb);
      call.attrs.set("mask_fill", -10000.f);
      EXPECT_TRUE(all_tactics_match_cpu(call, t == DType::kFloat32 ? 1e-5 : 2e-3, {}, t == DType::kFloat16 && d == 64 ? 3u : 0u)) << d;
    }
  }
}

// The flash kernel's shapes and mask paths, every tactic (flash64/128[s4], wmma) against the CPU:
// sequence lengths around the 16-row/16-key chunks and 64-key tiles, each mask kind (additive or
// bool; shared by all query rows, which the kernel stages per tile, or per query row, read per
// score), rows whose every key is masked (nan_to_zero), fp16 and bf16, head dims 32/64/128.
enum class SweepMask { kNone, kAddRow, kAddHeadRow, kAddFull, kFillRow, kFillFull, kAddRowDead, kFillRowDead };

OpCall sweep_call(DType t, int64_t s, int64_t d, SweepMask kind, uint32_t seed) {
  const int64_t b = 2, h = 2;
  OpCall call = bert_call(t, b, h, s, d, false, seed);
  const bool fill = kind == SweepMask::kFillRow || kind == SweepMask::kFillFull || kind == SweepMask::kFillRowDead;
  Dims md;
  switch (kind) {
    case SweepMask::kNone: return call;
    case SweepMask::kAddHeadRow: md = {1, h, 1, s}; break;
    case SweepMask::kAddFull:
    case SweepMask::kFillFull: md = {b, 1, s, s}; break;
    default: md = {b, 1, 1, s}; break;
  }
  Tensor m = random_tensor(DType::kFloat32, md, seed + 7, -3, 3);
  float* mv = m.data<float>();
  const int64_t n = m.numel();
  // Dead rows: batch 1 every key masked (row masks); in full masks query rows 0 and s - 1 of batch 0.
  auto dead = [&](int64_t e) {
    if (kind == SweepMask::kAddRowDead || kind == SweepMask::kFillRowDead) return e >= n / 2;
    if (kind == SweepMask::kAddFull || kind == SweepMask::kFillFull) return e < s || (e >= s * (s - 1) && e < s * s);
    return false;
  };
  if (fill) {
    Tensor mb(DType::kBool, md);
    for (int64_t e = 0; e < n; ++e) mb.data<bool>()[e] = dead(e) || mv[e] > 1.f;
    call.inputs.push_back(mb);
    call.attrs.set("mask_fill", kind == SweepMask::kFillRow ? -10000.f : -INFINITY);
  } else {
    for (int64_t e = 0; e < n; ++e)
      if (dead(e)) mv[e] = -INFINITY;
    call.inputs.push_back(m.cast(t));
  }
  call.attrs.set("nan_to_zero", int64_t{1});
  return call;
}

TEST(CudaAttention, FlashTacticsSweep) {
  KILN_REQUIRE_GPU();
  const SweepMask kinds[] = {SweepMask::kNone,     SweepMask::kAddRow,   SweepMask::kAddHeadRow,  SweepMask::kAddFull,
                             SweepMask::kFillRow, SweepMask::kFillFull, SweepMask::kAddRowDead, SweepMask::kFillRowDead};
  uint32_t seed = 100;
  for (int64_t s : {1, 7, 64, 65, 128, 197, 256})
    for (SweepMask k : kinds) {
      EXPECT_TRUE(all_tactics_match_cpu(sweep_call(DType::kFloat16, s, 64, k, seed++), 2e-3, {}, 3))
          << "fp16 S " << s << " mask " << static_cast<int>(k);
    }
  for (int64_t s : {7, 65, 197})
    for (SweepMask k : {SweepMask::kNone, SweepMask::kAddRow, SweepMask::kFillFull}) {
      EXPECT_TRUE(all_tactics_match_cpu(sweep_call(DType::kBFloat16, s, 64, k, seed++), 2e-2, {}, 3))
          << "bf16 S " << s << " mask " << static_cast<int>(k);
      for (int64_t d : {32, 128})
        EXPECT_TRUE(all_tactics_match_cpu(sweep_call(DType::kFloat16, s, d, k, seed++), 2e-3, {}, 3))
            << "fp16 d " << d << " S " << s << " mask " << static_cast<int>(k);
    }
}

// The PyTorch 2 exports through `kiln build`'s pipeline (attention fused for float16) vs expected_0.npy.
// Note: the GPU machine's copy of the tree must hold tests/models/data (run from the repo root).
void check_model(const std::string& name, bool fp16, double tol) {
  namespace fs = std::filesystem;
  fs::path dir = fs::path(KILN_SOURCE_DIR) / "tests/models/data" / name;
  if (!fs::exists(dir)) dir = fs::current_path() / "tests/models/data" / name;  // a copied tree (GPU machine)
  std::ifstream io_file(dir / "io.json");
  auto io = nlohmann::json::parse(io_file, nullptr, false);
  ASSERT_FALSE(io.is_discarded());
  BuildOptions options;
  options.backend = "cuda";
  options.fp16 = fp16;
  options.tf32 = false;  // float32 plans exact, so 1e-4 holds
  std::map<std::string, Tensor> feeds;
  for (const auto& in : io["inputs"]) {
    auto t = load_npy((dir / in["file"].get<std::string>()).string());
    ASSERT_TRUE(t.ok());
    options.input_shapes[in["name"].get<std::string>()] = t->dims();
    feeds.emplace(in["name"].get<std::string>(), std::move(*t));
  }
  auto model = import_onnx_file((dir / "model.onnx").string());
  ASSERT_TRUE(model.ok()) << model.status().message();
  auto plan = build_plan(std::move(*model), options);
  ASSERT_TRUE(plan.ok()) << plan.status().message();
  int fused = 0;
  for (const auto& n : plan->graph->nodes()) fused += n->op_type == "Attention";
  EXPECT_EQ(fused, fp16 ? 2 : 0);  // float32 attention stays with cuBLAS (attention_fusion.cpp)
  auto engine = Engine::from_plan(std::move(*plan));
  ASSERT_TRUE(engine.ok()) << engine.status().message();
  auto ctx = (*engine)->create_context();
  ASSERT_TRUE(ctx.ok());
  auto got = (*ctx)->run(feeds);
  ASSERT_TRUE(got.ok()) << got.status().message();
  auto want = load_npy((dir / "expected_0.npy").string());
  ASSERT_TRUE(want.ok());
  const double err = rel_l2((*got)[0].cast(DType::kFloat32), want->cast(DType::kFloat32));
  std::printf("[ %s %s ] rel L2 %.3g\n", name.c_str(), fp16 ? "fp16" : "fp32", err);
  EXPECT_LE(err, tol);
}

TEST(CudaAttention, Torch2ModelsFused) {
  KILN_REQUIRE_GPU();
  check_model("bert_hf_tiny", false, 1e-4);
  check_model("bert_hf_tiny", true, 1e-2);
  check_model("vit_torch2_tiny", false, 1e-4);
  check_model("vit_torch2_tiny", true, 1e-2);
}

// The kernel variants the layer's tactics pick, applied to `a`.
struct Variant {
  const char* name;
  int flash_rows, flash_stages;
  bool no_flash;
};
constexpr Variant kVariants[] = {{"flash64", 64, 2, false},
                                 {"flash128", 128, 2, false},
                                 {"flash64s4", 64, 4, false},
                                 {"flash128s4", 128, 4, false},
                                 {"wmma", 0, 0, true}};

// Microseconds per launch of `a` (averaged over 20 after a warm-up), or -1 on an error.
double time_attention(DType t, const cuda::AttentionArgs& a) {
  if (cuda::launch_attention(t, a, nullptr) != cudaSuccess || cudaDeviceSynchronize() != cudaSuccess) return -1;
  cudaEvent_t start, stop;
  cudaEventCreate(&start);
  cudaEventCreate(&stop);
  const int iters = 20;
  cudaEventRecord(start);
  for (int i = 0; i < iters; ++i) cuda::launch_attention(t, a, nullptr);
  cudaEventRecord(stop);
  float ms = -1;
  if (cudaEventSynchronize(stop) == cudaSuccess) cudaEventElapsedTime(&ms, start, stop);
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  return cudaGetLastError() == cudaSuccess && ms > 0 ? 1e3 * ms / iters : -1;
}

// ViT-B/16 batch 64: B 64, H 12, S 197, d 64, float16, read from the packed in_proj output.
TEST(CudaAttention, TimingVitB16Batch64) {
  KILN_REQUIRE_GPU();
  const int64_t b = 64, h = 12, s = 197, d = 64, e = h * d;
  cuda::AttentionArgs a;
  a.batch = b, a.heads = h, a.sq = s, a.sk = s, a.d = d, a.dv = d;
  a.q_off = 0, a.k_off = e, a.v_off = 2 * e;
  const int64_t in_strides[4] = {3 * e, d, b * 3 * e, 1}, out_strides[4] = {e, d, b * e, 1};
  for (int i = 0; i < 4; ++i) a.qs[i] = a.ks[i] = a.vs[i] = in_strides[i], a.ys[i] = out_strides[i];
  a.scale = 0.125f;
  void *qkv = nullptr, *y = nullptr;
  ASSERT_EQ(cudaMalloc(&qkv, static_cast<size_t>(s * b * 3 * e) * 2), cudaSuccess);
  ASSERT_EQ(cudaMalloc(&y, static_cast<size_t>(s * b * e) * 2), cudaSuccess);
  ASSERT_EQ(cudaMemset(qkv, 0, static_cast<size_t>(s * b * 3 * e) * 2), cudaSuccess);
  a.q = a.k = a.v = qkv;
  a.y = y;
  std::printf("kernel: %s\n", cuda::attention_kernel_name(DType::kFloat16, a));
  const double flops = 4.0 * b * h * s * s * d;
  for (const Variant& v : kVariants) {
    a.no_flash = v.no_flash, a.flash_rows = v.flash_rows, a.flash_stages = v.flash_stages;
    for (DType t : {DType::kFloat16, DType::kBFloat16}) {
      const double us = time_attention(t, a);
      ASSERT_GT(us, 0);
      std::printf("[ attention B64 H12 S197 d64 %s %s ] %.1f us/launch, %.1f TFLOP/s\n",
                  std::string(dtype_name(t)).c_str(), v.name, us, flops / (us * 1e-6) / 1e12);
    }
  }
  a.no_flash = false, a.flash_rows = 0, a.flash_stages = 0;
  // float32 (simple kernel): same element counts, twice the bytes.
  cudaFree(qkv);
  cudaFree(y);
  ASSERT_EQ(cudaMalloc(&qkv, static_cast<size_t>(s * b * 3 * e) * 4), cudaSuccess);
  ASSERT_EQ(cudaMalloc(&y, static_cast<size_t>(s * b * e) * 4), cudaSuccess);
  cudaMemset(qkv, 0, static_cast<size_t>(s * b * 3 * e) * 4);
  a.q = a.k = a.v = qkv;
  a.y = y;
  const double us = time_attention(DType::kFloat32, a);
  ASSERT_GT(us, 0);
  std::printf("[ attention B64 H12 S197 d64 float32 simple ] %.1f us/launch, %.1f TFLOP/s\n", us,
              flops / (us * 1e-6) / 1e12);
  cudaFree(qkv);
  cudaFree(y);
}

// BERT-base batch 64, S 128: Q, K, V [B, S, H, d] (separate projections), additive mask [B,1,1,S].
TEST(CudaAttention, TimingBertBaseBatch64) {
  KILN_REQUIRE_GPU();
  const int64_t b = 64, h = 12, s = 128, d = 64;
  cuda::AttentionArgs a = bert_args(b, h, s, d);
  const size_t bytes = static_cast<size_t>(b * s * h * d) * 2;
  void *q = nullptr, *k = nullptr, *v = nullptr, *y = nullptr, *mask = nullptr;
  ASSERT_EQ(cudaMalloc(&q, bytes), cudaSuccess);
  ASSERT_EQ(cudaMalloc(&k, bytes), cudaSuccess);
  ASSERT_EQ(cudaMalloc(&v, bytes), cudaSuccess);
  ASSERT_EQ(cudaMalloc(&y, bytes), cudaSuccess);
  ASSERT_EQ(cudaMalloc(&mask, static_cast<size_t>(b * s) * 2), cudaSuccess);
  for (void* p : {q, k, v, mask}) cudaMemset(p, 0, p == mask ? static_cast<size_t>(b * s) * 2 : bytes);
  a.q = q, a.k = k, a.v = v, a.y = y;
  const double flops = 4.0 * b * h * s * s * d;
  for (bool with_mask : {false, true}) {
    a.mask = with_mask ? mask : nullptr;
    a.ms[0] = s, a.ms[1] = 0, a.ms[2] = 0, a.ms[3] = 1;
    for (const Variant& v : kVariants) {
      a.no_flash = v.no_flash, a.flash_rows = v.flash_rows, a.flash_stages = v.flash_stages;
      const double us = time_attention(DType::kFloat16, a);
      ASSERT_GT(us, 0);
      std::printf("[ attention B64 H12 S128 d64 float16 %s%s ] %.1f us/launch, %.1f TFLOP/s\n", v.name,
                  with_mask ? " mask [B,1,1,S]" : "", us, flops / (us * 1e-6) / 1e12);
    }
  }
  for (void* p : {q, k, v, y, mask}) cudaFree(p);
}


}  // namespace
}  // namespace kiln::test
