// The public API (include/kiln/kiln.hpp) on the CPU backend: compile -> plan file -> load ->
// forward, checked against a naive computation; dynamic shapes; async runs; errors.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>

#include <unistd.h>

#include "kiln/kiln.hpp"
#include "onnx_test_util.hpp"

namespace kiln {
namespace {

namespace fs = std::filesystem;

constexpr int kIn = 16, kOut = 10;

// y = Relu(x @ W + B): x float32[batch, 16] (batch symbolic), W [16, 10], B [10].
struct Mlp {
  std::vector<float> w, b;
  std::string path;

  explicit Mlp(const std::string& dir) {
    std::mt19937 rng(7);
    std::uniform_real_distribution<float> u(-1.f, 1.f);
    for (int i = 0; i < kIn * kOut; ++i) w.push_back(u(rng));
    for (int i = 0; i < kOut; ++i) b.push_back(u(rng));
    onnx::ModelProto m = test::make_model(17);
    auto* g = m.mutable_graph();
    test::add_input(g, "x", onnx::TensorProto::FLOAT, {"batch", kIn});
    *g->add_initializer() = test::float_tensor("W", {kIn, kOut}, w);
    *g->add_initializer() = test::float_tensor("B", {kOut}, b);
    test::add_node(g, "MatMul", {"x", "W"}, {"m"}, "mm");
    test::add_node(g, "Add", {"m", "B"}, {"a"}, "add");
    test::add_node(g, "Relu", {"a"}, {"y"}, "relu");
    test::add_output(g, "y", onnx::TensorProto::FLOAT);
    path = dir + "/mlp.onnx";
    std::ofstream f(path, std::ios::binary);
    m.SerializeToOstream(&f);
  }

  std::vector<float> reference(const std::vector<float>& x) const {
    size_t rows = x.size() / kIn;
    std::vector<float> y(rows * kOut);
    for (size_t r = 0; r < rows; ++r)
      for (int o = 0; o < kOut; ++o) {
        double acc = b[o];
        for (int i = 0; i < kIn; ++i) acc += double(x[r * kIn + i]) * w[i * kOut + o];
        y[r * kOut + o] = static_cast<float>(std::max(acc, 0.0));
      }
    return y;
  }
};

std::vector<float> random_input(size_t rows, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-2.f, 2.f);
  std::vector<float> x(rows * kIn);
  for (float& v : x) v = u(rng);
  return x;
}

::testing::AssertionResult matches(const InferTensor& out, const std::vector<float>& want) {
  const float* got = out.host<float>();
  if (!got) return ::testing::AssertionFailure() << "no float data";
  if (static_cast<size_t>(out.numel()) != want.size())
    return ::testing::AssertionFailure() << out.numel() << " elements, expected " << want.size();
  for (size_t i = 0; i < want.size(); ++i)
    if (std::abs(got[i] - want[i]) > 1e-5f * (1 + std::abs(want[i])))
      return ::testing::AssertionFailure() << "element " << i << ": " << got[i] << " vs " << want[i];
  return ::testing::AssertionSuccess();
}

class PublicApi : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = (fs::temp_directory_path() / ("kiln_api_" + std::to_string(::getpid()))).string();
    fs::create_directories(dir_);
    mlp_ = std::make_unique<Mlp>(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string dir_;
  std::unique_ptr<Mlp> mlp_;
};

TEST_F(PublicApi, CompileLoadForwardMatchesReference) {
  CompileOptions options;
  options.backend = "cpu";
  options.input_shapes["x"] = {3, kIn};
  std::vector<std::string> log;
  options.log = [&](std::string_view line) { log.emplace_back(line); };
  std::string plan = dir_ + "/mlp.kplan";
  Status st = compile(mlp_->path, plan, options);
  ASSERT_TRUE(st.ok()) << st.message();
  EXPECT_FALSE(log.empty());

  auto loaded = load(plan);
  ASSERT_TRUE(loaded.ok()) << loaded.status().message();
  std::shared_ptr<Infer> infer = *loaded;
  EXPECT_EQ(infer->engine().backend(), "cpu");
  EXPECT_EQ(infer->engine().num_layers(), 3u);
  ASSERT_EQ(infer->engine().inputs().size(), 1u);
  EXPECT_EQ(infer->engine().inputs()[0].name, "x");
  EXPECT_EQ(infer->engine().inputs()[0].dtype, ElementType::kFloat32);
  EXPECT_EQ(infer->engine().inputs()[0].shape, (std::vector<int64_t>{3, kIn}));
  ASSERT_EQ(infer->num_inputs(), 1u);
  ASSERT_EQ(infer->num_outputs(), 1u);

  InferTensor* x = infer->input("x");
  ASSERT_EQ(x, infer->input(0));
  EXPECT_TRUE(x->is_input());
  EXPECT_EQ(x->nbytes(), 3u * kIn * sizeof(float));
  std::vector<float> data = random_input(3, 1);
  ASSERT_TRUE(x->copy_from(data.data(), data.size() * sizeof(float)).ok());
  ASSERT_TRUE(infer->forward().ok());
  InferTensor* y = infer->output("y");
  ASSERT_EQ(y, infer->output(0));
  EXPECT_TRUE(y->on_host());
  EXPECT_EQ(y->shape(), (std::vector<int64_t>{3, kOut}));
  EXPECT_EQ(y->host<double>(), nullptr);  // wrong element size: no typed view
  EXPECT_TRUE(matches(*y, mlp_->reference(data)));
  std::vector<float> copy(3 * kOut);
  ASSERT_TRUE(y->copy_to(copy.data(), copy.size() * sizeof(float)).ok());
  EXPECT_EQ(copy[5], y->host<float>()[5]);
}

TEST_F(PublicApi, DynamicDimsNeedResizeAndFollowTheInput) {
  auto engine = InferEngine::build(mlp_->path, CompileOptions{.backend = "cpu"});
  ASSERT_TRUE(engine.ok()) << engine.status().message();
  EXPECT_EQ((*engine)->inputs()[0].shape, (std::vector<int64_t>{-1, kIn}));
  auto infer = (*engine)->create_infer();
  ASSERT_TRUE(infer.ok()) << infer.status().message();
  InferTensor* x = (*infer)->input(0);
  EXPECT_EQ(x->host(), nullptr);
  EXPECT_EQ(x->numel(), 0);
  Status st = (*infer)->forward();
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find("resize"), std::string::npos) << st.message();
  EXPECT_FALSE(x->copy_from("abc", 3).ok());
  st = x->resize({2, kIn + 1});
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find("[batch,16]"), std::string::npos) << st.message();
  EXPECT_FALSE(x->resize({kIn}).ok());
  EXPECT_FALSE(x->resize({-1, kIn}).ok());

  for (int64_t rows : {2, 5}) {
    ASSERT_TRUE(x->resize({rows, kIn}).ok());
    std::vector<float> data = random_input(static_cast<size_t>(rows), static_cast<uint32_t>(rows));
    ASSERT_TRUE(x->copy_from(data.data(), data.size() * sizeof(float)).ok());
    ASSERT_TRUE((*infer)->forward().ok());
    EXPECT_EQ((*infer)->output(0)->shape(), (std::vector<int64_t>{rows, kOut}));
    EXPECT_TRUE(matches(*(*infer)->output(0), mlp_->reference(data)));
  }
}

TEST_F(PublicApi, AsyncOutputsComeBackOnlyWithToHost) {
  auto engine = InferEngine::build(mlp_->path, CompileOptions{.backend = "cpu", .input_shapes = {{"x", {4, kIn}}}});
  ASSERT_TRUE(engine.ok()) << engine.status().message();
  auto infer = (*engine)->create_infer();
  ASSERT_TRUE(infer.ok());
  Infer& in = **infer;
  InferTensor* y = in.output(0);
  EXPECT_FALSE(y->on_host());
  EXPECT_FALSE(y->to_host().ok());  // nothing has run

  std::vector<float> first = random_input(4, 11), second = random_input(4, 12);
  ASSERT_TRUE(in.input(0)->copy_from(first.data(), first.size() * sizeof(float)).ok());
  ASSERT_TRUE(in.forward_async().ok());
  ASSERT_TRUE(in.synchronize().ok());
  EXPECT_FALSE(y->on_host());
  ASSERT_TRUE(y->to_host().ok());
  EXPECT_TRUE(y->on_host());
  EXPECT_TRUE(matches(*y, mlp_->reference(first)));
  const void* where = y->host();

  // A second run: the host view keeps the first results until to_host() (no hidden sync).
  ASSERT_TRUE(in.input(0)->copy_from(second.data(), second.size() * sizeof(float)).ok());
  ASSERT_TRUE(in.forward_async().ok());
  EXPECT_FALSE(y->on_host());
  EXPECT_TRUE(matches(*y, mlp_->reference(first)));
  ASSERT_TRUE(y->to_host().ok());
  EXPECT_TRUE(matches(*y, mlp_->reference(second)));
  EXPECT_EQ(y->host(), where);  // same shape: the buffer stays put
}

TEST_F(PublicApi, InfersOfOneEngineAreIndependent) {
  auto engine = InferEngine::build(mlp_->path, CompileOptions{.backend = "cpu", .input_shapes = {{"x", {2, kIn}}}});
  ASSERT_TRUE(engine.ok()) << engine.status().message();
  auto a = (*engine)->create_infer(), b = (*engine)->create_infer();
  ASSERT_TRUE(a.ok() && b.ok());
  std::vector<float> xa = random_input(2, 21), xb = random_input(2, 22);
  ASSERT_TRUE((*a)->input(0)->copy_from(xa.data(), xa.size() * sizeof(float)).ok());
  ASSERT_TRUE((*b)->input(0)->copy_from(xb.data(), xb.size() * sizeof(float)).ok());
  ASSERT_TRUE((*a)->forward().ok());
  ASSERT_TRUE((*b)->forward().ok());
  EXPECT_TRUE(matches(*(*a)->output(0), mlp_->reference(xa)));
  EXPECT_TRUE(matches(*(*b)->output(0), mlp_->reference(xb)));
  EXPECT_EQ(&(*a)->engine(), &(*b)->engine());
}

TEST_F(PublicApi, ErrorsAreStatusesThatSayWhat) {
  Status st = compile(dir_ + "/missing.onnx", dir_ + "/m.kplan");
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find("missing.onnx"), std::string::npos) << st.message();
  EXPECT_FALSE(fs::exists(dir_ + "/m.kplan"));

  st = compile(mlp_->path, dir_ + "/m.kplan", CompileOptions{.backend = "tpu"});
  EXPECT_NE(st.message().find("'tpu'"), std::string::npos) << st.message();

  auto missing = load(dir_ + "/nope.kplan");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("nope.kplan"), std::string::npos);

  std::ofstream(dir_ + "/junk.kplan") << "KILNPLAN but not really a plan";
  auto junk = load(dir_ + "/junk.kplan");
  ASSERT_FALSE(junk.ok());
  EXPECT_NE(junk.status().message().find("junk.kplan"), std::string::npos) << junk.status().message();

  auto engine = InferEngine::build(mlp_->path, CompileOptions{.backend = "cpu", .input_shapes = {{"x", {1, kIn}}}});
  ASSERT_TRUE(engine.ok()) << engine.status().message();
  auto graph_infer = (*engine)->create_infer(InferOptions{.cuda_graph = true});
  ASSERT_FALSE(graph_infer.ok());  // refused, not silently ignored
  EXPECT_NE(graph_infer.status().message().find("CUDA"), std::string::npos);

  auto infer = (*engine)->create_infer();
  ASSERT_TRUE(infer.ok());
  EXPECT_EQ((*infer)->input(1), nullptr);
  EXPECT_EQ((*infer)->input("nope"), nullptr);
  EXPECT_EQ((*infer)->output(3), nullptr);
  float small[3] = {};
  st = (*infer)->input(0)->copy_from(small, sizeof(small));
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find("'x'"), std::string::npos);
  EXPECT_NE(st.message().find("64 bytes, given 12"), std::string::npos) << st.message();
  EXPECT_FALSE((*infer)->output(0)->copy_from(small, sizeof(small)).ok());  // outputs take no data
  EXPECT_FALSE((*infer)->output(0)->resize({1, kOut}).ok());
  EXPECT_FALSE((*infer)->output(0)->copy_to(small, sizeof(small)).ok());
}

TEST(PublicApiTypes, ElementTypeNamesAndSizes) {
  EXPECT_STREQ(element_type_name(ElementType::kFloat32), "float32");
  EXPECT_STREQ(element_type_name(ElementType::kBFloat16), "bfloat16");
  EXPECT_EQ(element_size(ElementType::kFloat16), 2u);
  EXPECT_EQ(element_size(ElementType::kInt64), 8u);
  EXPECT_EQ(element_size(ElementType::kBool), 1u);
}

}  // namespace
}  // namespace kiln
