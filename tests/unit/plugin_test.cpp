// Custom-op plugins: registry, node resolution (rules a/b/c), inference with symbolic dims, CPU
// execution, plan round trip, and the errors (missing plugin, failing plugin, bad libraries).
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "backends/cpu/cpu_executor.hpp"
#include "builder/builder.hpp"
#include "io/npy.hpp"
#include "kiln/plugin.hpp"
#include "onnx/importer.hpp"
#include "ops/shape_inference.hpp"
#include "plugin/plugin_node.hpp"
#include "runtime/plan.hpp"

namespace kiln {
namespace {

namespace fs = std::filesystem;

Status err(const std::string& m) { return Status(StatusCode::kInvalidArgument, m); }

// y = x * scale (float32). State: the scale, serialized as text.
class ScalePlugin : public Plugin {
 public:
  explicit ScalePlugin(float s) : scale(s) {}
  Status infer(const std::vector<PluginTensorDesc>& in, std::vector<PluginTensorDesc>& out) const override {
    if (in.size() != 1) return err("one input");
    out[0] = in[0];
    return Status::Ok();
  }
  bool supports(const std::vector<PluginTensorDesc>& in, PluginDevice d) const override {
    return d == PluginDevice::kCpu && in.size() == 1 && in[0].dtype == PluginDataType::kFloat32;
  }
  Status compute(const std::vector<PluginTensor>& in, const std::vector<PluginTensor>& out) const override {
    for (int64_t i = 0; i < in[0].numel(); ++i)
      static_cast<float*>(out[0].data)[i] = static_cast<const float*>(in[0].data)[i] * scale;
    return Status::Ok();
  }
  std::string serialize() const override { return std::to_string(scale); }
  std::unique_ptr<Plugin> clone() const override { return std::make_unique<ScalePlugin>(scale); }
  float scale;
};

Expected<float> parse_float(const std::string& s) {
  try {
    size_t used = 0;
    float v = std::stof(s, &used);
    if (used == s.size()) return v;
  } catch (const std::exception&) {
  }
  return err("'" + s + "' is not a number");
}

class ScaleCreator : public PluginCreator {
 public:
  ScaleCreator(std::string name, std::string version, std::string ns)
      : name_(std::move(name)), version_(std::move(version)), ns_(std::move(ns)) {}
  std::string name() const override { return name_; }
  std::string version() const override { return version_; }
  std::string plugin_namespace() const override { return ns_; }
  // `scale` (float) or, by the Plugin-op convention, `info` holding the number.
  Expected<std::unique_ptr<Plugin>> create(const PluginAttributes& a) const override {
    float s = a.f("scale", 1.f);
    if (a.has("info")) {
      auto v = parse_float(a.s("info"));
      if (!v.ok()) return v.status();
      s = *v;
    }
    return std::unique_ptr<Plugin>(std::make_unique<ScalePlugin>(s * (version_ == "2" ? 10.f : 1.f)));
  }
  Expected<std::unique_ptr<Plugin>> deserialize(const std::string& bytes) const override {
    auto v = parse_float(bytes);
    if (!v.ok()) return v.status();
    return std::unique_ptr<Plugin>(std::make_unique<ScalePlugin>(*v));
  }

 private:
  std::string name_, version_, ns_;
};

// A plugin whose compute fails.
class FailPlugin : public ScalePlugin {
 public:
  FailPlugin() : ScalePlugin(1) {}
  Status compute(const std::vector<PluginTensor>&, const std::vector<PluginTensor>&) const override {
    return Status(StatusCode::kRuntimeError, "boom: the device is on fire");
  }
  std::unique_ptr<Plugin> clone() const override { return std::make_unique<FailPlugin>(); }
};
class FailCreator : public ScaleCreator {
 public:
  FailCreator() : ScaleCreator("TestFail", "1", "") {}
  Expected<std::unique_ptr<Plugin>> create(const PluginAttributes&) const override {
    return std::unique_ptr<Plugin>(std::make_unique<FailPlugin>());
  }
};

// Registers the test creators once for the whole test binary.
void register_test_plugins() {
  static const bool done = [] {
    PluginRegistry& r = plugin_registry();
    EXPECT_TRUE(r.add(std::make_shared<ScaleCreator>("TestScale", "1", "")).ok());
    EXPECT_TRUE(r.add(std::make_shared<ScaleCreator>("TestVersioned", "1", "")).ok());
    EXPECT_TRUE(r.add(std::make_shared<ScaleCreator>("TestVersioned", "2", "")).ok());
    EXPECT_TRUE(r.add(std::make_shared<ScaleCreator>("TestNs", "1", "kiln.plugintest")).ok());
    // Same name as a kiln op, limited to one custom domain.
    EXPECT_TRUE(r.add(std::make_shared<ScaleCreator>("Relu", "1", "kiln.plugintest")).ok());
    EXPECT_TRUE(r.add(std::make_shared<FailCreator>()).ok());
    return true;
  }();
  (void)done;
}

class PluginTest : public ::testing::Test {
 protected:
  void SetUp() override { register_test_plugins(); }
};

// x[batch, 3] -> op -> y
GraphPtr one_node_graph(const std::string& op, const std::string& domain, Attributes attrs = {}) {
  auto g = std::make_shared<Graph>();
  Value* x = g->add_value("x", {DType::kFloat32, Shape({Dim::symbolic("batch"), Dim(3)})});
  Value* y = g->add_value("y");
  g->inputs = {x};
  g->outputs = {y};
  Node* n = g->add_node(op, {x}, {y}, "node0", domain, 1);
  n->attrs = std::move(attrs);
  return g;
}

Tensor input_2x3() { return Tensor::from_vector<float>({2, 3}, {1.f, -2.f, 3.5f, 0.25f, -0.5f, 7.f}); }

// Runs the graph on the CPU and checks y == x * scale.
void expect_scaled(GraphPtr g, float scale) {
  ASSERT_TRUE(infer_shapes(*g).ok());
  auto exec = CpuExecutor::create(g);
  ASSERT_TRUE(exec.ok()) << exec.status().message();
  auto out = (*exec)->run({{"x", input_2x3()}});
  ASSERT_TRUE(out.ok()) << out.status().message();
  Tensor x = input_2x3();
  ASSERT_EQ((*out)[0].dims(), x.dims());
  for (int64_t i = 0; i < x.numel(); ++i) EXPECT_FLOAT_EQ((*out)[0].data<float>()[i], x.data<float>()[i] * scale);
}

TEST_F(PluginTest, RegistryFindsByNameVersionAndNamespace) {
  PluginRegistry& r = plugin_registry();
  ASSERT_NE(r.find("TestScale"), nullptr);
  EXPECT_EQ(r.find("NoSuchPlugin"), nullptr);
  EXPECT_EQ(r.find("TestVersioned")->version(), "2");  // the newest
  EXPECT_EQ(r.find("TestVersioned", "1")->version(), "1");
  EXPECT_EQ(r.find("TestVersioned", "3"), nullptr);
  EXPECT_NE(r.find("TestNs", "", "kiln.plugintest"), nullptr);
  EXPECT_EQ(r.find("TestNs", "", "other.domain"), nullptr);
  EXPECT_NE(r.find("TestScale", "", "any.domain"), nullptr);  // no namespace: any domain
  Status dup = r.add(std::make_shared<ScaleCreator>("TestScale", "1", ""));
  EXPECT_FALSE(dup.ok());
  EXPECT_NE(dup.message().find("already registered"), std::string::npos);
}

TEST_F(PluginTest, RuleACustomDomain) {
  Attributes a;
  a.set("scale", 2.5f);
  expect_scaled(one_node_graph("TestNs", "kiln.plugintest", a), 2.5f);
  // Even an op name kiln has, in a custom domain whose plugin is registered.
  expect_scaled(one_node_graph("Relu", "kiln.plugintest", a), 2.5f);
}

TEST_F(PluginTest, RuleBPluginOpWithNameAndInfo) {
  Attributes a;
  a.set("name", std::string("TestScale"));
  a.set("info", std::string("-3"));
  expect_scaled(one_node_graph("Plugin", "", a), -3.f);
}

TEST_F(PluginTest, RuleCOpKilnLacks) {
  Attributes a;
  a.set("scale", 4.f);
  expect_scaled(one_node_graph("TestScale", "", a), 4.f);
  expect_scaled(one_node_graph("TestVersioned", "", a), 40.f);  // version 2 is chosen
}

TEST_F(PluginTest, KilnOpsInTheDefaultDomainAreNotReplaced) {
  GraphPtr g = one_node_graph("Relu", "");
  ASSERT_TRUE(infer_shapes(*g).ok());
  EXPECT_EQ(g->nodes()[0]->plugin, nullptr);
  auto out = (*CpuExecutor::create(g))->run({{"x", input_2x3()}});
  ASSERT_TRUE(out.ok());
  EXPECT_EQ((*out)[0].data<float>()[1], 0.f);  // Relu, not a scale
}

TEST_F(PluginTest, InferenceKeepsSymbolicDims) {
  GraphPtr g = one_node_graph("TestScale", "");
  ASSERT_TRUE(infer_shapes(*g).ok());
  EXPECT_EQ(g->outputs[0]->type.to_string(), "float32[batch,3]");
  EXPECT_EQ(g->nodes()[0]->plugin->describe(), "plugin 'TestScale' (version 1)");
}

TEST_F(PluginTest, CustomOpWithoutPluginSaysPassPlugin) {
  GraphPtr g = one_node_graph("Mystery", "com.nowhere");
  ASSERT_TRUE(infer_shapes(*g).ok());  // unknown ops are left untyped at import
  auto exec = CpuExecutor::create(g);
  ASSERT_FALSE(exec.ok());
  EXPECT_NE(exec.status().message().find("com.nowhere.Mystery"), std::string::npos) << exec.status().message();
  EXPECT_NE(exec.status().message().find("--plugin"), std::string::npos) << exec.status().message();

  Attributes a;
  a.set("name", std::string("NotLoaded"));
  auto exec2 = CpuExecutor::create(one_node_graph("Plugin", "", a));
  ASSERT_FALSE(exec2.ok());
  EXPECT_NE(exec2.status().message().find("'NotLoaded'"), std::string::npos) << exec2.status().message();
  EXPECT_NE(exec2.status().message().find("--plugin"), std::string::npos);
}

TEST_F(PluginTest, BadPluginNodesAreErrorsNamingTheNode) {
  GraphPtr g = one_node_graph("Plugin", "");  // no `name`
  Status st = infer_shapes(*g);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("node0"), std::string::npos);
  EXPECT_NE(st.message().find("'name'"), std::string::npos);

  Attributes a;
  a.set("name", std::string("TestScale"));
  a.set("info", std::string("not-a-number"));
  st = infer_shapes(*one_node_graph("Plugin", "", a));
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("node0"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("plugin 'TestScale'"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("not-a-number"), std::string::npos) << st.message();
}

TEST_F(PluginTest, PluginComputeErrorNamesNodeAndPlugin) {
  GraphPtr g = one_node_graph("TestFail", "");
  ASSERT_TRUE(infer_shapes(*g).ok());
  auto exec = CpuExecutor::create(g);
  ASSERT_TRUE(exec.ok()) << exec.status().message();
  auto out = (*exec)->run({{"x", input_2x3()}});
  ASSERT_FALSE(out.ok());
  const std::string& m = out.status().message();
  EXPECT_NE(m.find("node 'node0'"), std::string::npos) << m;
  EXPECT_NE(m.find("plugin 'TestFail'"), std::string::npos) << m;
  EXPECT_NE(m.find("boom"), std::string::npos) << m;
  EXPECT_EQ(out.status().code(), StatusCode::kRuntimeError);
}

std::string temp_path(const std::string& name) {
  return (fs::temp_directory_path() / ("kiln_plugin_test_" + std::to_string(::getpid()) + "_" + name)).string();
}

TEST_F(PluginTest, CpuPlanStoresThePluginStateAndReloads) {
  Attributes a;
  a.set("scale", 1.5f);
  Model m;
  m.graph = one_node_graph("TestScale", "", a);
  BuildOptions o;
  o.backend = "cpu";
  auto plan = build_plan(std::move(m), o);
  ASSERT_TRUE(plan.ok()) << plan.status().message();
  // The state travels in the plan, not through the attributes: make them disagree.
  plan->graph->nodes()[0]->attrs.set("scale", 100.f);
  std::string path = temp_path("scale.kplan");
  ASSERT_TRUE(save_plan(*plan, path).ok());
  auto loaded = load_plan(path);
  fs::remove(path);
  ASSERT_TRUE(loaded.ok()) << loaded.status().message();
  const Node& n = *loaded->graph->nodes()[0];
  ASSERT_NE(n.plugin, nullptr);
  EXPECT_EQ(n.plugin->name, "TestScale");
  EXPECT_EQ(n.plugin->version, "1");
  expect_scaled(loaded->graph, 1.5f);
}

TEST_F(PluginTest, PlanWithUnregisteredPluginFailsNamingIt) {
  Plan p;
  p.kiln_version = kiln_version();
  p.target.backend = "cpu";
  p.graph = one_node_graph("Gone", "com.gone");
  auto b = std::make_shared<PluginBinding>();
  b->name = "GonePlugin";
  b->version = "7";
  b->plugin = std::make_shared<ScalePlugin>(2.f);
  p.graph->nodes()[0]->plugin = b;
  p.layers = {{"", "fp32"}};
  std::string path = temp_path("gone.kplan");
  ASSERT_TRUE(save_plan(p, path).ok());
  auto loaded = load_plan(path);
  fs::remove(path);
  ASSERT_FALSE(loaded.ok());
  const std::string& m = loaded.status().message();
  EXPECT_NE(m.find("plugin 'GonePlugin' (version 7)"), std::string::npos) << m;
  EXPECT_NE(m.find("--plugin"), std::string::npos) << m;
  EXPECT_NE(m.find("node0"), std::string::npos) << m;
}

TEST(PluginLibrary, BadPathIsAnErrorNamingIt) {
  Status st = load_plugin_library("/nonexistent/libkiln_nothing.so");
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("/nonexistent/libkiln_nothing.so"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("cannot load plugin library"), std::string::npos) << st.message();

  std::string text = temp_path("not_a_library.so");
  std::ofstream(text) << "not an ELF file\n";
  st = load_plugin_library(text);
  fs::remove(text);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find(text), std::string::npos) << st.message();
}

TEST(PluginLibrary, VersionMismatchIsRefused) {
  Status st = load_plugin_library(KILN_BAD_PLUGIN);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find(KILN_BAD_PLUGIN), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("interface version 999"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find(std::to_string(kPluginInterfaceVersion)), std::string::npos) << st.message();
}

TEST(PluginLibrary, NotAPluginLibraryIsRefused) {
  // libkiln_test_bad_plugin's neighbour in the build: a shared library without the entry points.
  std::string lib = (fs::path(KILN_HSWISH_PLUGIN).parent_path().parent_path().parent_path() / "src" / "libkiln.so").string();
  if (!fs::exists(lib)) GTEST_SKIP() << lib << " not found";
  Status st = load_plugin_library(lib);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("is not a kiln plugin library"), std::string::npos) << st.message();
}

// The HSwish example library on its two exported models, against PyTorch's output.
TEST(PluginLibrary, HSwishExampleModelsMatchPyTorch) {
  ASSERT_TRUE(load_plugin_library(KILN_HSWISH_PLUGIN).ok());
  ASSERT_TRUE(load_plugin_library(KILN_HSWISH_PLUGIN).ok());  // loading twice is harmless
  ASSERT_NE(plugin_registry().find("HSwish", "1"), nullptr);
  std::string dir = std::string(KILN_SOURCE_DIR) + "/examples/plugins/hswish/";
  auto x = load_npy(dir + "hswish_input.npy");
  auto want = load_npy(dir + "hswish_expected.npy");
  ASSERT_TRUE(x.ok() && want.ok());
  for (const char* model : {"hswish_plugin_op.onnx", "hswish_domain_op.onnx"}) {
    SCOPED_TRACE(model);
    auto m = import_onnx_file(dir + model);
    ASSERT_TRUE(m.ok()) << m.status().message();
    int plugins = 0;
    for (const auto& n : m->graph->nodes()) plugins += n->plugin != nullptr;
    EXPECT_EQ(plugins, 2);
    EXPECT_EQ(m->graph->outputs[0]->type.to_string(), "float32[batch,4,8,8]");
    auto exec = CpuExecutor::create(m->graph);
    ASSERT_TRUE(exec.ok()) << exec.status().message();
    auto out = (*exec)->run({{"x", *x}});
    ASSERT_TRUE(out.ok()) << out.status().message();
    ASSERT_EQ((*out)[0].dims(), want->dims());
    double max_err = 0;
    for (int64_t i = 0; i < want->numel(); ++i)
      max_err = std::max(max_err, std::abs(double((*out)[0].data<float>()[i]) - want->data<float>()[i]));
    EXPECT_LT(max_err, 1e-5);
  }
}

}  // namespace
}  // namespace kiln
