// The whole pass pipeline on the committed small models (tests/models/data): the CPU outputs of
// the built plan's graph match those of the imported graph within 1e-5 relative L2.
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "builder/builder.hpp"
#include "io/npy.hpp"
#include "onnx/importer.hpp"
#include "passes_test_util.hpp"

namespace kiln {
namespace {

namespace fs = std::filesystem;

std::vector<std::string> model_dirs() {
  std::vector<std::string> out;
  fs::path root = fs::path(KILN_SOURCE_DIR) / "tests/models/data";
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(root, ec))
    if (fs::exists(e.path() / "model.onnx") && fs::exists(e.path() / "io.json")) out.push_back(e.path().filename());
  std::sort(out.begin(), out.end());
  return out;
}

class PassesModels : public ::testing::TestWithParam<std::string> {};

TEST_P(PassesModels, PipelineKeepsOutputs) {
  fs::path dir = fs::path(KILN_SOURCE_DIR) / "tests/models/data" / GetParam();
  std::ifstream io_file(dir / "io.json");
  auto io = nlohmann::json::parse(io_file, nullptr, false);
  ASSERT_FALSE(io.is_discarded());
  std::map<std::string, Tensor> feeds;
  BuildOptions options;
  options.backend = "cpu";
  for (const auto& in : io["inputs"]) {
    auto t = load_npy((dir / in["file"].get<std::string>()).string());
    ASSERT_TRUE(t.ok()) << t.status().message();
    options.input_shapes[in["name"].get<std::string>()] = t->dims();
    feeds.emplace(in["name"].get<std::string>(), std::move(*t));
  }
  auto raw = import_onnx_file((dir / "model.onnx").string());
  ASSERT_TRUE(raw.ok()) << raw.status().message();
  size_t raw_nodes = raw->graph->nodes().size();
  auto want = passtest::run_graph(raw->graph, feeds);
  ASSERT_TRUE(want.ok()) << want.status().message();

  auto model = import_onnx_file((dir / "model.onnx").string());
  ASSERT_TRUE(model.ok());
  auto plan = build_plan(std::move(*model), options);
  ASSERT_TRUE(plan.ok()) << plan.status().message();
  auto exec = CpuExecutor::create(plan->graph);
  ASSERT_TRUE(exec.ok()) << exec.status().message();
  auto got = (*exec)->run(feeds);
  ASSERT_TRUE(got.ok()) << got.status().message();
  ASSERT_EQ(got->size(), want->size());
  for (size_t i = 0; i < got->size(); ++i) {
    EXPECT_EQ((*got)[i].dims(), (*want)[i].dims());
    EXPECT_LE(test::rel_l2((*got)[i], (*want)[i]), 1e-5) << "output " << plan->graph->outputs[i]->name;
  }
  int fused = 0;
  for (const auto& n : plan->graph->nodes()) fused += n->attrs.has(kFusedAttr);
  std::printf("[ %s ] %zu nodes imported, %zu after passes, %d fused\n", GetParam().c_str(), raw_nodes,
              plan->graph->nodes().size(), fused);
  EXPECT_LE(plan->graph->nodes().size(), raw_nodes);
}

INSTANTIATE_TEST_SUITE_P(All, PassesModels, ::testing::ValuesIn(model_dirs()),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace kiln
