// PyTorch-exported models with control flow (tests/data/control_flow, made by
// make_torch_models.py): torch.jit.script `if`s and loops exported at opsets 13 and 17 must import
// and run, directly and from a saved CPU plan, matching a naive computation of the scripted functions.
#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>

#include "builder/builder.hpp"
#include "onnx/importer.hpp"
#include "op_test_util.hpp"
#include "util/error.hpp"
#include "runtime/engine.hpp"

namespace kiln {
namespace {

std::string model_path(const std::string& name) {
  return std::string(KILN_SOURCE_DIR) + "/tests/data/control_flow/" + name;
}

// Builds a CPU plan of the model (float32, or float16 layers), saves and loads it, and runs it.
Expected<std::vector<Tensor>> run_plan(const std::string& name, bool fp16,
                                       const std::map<std::string, Tensor>& feeds) {
  KILN_ASSIGN_OR_RETURN(Model model, import_onnx_file(model_path(name)));
  BuildOptions options;
  options.fp16 = fp16;
  KILN_ASSIGN_OR_RETURN(Plan plan, build_plan(std::move(model), options));
  const std::string path = (std::filesystem::temp_directory_path() /
                            ("kiln_cf_" + std::to_string(::getpid()) + "_" + name + ".kplan")).string();
  KILN_RETURN_IF_ERROR(save_plan(plan, path));
  auto engine = Engine::load(path);
  std::filesystem::remove(path);
  KILN_RETURN_IF_ERROR(engine.status());
  KILN_ASSIGN_OR_RETURN(auto ctx, (*engine)->create_context());
  return ctx->run(feeds);
}

// Runs the model with the CpuExecutor, and from saved plans (whose subgraphs go through the
// builder's passes and the plan file): the float32 plan must give the same outputs, the float16
// one close ones.
Expected<std::vector<Tensor>> run_model(const std::string& name, const std::map<std::string, Tensor>& feeds) {
  KILN_ASSIGN_OR_RETURN(Model model, import_onnx_file(model_path(name)));
  KILN_ASSIGN_OR_RETURN(auto exec, CpuExecutor::create(model.graph));
  KILN_ASSIGN_OR_RETURN(std::vector<Tensor> direct, exec->run(feeds));
  for (bool fp16 : {false, true}) {
    KILN_ASSIGN_OR_RETURN(std::vector<Tensor> planned, run_plan(name, fp16, feeds));
    if (planned.size() != direct.size()) return internal_error("the plan gave {} outputs", planned.size());
    for (size_t i = 0; i < direct.size(); ++i) {
      auto close = fp16 ? test::tensors_close(planned[i], direct[i], 1e-2, 1e-2)
                        : test::tensors_close(planned[i], direct[i], 0, 0);
      if (!close) return internal_error("output {} of the {} plan differs: {}", i, fp16 ? "float16" : "float32", close.message());
    }
  }
  return direct;
}

// s = x.sum(); z = (x*2 + y if s > 10 else x + y) if s > 0 else x - y
TEST(ControlFlowModels, TorchScriptNestedIf) {
  struct Case { int64_t rows; double lo, hi; };  // x values in [lo, hi): each case takes one branch
  for (const char* file : {"torch_if_opset13.onnx", "torch_if_opset17.onnx"}) {
    auto model = import_onnx_file(model_path(file));
    ASSERT_TRUE(model.ok()) << model.status().message();
    EXPECT_EQ(model->graph->outputs[0]->type.to_string(), "float32[n,3]");
    for (Case c : {Case{4, 1, 3}, Case{1, 0.1, 0.5}, Case{2, -2, -1}}) {
      SCOPED_TRACE(std::string(file) + " rows " + std::to_string(c.rows));
      Tensor x = test::random_tensor(DType::kFloat32, {c.rows, 3}, 3, c.lo, c.hi);
      Tensor y = test::random_tensor(DType::kFloat32, {c.rows, 3}, 4);
      auto out = run_model(file, {{"x", x}, {"y", y}});
      ASSERT_TRUE(out.ok()) << out.status().message();
      float s = 0;
      for (int64_t i = 0; i < x.numel(); ++i) s += x.data<float>()[i];
      Tensor z(DType::kFloat32, {c.rows, 3});
      for (int64_t i = 0; i < x.numel(); ++i) {
        float a = x.data<float>()[i], b = y.data<float>()[i];
        z.data<float>()[i] = s > 0 ? (s > 10 ? a * 2 + b : a + b) : a - b;
      }
      EXPECT_TRUE(test::tensors_close(out->at(0), z));
      EXPECT_TRUE(test::tensors_close(out->at(1), Tensor::scalar<float>(s)));
    }
  }
}

// acc = sum_i x[i] * i; then while acc.sum() < 100 and k < 20: acc = acc * 2 + 1, k += 1
TEST(ControlFlowModels, TorchScriptForAndWhileLoops) {
  for (const char* file : {"torch_loop_opset13.onnx", "torch_loop_opset17.onnx"}) {
    for (int64_t rows : {1, 3, 6}) {
      SCOPED_TRACE(std::string(file) + " rows " + std::to_string(rows));
      Tensor x = test::random_tensor(DType::kFloat32, {rows, 3}, 9, -1, 2);
      auto out = run_model(file, {{"x", x}});
      ASSERT_TRUE(out.ok()) << out.status().message();
      std::vector<float> acc(3, 0.f);
      for (int64_t i = 0; i < rows; ++i)
        for (int j = 0; j < 3; ++j) acc[j] += x.data<float>()[i * 3 + j] * static_cast<float>(i);
      int64_t k = 0;
      auto sum = [&] { return acc[0] + acc[1] + acc[2]; };
      while (sum() < 100.f && k < 20) {
        for (float& a : acc) a = a * 2.f + 1.f;
        ++k;
      }
      EXPECT_TRUE(test::tensors_close(out->at(0), Tensor::from_vector<float>({3}, acc), 1e-5, 1e-4));
      EXPECT_TRUE(test::tensors_close(out->at(1), Tensor::scalar<int64_t>(k)));
    }
  }
}

// y = relu(x[1:] - x[:-1] if x.size(0) > 1 else x * 2): once the builder fixes the input shape,
// the condition folds to a constant and the If is inlined; the plan must still compute y.
TEST(ControlFlowModels, TorchScriptShapeIfIsInlinedWhenShapesAreFixed) {
  const char* file = "torch_shape_if_opset13.onnx";
  for (int64_t rows : {4, 1}) {
    SCOPED_TRACE(rows);
    Tensor x = test::random_tensor(DType::kFloat32, {rows, 3}, 23);
    auto model = import_onnx_file(model_path(file));
    ASSERT_TRUE(model.ok()) << model.status().message();
    BuildOptions options;
    options.input_shapes["x"] = {rows, 3};
    auto plan = build_plan(std::move(*model), options);
    ASSERT_TRUE(plan.ok()) << plan.status().message();
    for (const auto& n : plan->graph->nodes()) EXPECT_NE(n->op_type, "If");
    auto engine = Engine::from_plan(std::move(*plan));
    ASSERT_TRUE(engine.ok()) << engine.status().message();
    auto ctx = (*engine)->create_context();
    ASSERT_TRUE(ctx.ok());
    auto out = (*ctx)->run({{"x", x}});
    ASSERT_TRUE(out.ok()) << out.status().message();
    const int64_t out_rows = rows > 1 ? rows - 1 : rows;
    Tensor y(DType::kFloat32, {out_rows, 3});
    const float* p = x.data<float>();
    for (int64_t i = 0; i < out_rows * 3; ++i) {
      float v = rows > 1 ? p[i + 3] - p[i] : p[i] * 2.f;
      y.data<float>()[i] = v > 0 ? v : 0.f;
    }
    EXPECT_TRUE(test::tensors_close(out->at(0), y));
    // Without fixed shapes the If stays, and runs.
    auto direct = run_model(file, {{"x", x}});
    ASSERT_TRUE(direct.ok()) << direct.status().message();
    EXPECT_TRUE(test::tensors_close(direct->at(0), y));
  }
}

}  // namespace
}  // namespace kiln
