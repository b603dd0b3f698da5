#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "backends/cpu/cpu_executor.hpp"
#include "io/file.hpp"
#include "runtime/plan.hpp"

namespace kiln {
namespace {

namespace fs = std::filesystem;

Plan sample_plan() {
  Plan p;
  p.kiln_version = kiln_version();
  p.target.backend = "cpu";
  p.graph = std::make_shared<Graph>();
  Graph& g = *p.graph;
  g.name = "main";
  Value* x = g.add_value("x", {DType::kFloat32, Shape({Dim::symbolic("batch"), Dim(3)})});
  Value* w = g.add_constant("w", Tensor::from_vector<float>({3}, {0.5f, -1.5f, 2.25f}));
  Value* y = g.add_value("y", {DType::kFloat32, Shape::from_dims({2, 3})});
  Value* z = g.add_value("z");
  g.inputs = {x};
  Node* n = g.add_node("Identity", {x}, {y}, "id0", "", 17);
  n->attrs.set("alpha", 0.25f);
  n->attrs.set("mode", std::string("fast"));
  n->attrs.set("axes", std::vector<int64_t>{-1, 2});
  n->attrs.set("table", Tensor::from_vector<int64_t>({2}, {7, 9}));
  auto body = std::make_shared<Graph>();
  body->parent = &g;
  body->name = "body";
  Value* by = body->add_value("by");
  body->add_node("Identity", {w}, {by}, "inner");  // uses an outer-scope constant
  body->outputs = {by};
  n->attrs.set("branch", body);
  g.add_node("Identity", {w, nullptr}, {z}, "id1");
  g.outputs = {y, z};
  p.layers = {{"", "fp32"}, {"copy", "fp16"}};
  p.arena_bytes = 4096;
  p.arena = {{"y", 0, 24}};
  p.options_json = "{}";
  return p;
}

std::string temp_path(const std::string& name) {
  return (fs::temp_directory_path() / ("kiln_plan_test_" + std::to_string(::getpid()) + "_" + name)).string();
}

TEST(PlanIo, RoundTripKeepsGraphAttributesConstantsAndChoices) {
  std::string path = temp_path("rt.kplan");
  ASSERT_TRUE(save_plan(sample_plan(), path).ok());
  auto loaded = load_plan(path);
  ASSERT_TRUE(loaded.ok()) << loaded.status().message();
  const Plan& p = *loaded;
  EXPECT_EQ(p.kiln_version, kiln_version());
  EXPECT_EQ(p.target.backend, "cpu");
  EXPECT_EQ(p.arena_bytes, 4096u);
  ASSERT_EQ(p.arena.size(), 1u);
  EXPECT_EQ(p.arena[0].value, "y");
  ASSERT_EQ(p.layers.size(), 2u);
  EXPECT_EQ(p.layers[1].tactic, "copy");
  EXPECT_EQ(p.layers[1].precision, "fp16");
  const Graph& g = *p.graph;
  ASSERT_EQ(g.inputs.size(), 1u);
  EXPECT_EQ(g.inputs[0]->type.to_string(), "float32[batch,3]");
  const Value* w = g.find_value("w");
  ASSERT_TRUE(w && w->constant);
  EXPECT_EQ(w->constant->data<float>()[2], 2.25f);
  // Weights are aligned for direct use from the mapping.
  EXPECT_EQ(reinterpret_cast<uintptr_t>(w->constant->raw_data()) % 256, 0u);
  const Node& n = *g.nodes()[0];
  EXPECT_EQ(n.opset, 17);
  EXPECT_FLOAT_EQ(n.attrs.f("alpha"), 0.25f);
  EXPECT_EQ(n.attrs.s("mode"), "fast");
  EXPECT_EQ(n.attrs.ints("axes"), (std::vector<int64_t>{-1, 2}));
  ASSERT_NE(n.attrs.tensor("table"), nullptr);
  EXPECT_EQ(n.attrs.tensor("table")->data<int64_t>()[1], 9);
  const Graph* body = n.attrs.graph("branch");
  ASSERT_NE(body, nullptr);
  EXPECT_EQ(body->nodes()[0]->inputs[0], w);  // outer-scope reference resolved to the same value
  EXPECT_EQ(g.nodes()[1]->inputs[1], nullptr);

  // The loaded graph runs.
  auto exec = CpuExecutor::create(p.graph);
  ASSERT_TRUE(exec.ok()) << exec.status().message();
  auto out = (*exec)->run({{"x", Tensor::from_vector<float>({2, 3}, {1, 2, 3, 4, 5, 6})}});
  ASSERT_TRUE(out.ok()) << out.status().message();
  EXPECT_EQ(out->at(1).data<float>()[1], -1.5f);
  fs::remove(path);
}

TEST(PlanIo, DamagedFilesAreRefusedWithTheReason) {
  auto bytes = serialize_plan(sample_plan());
  ASSERT_TRUE(bytes.ok());
  std::string path = temp_path("bad.kplan");
  auto load_bytes = [&](const std::string& b) {
    EXPECT_TRUE(write_file_atomic(path, b).ok());
    return load_plan(path);
  };
  auto r = load_bytes(bytes->substr(0, bytes->size() - 100));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("truncated"), std::string::npos) << r.status().message();

  std::string flipped = *bytes;
  flipped[200] ^= 0x5a;
  r = load_bytes(flipped);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("checksum"), std::string::npos) << r.status().message();

  r = load_bytes("ONNX? no, just text that is long enough to hold a header ............................");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("not a kiln plan"), std::string::npos);

  std::string other_version = *bytes;
  other_version[8] = 99;  // format_version
  r = load_bytes(other_version);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("format version 99"), std::string::npos) << r.status().message();
  EXPECT_NE(r.status().message().find("rebuild"), std::string::npos);

  r = load_plan(temp_path("missing.kplan"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound);
  fs::remove(path);
}

TEST(PlanIo, FailedSaveLeavesTheOldPlan) {
  std::string path = temp_path("keep.kplan");
  ASSERT_TRUE(save_plan(sample_plan(), path).ok());
  auto before = fs::file_size(path);
  Plan empty;  // no graph: serialization fails before anything is written
  EXPECT_FALSE(save_plan(empty, path).ok());
  EXPECT_EQ(fs::file_size(path), before);
  EXPECT_TRUE(load_plan(path).ok());
  fs::remove(path);
}

}  // namespace
}  // namespace kiln
