// kiln.FusedElementwise on the GPU: graphs of elementwise nodes built for CUDA (the
// elementwise-fusion pass makes the fused nodes; NVRTC compiles them at build time) against the
// CPU executor running the unfused graph; plus a plan save/load round trip that runs the loaded
// kernels without NVRTC.
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <unistd.h>

#include "backends/cuda/layers/fused_ew_codegen.hpp"
#include "gpu_test_util.hpp"
#include "ops/onnx_dtype.hpp"
#include "passes_test_util.hpp"

namespace kiln::test {
namespace {

using passtest::G;

int fused_count(const Graph& g) {
  int c = 0;
  for (const auto& n : g.nodes()) c += n->op_type == "FusedElementwise";
  return c;
}

// Builds m's graph for CUDA and runs it with and without CUDA graph capture; compares every output
// with the CPU executor's run of the unfused graph. `fused`: the kiln.FusedElementwise count the
// plan must have.
::testing::AssertionResult fused_matches_cpu(const std::function<G()>& make, double tol, int fused,
                                             Plan* keep = nullptr) {
  G ref = make();
  auto cpu = passtest::run_graph(ref.g, ref.feeds);
  if (!cpu.ok()) return ::testing::AssertionFailure() << "CPU: " << cpu.status().message();
  G m = make();
  BuildOptions options;
  options.backend = "cuda";
  options.tf32 = false;
  Model model;
  model.graph = m.g;
  auto plan = build_plan(std::move(model), options);
  if (!plan.ok()) return ::testing::AssertionFailure() << "build: " << plan.status().message();
  if (fused_count(*plan->graph) != fused)
    return ::testing::AssertionFailure() << fused_count(*plan->graph) << " fused nodes, expected " << fused << "\n"
                                         << graph_to_text(*plan->graph);
  if (keep) *keep = *plan;
  auto engine = Engine::from_plan(std::move(*plan));
  if (!engine.ok()) return ::testing::AssertionFailure() << "engine: " << engine.status().message();
  for (bool graph : {false, true}) {
    auto ctx = (*engine)->create_context(ContextOptions{.cuda_graph = graph});
    if (!ctx.ok()) return ::testing::AssertionFailure() << "context: " << ctx.status().message();
    auto gpu = (*ctx)->run(m.feeds);
    if (!gpu.ok()) return ::testing::AssertionFailure() << "CUDA: " << gpu.status().message();
    for (size_t i = 0; i < cpu->size(); ++i) {
      if ((*gpu)[i].dims() != (*cpu)[i].dims() || (*gpu)[i].dtype() != (*cpu)[i].dtype())
        return ::testing::AssertionFailure() << "output " << i << ": " << (*gpu)[i].describe() << " vs "
                                             << (*cpu)[i].describe();
      double err = rel_l2((*gpu)[i], (*cpu)[i]);
      if (!(err <= tol)) return ::testing::AssertionFailure() << "output " << i << ": rel L2 " << err << " > " << tol;
    }
  }
  return ::testing::AssertionSuccess();
}

double tol_for(DType t) { return t == DType::kFloat32 ? 1e-5 : t == DType::kFloat16 ? 2e-3 : 1e-2; }

Value* typed_const(G& m, const std::string& name, DType t, Dims dims) {
  return m.constant(name, random_tensor(t, std::move(dims), m.seed++, -1, 1));
}
Value* typed_scalar(G& m, const std::string& name, DType t, float v) {
  return m.constant(name, Tensor::scalar<float>(v).cast(t));
}

// x [dims] + bias [last] -> Sigmoid -> Mul(x): three ops.
std::function<G()> three_op_chain(DType t, Dims dims) {
  return [t, dims] {
    G m;
    Value* x = m.input("x", dims, t);
    Value* b = typed_const(m, "b", t, {dims.back()});
    Value* a = m.op("Add", {x, b}, "a");
    Value* s = m.op("Sigmoid", {a}, "s");
    m.g->outputs = {m.op("Mul", {s, x}, "y")};
    return m;
  };
}

// Ten ops: unary math, activations, broadcasting binaries, scalars, a comparison and a Where.
std::function<G()> ten_op_chain(DType t, Dims dims) {
  return [t, dims] {
    G m;
    Value* x = m.input("x", dims, t);
    Dims col = dims;
    col.back() = 1;
    Value* y = m.input("y", col, t);  // broadcast along the innermost dim
    Value* a = m.op("Mul", {x, typed_scalar(m, "k", t, 0.75f)}, "a");
    Value* b = m.op("Sub", {a, y}, "b");
    Value* c = m.op("Tanh", {b}, "c");
    Value* d = m.op("Gelu", {c}, "d");
    Value* e = m.op("Abs", {x}, "e");
    Value* f = m.op("Add", {e, typed_scalar(m, "one", t, 1.f)}, "f");
    Value* g = m.op("Log", {f}, "g");
    Value* h = m.op("Less", {d, g}, "h");
    Value* i = m.op("Where", {h, d, g}, "i");
    m.g->outputs = {m.op("HardSwish", {i}, "j")};
    return m;
  };
}

// Every op of the program language, in every type, through NVRTC (no GPU needed).
TEST(CudaFusedElementwise, GeneratedSourceOfEveryOpCompiles) {
  using fused_ew::Op;
  for (DType t : {DType::kFloat32, DType::kFloat16, DType::kBFloat16}) {
    fused_ew::Program p;
    p.num_inputs = 3;
    auto operand = [](fused_ew::Operand::Kind k, int i, float imm = 0.f) {
      fused_ew::Operand o;
      o.kind = k;
      o.index = i;
      o.imm = imm;
      return o;
    };
    int last_float = -1, last_bool = -1;
    for (int op = 0; op < static_cast<int>(Op::kCount); ++op) {
      const auto& info = fused_ew::op_info(static_cast<Op>(op));
      fused_ew::Instr in;
      in.op = static_cast<Op>(op);
      in.dtype = info.bool_result ? DType::kBool : t;
      in.a = 0.25f;
      in.b = 3.f;
      if (in.op == Op::kWhere) {
        in.args = {operand(fused_ew::Operand::kInput, 2), operand(fused_ew::Operand::kInput, 0),
                   last_float >= 0 ? operand(fused_ew::Operand::kTemp, last_float)
                                   : operand(fused_ew::Operand::kImm, 0, 1.5f)};
      } else if (in.op == Op::kNot) {
        in.args = {last_bool >= 0 ? operand(fused_ew::Operand::kTemp, last_bool) : operand(fused_ew::Operand::kInput, 2)};
      } else {
        for (int a = 0; a < info.arity; ++a)
          in.args.push_back(a == 0 ? operand(fused_ew::Operand::kInput, 0)
                            : a == 1 && last_float >= 0 ? operand(fused_ew::Operand::kTemp, last_float)
                                                        : operand(fused_ew::Operand::kInput, 1));
      }
      (info.bool_result ? last_bool : last_float) = static_cast<int>(p.code.size());
      p.code.push_back(in);
    }
    p.outputs = {last_float, last_bool};
    auto src = cuda::fused_ew_source(p, {t, t, DType::kBool}, {t, DType::kBool});
    const auto start = std::chrono::steady_clock::now();
    auto cubin = cuda::compile_fused_ew(src.code, "sm_90a");
    std::printf("  %s: %zu instructions compiled in %.0f ms\n", std::string(dtype_name(t)).c_str(), p.code.size(),
                std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
    EXPECT_TRUE(cubin.ok()) << dtype_name(t) << ": " << cubin.status().message() << "\n" << src.code;
    if (cubin.ok()) {
      EXPECT_GT(cubin->size(), 1000u);
    }
  }
}

TEST(CudaFusedElementwise, ThreeOpChain) {
  KILN_REQUIRE_GPU();
  for (DType t : {DType::kFloat32, DType::kFloat16, DType::kBFloat16})
    for (Dims dims : {Dims{3, 5, 7}, Dims{4, 64, 256}, Dims{1, 1}, Dims{1000003}}) {
      SCOPED_TRACE(std::string(dtype_name(t)) + " " + dims_to_string(dims));
      EXPECT_TRUE(fused_matches_cpu(three_op_chain(t, dims), tol_for(t), 1));
    }
}

TEST(CudaFusedElementwise, TenOpChainWithBroadcastWhereAndScalars) {
  KILN_REQUIRE_GPU();
  for (DType t : {DType::kFloat32, DType::kFloat16, DType::kBFloat16})
    for (Dims dims : {Dims{2, 33, 129}, Dims{8, 1024}, Dims{5}}) {
      SCOPED_TRACE(std::string(dtype_name(t)) + " " + dims_to_string(dims));
      EXPECT_TRUE(fused_matches_cpu(ten_op_chain(t, dims), tol_for(t), 1));
    }
}

TEST(CudaFusedElementwise, NumpyBroadcastOfThreeInputs) {
  KILN_REQUIRE_GPU();
  for (DType t : {DType::kFloat32, DType::kFloat16}) {
    SCOPED_TRACE(std::string(dtype_name(t)));
    auto make = [t] {
      G m;
      Value* x = m.input("x", {2, 1, 6, 8}, t);
      Value* y = m.input("y", {3, 1, 8}, t);
      Value* z = m.input("z", {6, 1}, t);
      Value* a = m.op("Add", {x, y}, "a");
      Value* b = m.op("Mul", {a, z}, "b");
      Value* c = m.op("Max", {b, x}, "c");
      m.g->outputs = {m.op("Clip", {c, typed_scalar(m, "lo", t, -0.5f), typed_scalar(m, "hi", t, 0.5f)}, "d")};
      return m;
    };
    EXPECT_TRUE(fused_matches_cpu(make, tol_for(t), 1));
  }
}

// Squeeze-excitation: the [N, C, 1, 1] gate is computed per output element in the fused kernel.
TEST(CudaFusedElementwise, BroadcastGateJoinsTheGroup) {
  KILN_REQUIRE_GPU();
  for (DType t : {DType::kFloat32, DType::kFloat16, DType::kBFloat16}) {
    SCOPED_TRACE(std::string(dtype_name(t)));
    auto make = [t] {
      G m;
      Value* x = m.input("x", {2, 16, 7, 7}, t);
      Value* s = m.input("s", {2, 16, 1, 1}, t);
      Value* gate = m.op("HardSigmoid", {s}, "gate", passtest::attrs({{"alpha", 0.1666667f}}));
      m.g->outputs = {m.op("Mul", {x, gate}, "y")};
      return m;
    };
    EXPECT_TRUE(fused_matches_cpu(make, tol_for(t), 1));
  }
}

TEST(CudaFusedElementwise, TwoGroupsAroundASoftmax) {
  KILN_REQUIRE_GPU();
  auto make = [] {
    G m;
    const DType t = DType::kFloat16;
    Value* x = m.input("x", {4, 3, 40}, t);
    Value* a = m.op("Mul", {x, typed_scalar(m, "s", t, 0.125f)}, "a");
    Value* b = m.op("Exp", {a}, "b");
    Value* sm = m.op("Softmax", {b}, "sm");
    Value* c = m.op("Sqrt", {sm}, "c");
    Value* d = m.op("Reciprocal", {m.op("Add", {c, typed_scalar(m, "eps", t, 1.f)}, "cc")}, "d");
    m.g->outputs = {m.op("Cast", {d}, "y", passtest::attrs({{"to", int64_t(onnx_code_of(DType::kFloat32))}}))};
    return m;
  };
  EXPECT_TRUE(fused_matches_cpu(make, 2e-3, 2));
}

TEST(CudaFusedElementwise, PlanRoundTripRunsWithoutNvrtc) {
  KILN_REQUIRE_GPU();
  Plan plan;
  ASSERT_TRUE(fused_matches_cpu(ten_op_chain(DType::kFloat16, {4, 256}), 2e-3, 1, &plan));
  bool found = false;
  for (size_t i = 0; i < plan.graph->nodes().size(); ++i) {
    if (plan.graph->nodes()[i]->op_type != "FusedElementwise") continue;
    found = true;
    const Node& n = *plan.graph->nodes()[i];
    EXPECT_NE(n.attrs.s(cuda::kSourceAttr, "").find("kfe_v"), std::string::npos);
    ASSERT_NE(n.attrs.tensor(cuda::kCubinAttr), nullptr);
    EXPECT_GT(n.attrs.tensor(cuda::kCubinAttr)->numel(), 0);
  }
  EXPECT_TRUE(found);
  const std::string path = (std::filesystem::temp_directory_path() /
                            ("kiln_fused_ew_" + std::to_string(getpid()) + ".plan")).string();
  ASSERT_TRUE(save_plan(plan, path).ok());
  cuda::fused_ew_clear_cache();
  const int64_t compiles = cuda::fused_ew_nvrtc_compiles();
  auto loaded = load_plan(path);
  std::remove(path.c_str());
  ASSERT_TRUE(loaded.ok()) << loaded.status().message();
  auto engine = Engine::from_plan(std::move(*loaded));
  ASSERT_TRUE(engine.ok()) << engine.status().message();
  auto ctx = (*engine)->create_context();
  ASSERT_TRUE(ctx.ok());
  G m = ten_op_chain(DType::kFloat16, {4, 256})();
  auto gpu = (*ctx)->run(m.feeds);
  ASSERT_TRUE(gpu.ok()) << gpu.status().message();
  auto cpu = passtest::run_graph(m.g, m.feeds);
  ASSERT_TRUE(cpu.ok());
  EXPECT_LE(rel_l2((*gpu)[0], (*cpu)[0]), 2e-3);
  EXPECT_EQ(cuda::fused_ew_nvrtc_compiles(), compiles);  // loading compiled nothing
}

TEST(CudaFusedElementwise, IdenticalGroupsCompileOnce) {
  KILN_REQUIRE_GPU();
  cuda::fused_ew_clear_cache();
  const int64_t before = cuda::fused_ew_nvrtc_compiles();
  auto make = [] {
    G m;
    const DType t = DType::kFloat32;
    Value* v = m.input("x", {6, 16}, t);
    for (int i = 0; i < 3; ++i) {  // three identical groups separated by Softmax
      Value* a = m.op("Exp", {v}, "e" + std::to_string(i));
      Value* b = m.op("Neg", {a}, "n" + std::to_string(i));
      v = m.op("Softmax", {b}, "s" + std::to_string(i));
    }
    m.g->outputs = {v};
    return m;
  };
  EXPECT_TRUE(fused_matches_cpu(make, 1e-5, 3));
  EXPECT_EQ(cuda::fused_ew_nvrtc_compiles() - before, 1);
}

}  // namespace
}  // namespace kiln::test
