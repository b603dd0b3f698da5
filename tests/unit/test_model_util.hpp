// The committed test models (tests/models/data/<name>: model.onnx, io.json, the input .npy files and
// expected_0.npy) loaded for pass tests that run the rewritten graph on the CPU.
#pragma once

#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "io/npy.hpp"
#include "ir/graph.hpp"
#include "onnx/importer.hpp"
#include "ops/shape_inference.hpp"

namespace kiln::test {

// The model imported with its inputs' shapes fixed to the committed inputs', shapes inferred; the
// feeds and the expected first output. Fails the calling test (ASSERT_NO_FATAL_FAILURE) on error.
inline void load_test_model(const std::string& name, std::shared_ptr<Graph>& graph,
                            std::map<std::string, Tensor>& feeds, Tensor& want) {
  namespace fs = std::filesystem;
  fs::path dir = fs::path(KILN_SOURCE_DIR) / "tests/models/data" / name;
  std::ifstream io_file(dir / "io.json");
  auto io = nlohmann::json::parse(io_file, nullptr, false);
  ASSERT_FALSE(io.is_discarded());
  auto model = import_onnx_file((dir / "model.onnx").string());
  ASSERT_TRUE(model.ok()) << model.status().message();
  graph = model->graph;
  for (const auto& in : io["inputs"]) {
    auto t = load_npy((dir / in["file"].get<std::string>()).string());
    ASSERT_TRUE(t.ok()) << t.status().message();
    for (Value* v : graph->inputs)
      if (v->name == in["name"].get<std::string>()) v->type.shape = Shape::from_dims(t->dims());
    feeds.emplace(in["name"].get<std::string>(), std::move(*t));
  }
  auto w = load_npy((dir / "expected_0.npy").string());
  ASSERT_TRUE(w.ok());
  want = std::move(*w);
  ASSERT_TRUE(infer_shapes(*graph).ok());
}

}  // namespace kiln::test
