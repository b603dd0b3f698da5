// Models in the style of third-party exporters (paddle2onnx, tf2onnx, torch.onnx.export), made by
// tests/data/exporters/make_exporter_models.py: each must import, infer its output types (symbolic
// dims kept where the exporter named them), and run on the CPU backend at two input sizes, matching
// the expected outputs (NumPy or PyTorch) to rel L2 <= 1e-5.
//   build/tests/kiln_unit_tests --gtest_filter='ExporterModels*'
#include <gtest/gtest.h>

#include <filesystem>
#include <map>

#include "backends/cpu/cpu_executor.hpp"
#include "io/npy.hpp"
#include "onnx/importer.hpp"
#include "onnx_test_util.hpp"
#include "op_test_util.hpp"
#include "ops/op_registry.hpp"

namespace kiln::test {
namespace {

namespace fs = std::filesystem;

struct ExporterModel {
  std::string dir;
  std::vector<std::string> output_types;  // TensorType::to_string() after import
  int cases = 2;
  std::vector<std::string> needs_ops = {};  // ops another branch may provide (skip without them)
};

std::ostream& operator<<(std::ostream& os, const ExporterModel& m) { return os << m.dir; }

const std::vector<ExporterModel>& models() {
  static const std::vector<ExporterModel> kModels = {
      // paddle2onnx writes -1 for dynamic dims: unknown; H/W after Upsample/Resize stay unknown.
      {"paddle_opset9", {"float32[?,8,?,?]", "float32[?,2,4]"}},
      {"paddle_opset10", {"float32[?,8,?,?]", "float32[?,2,4]"}},
      // Named dims: the batch symbol flows through; dims inference cannot name take the declared names.
      {"paddle_opset11", {"float32[N,8,up_h,up_w]", "float32[N,2,4]"}},
      // tf2onnx: the input's batch symbol wins over the output's own unk__ name (same dim).
      {"tf2onnx_opset13",
       {"float32[unk__123,unk__127,unk__128,8]", "float32[unk__123,2,4]", "float32[unk__123,unk__131,8]"}},
      {"tf2onnx_opset18",
       {"float32[unk__123,unk__127,unk__128,8]", "float32[unk__123,2,4]", "float32[unk__123,unk__131,8]"}},
      {"torch_if", {"float32[batch,features]"}, 2, {"If"}},
      {"torch_loop_lstm", {"float32[seq,batch,4]"}, 2, {"Loop"}},
      {"torch_extra_domains", {"float32[batch,5]"}},
  };
  return kModels;
}

fs::path data_dir(const std::string& model) { return fs::path(KILN_SOURCE_DIR) / "tests/data/exporters" / model; }

class ExporterModels : public ::testing::TestWithParam<ExporterModel> {};

TEST_P(ExporterModels, ImportInferAndRun) {
  const ExporterModel& p = GetParam();
  for (const auto& op : p.needs_ops)
    if (!OpRegistry::instance().cpu_kernel("", op))
      GTEST_SKIP() << p.dir << " needs the " << op << " op (control-flow branch), not in this build";

  auto model = import_onnx_file((data_dir(p.dir) / "model.onnx").string());
  ASSERT_TRUE(model.ok()) << model.status().to_string();
  const Graph& g = *model->graph;
  ASSERT_EQ(g.outputs.size(), p.output_types.size());
  for (size_t i = 0; i < g.outputs.size(); ++i)
    EXPECT_EQ(g.outputs[i]->type.to_string(), p.output_types[i]) << "output " << g.outputs[i]->name;

  auto exec = CpuExecutor::create(model->graph);
  ASSERT_TRUE(exec.ok()) << exec.status().to_string();
  for (int c = 0; c < p.cases; ++c) {
    std::map<std::string, Tensor> inputs;
    for (size_t i = 0; i < g.inputs.size(); ++i) {
      auto t = load_npy((data_dir(p.dir) / fmt::format("input_{}_{}.npy", c, i)).string());
      ASSERT_TRUE(t.ok()) << t.status().to_string();
      inputs.emplace(g.inputs[i]->name, std::move(*t));
    }
    auto outs = (*exec)->run(inputs);
    ASSERT_TRUE(outs.ok()) << "case " << c << ": " << outs.status().to_string();
    ASSERT_EQ(outs->size(), g.outputs.size());
    for (size_t i = 0; i < outs->size(); ++i) {
      auto expected = load_npy((data_dir(p.dir) / fmt::format("expected_{}_{}.npy", c, i)).string());
      ASSERT_TRUE(expected.ok()) << expected.status().to_string();
      const Tensor& got = (*outs)[i];
      ASSERT_EQ(got.dtype(), expected->dtype()) << "case " << c << " output " << i;
      ASSERT_EQ(got.dims(), expected->dims()) << "case " << c << " output " << i;
      EXPECT_LE(rel_l2(got, *expected), 1e-5) << "case " << c << " output " << g.outputs[i]->name;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(All, ExporterModels, ::testing::ValuesIn(models()),
                         [](const auto& info) { return info.param.dir; });

// The dynamic dims must really vary: the two cases of each model differ in some input dim.
TEST(ExporterModelData, CasesCoverTwoInputSizes) {
  for (const auto& p : models()) {
    auto a = load_npy((data_dir(p.dir) / "input_0_0.npy").string());
    auto b = load_npy((data_dir(p.dir) / "input_1_0.npy").string());
    ASSERT_TRUE(a.ok() && b.ok()) << p.dir;
    EXPECT_NE(a->dims(), b->dims()) << p.dir;
  }
}

// paddle2onnx's -1 dims import as unknown dims; other negative sizes are still invalid.
TEST(ExporterModelData, MinusOneDimIsDynamic) {
  auto m = make_model(9, 5);
  auto* g = m.mutable_graph();
  add_input(g, "x", onnx::TensorProto::FLOAT, {-1, 3, -1});
  add_node(g, "Relu", {"x"}, {"y"}, "relu");
  add_output(g, "y");
  auto model = import_proto(m);
  ASSERT_TRUE(model.ok()) << model.status().to_string();
  EXPECT_EQ(model->graph->inputs[0]->type.to_string(), "float32[?,3,?]");
  EXPECT_EQ(model->graph->outputs[0]->type.to_string(), "float32[?,3,?]");

  m.mutable_graph()->mutable_input(0)->mutable_type()->mutable_tensor_type()->mutable_shape()->mutable_dim(0)
      ->set_dim_value(-2);
  EXPECT_TRUE(error_contains(import_proto(m).status(), StatusCode::kInvalidModel, {"'x'", "negative dimension -2"}));
}

}  // namespace
}  // namespace kiln::test
