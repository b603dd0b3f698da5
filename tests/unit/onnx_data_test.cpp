// External tensor data and .pb tensor files.
#include <onnx/onnx-data_pb.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "onnx_test_util.hpp"

namespace kiln {
namespace {

namespace fs = std::filesystem;
using namespace kiln::test;
using onnx::TensorProto;

// A fresh folder under the system temp dir, removed at the end of the test.
class TempDir {
 public:
  TempDir() {
    path_ = fs::temp_directory_path() /
            ("kiln_onnx_test_" + std::to_string(::getpid()) + "_" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(path_);
    fs::create_directories(path_ / "model");
  }
  ~TempDir() { fs::remove_all(path_); }
  fs::path model_dir() const { return path_ / "model"; }
  fs::path root() const { return path_; }

 private:
  fs::path path_;
};

void write_file(const fs::path& p, const std::string& bytes) {
  std::ofstream out(p, std::ios::binary);
  out << bytes;
}

std::string floats_bytes(std::vector<float> v) {
  return std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(float));
}

// A model whose initializer 'w' (float[2]) lives in an external file.
onnx::ModelProto external_model(const std::string& location, const std::string& offset = "",
                                const std::string& length = "") {
  auto m = make_model(13);
  auto* g = m.mutable_graph();
  TensorProto* w = g->add_initializer();
  w->set_name("w");
  w->set_data_type(TensorProto::FLOAT);
  w->add_dims(2);
  w->set_data_location(TensorProto::EXTERNAL);
  auto kv = [&](const std::string& k, const std::string& v) {
    if (v.empty()) return;
    auto* e = w->add_external_data();
    e->set_key(k);
    e->set_value(v);
  };
  kv("location", location);
  kv("offset", offset);
  kv("length", length);
  add_node(g, "Identity", {"w"}, {"y"});
  add_output(g, "y");
  return m;
}

TEST(OnnxExternalData, ReadsDataRelativeToTheModelFolder) {
  TempDir dir;
  fs::create_directories(dir.model_dir() / "weights");
  write_file(dir.model_dir() / "weights" / "w.bin", "PAD!" + floats_bytes({1.5f, -2.f}) + "tail");
  std::string bytes;
  external_model("weights/w.bin", "4", "8").SerializeToString(&bytes);
  write_file(dir.model_dir() / "m.onnx", bytes);
  auto model = import_onnx_file((dir.model_dir() / "m.onnx").string());
  ASSERT_TRUE(model.ok()) << model.status().to_string();
  EXPECT_EQ(model->graph->find_value("w")->constant->to_double_vector(), (std::vector<double>{1.5, -2}));
  // Without length, the rest of the file after offset is the tensor.
  write_file(dir.model_dir() / "whole.bin", floats_bytes({3.f, 4.f}));
  auto whole = import_proto(external_model("whole.bin"), {}, dir.model_dir().string());
  ASSERT_TRUE(whole.ok()) << whole.status().to_string();
  EXPECT_EQ(whole->graph->find_value("w")->constant->to_double_vector(), (std::vector<double>{3, 4}));
}

TEST(OnnxExternalData, Errors) {
  TempDir dir;
  const std::string base = dir.model_dir().string();
  write_file(dir.root() / "secret.bin", floats_bytes({1, 2}));
  write_file(dir.model_dir() / "short.bin", floats_bytes({1}));
  write_file(dir.model_dir() / "ok.bin", floats_bytes({1, 2}));
  fs::create_symlink(dir.root() / "secret.bin", dir.model_dir() / "link.bin");
  auto err = [&](const onnx::ModelProto& m) { return import_proto(m, {}, base).status(); };
  EXPECT_TRUE(error_contains(err(external_model("../secret.bin")), StatusCode::kInvalidModel,
                             {"test.onnx", "'w'", "escapes the model folder"}));
  EXPECT_TRUE(error_contains(err(external_model("link.bin")), StatusCode::kInvalidModel, {"escapes"}));
  EXPECT_TRUE(error_contains(err(external_model((dir.root() / "secret.bin").string())), StatusCode::kInvalidModel,
                             {"absolute path"}));
  EXPECT_TRUE(error_contains(err(external_model("missing.bin")), StatusCode::kIoError, {"'w'", "missing.bin"}));
  EXPECT_TRUE(error_contains(err(external_model("short.bin")), StatusCode::kInvalidModel, {"'w'", "4 bytes"}));
  EXPECT_TRUE(error_contains(err(external_model("ok.bin", "4", "8")), StatusCode::kInvalidModel, {"truncated"}));
  EXPECT_TRUE(error_contains(err(external_model("ok.bin", "", "12")), StatusCode::kInvalidModel, {"length 12"}));
  EXPECT_TRUE(error_contains(err(external_model("ok.bin", "x")), StatusCode::kInvalidModel, {"offset 'x'"}));
  EXPECT_TRUE(error_contains(err(external_model("")), StatusCode::kInvalidModel, {"no location"}));
  EXPECT_TRUE(import_proto(external_model("ok.bin"), {}, base).ok());
  // A corrupt shape is refused by size, before anything is allocated.
  auto huge = external_model("ok.bin");
  huge.mutable_graph()->mutable_initializer(0)->set_dims(0, 1LL << 50);
  EXPECT_TRUE(error_contains(err(huge), StatusCode::kInvalidModel, {"'w'", "has 8 bytes"}));
  // Bytes given without a folder cannot resolve external data.
  EXPECT_TRUE(error_contains(import_proto(external_model("ok.bin"), {}, "").status(),
                             StatusCode::kInvalidArgument, {"external"}));
}

TEST(OnnxTensorFile, LoadsTensorProtoFiles) {
  TempDir dir;
  TensorProto t = float_tensor("input_0", {2, 2}, {1, 2, 3, 4}, /*raw=*/true);
  std::string bytes;
  t.SerializeToString(&bytes);
  const fs::path p = dir.model_dir() / "input_0.pb";
  write_file(p, bytes);
  std::string name;
  auto loaded = load_tensor_pb(p.string(), &name);
  ASSERT_TRUE(loaded.ok()) << loaded.status().to_string();
  EXPECT_EQ(name, "input_0");
  EXPECT_EQ(loaded->dims(), (Dims{2, 2}));
  EXPECT_EQ(loaded->to_double_vector(), (std::vector<double>{1, 2, 3, 4}));
}

TEST(OnnxTensorFile, Errors) {
  TempDir dir;
  const fs::path p = dir.model_dir() / "x.pb";
  EXPECT_TRUE(error_contains(load_tensor_pb(p.string()).status(), StatusCode::kNotFound, {p.string()}));
  write_file(p, "");
  EXPECT_TRUE(error_contains(load_tensor_pb(p.string()).status(), StatusCode::kInvalidArgument, {p.string(), "empty"}));
  write_file(p, "\xff\xff\xff garbage");
  EXPECT_FALSE(load_tensor_pb(p.string()).ok());
  EXPECT_NE(load_tensor_pb(p.string()).status().message().find(p.string()), std::string::npos);
  // String tensors load from string_data; a count that does not match the shape is an error.
  TensorProto s;
  s.set_name("s");
  s.set_data_type(TensorProto::STRING);
  s.add_dims(2);
  s.add_string_data("a");
  s.add_string_data("bc");
  std::string bytes;
  s.SerializeToString(&bytes);
  write_file(p, bytes);
  auto strings = load_tensor_pb(p.string());
  ASSERT_TRUE(strings.ok()) << strings.status().message();
  ASSERT_EQ(strings->dtype(), DType::kString);
  EXPECT_EQ(strings->data<std::string>()[1], "bc");
  s.add_dims(2);
  s.SerializeToString(&bytes);
  write_file(p, bytes);
  EXPECT_TRUE(error_contains(load_tensor_pb(p.string()).status(), StatusCode::kInvalidModel, {p.string(), "string"}));
  // Sequences and optionals (SequenceProto / OptionalProto files) are unsupported, not garbage.
  onnx::SequenceProto seq;
  seq.set_name("sequence");
  seq.set_elem_type(onnx::SequenceProto::TENSOR);
  *seq.add_tensor_values() = float_tensor("", {2}, {1, 2}, true);
  seq.SerializeToString(&bytes);
  write_file(p, bytes);
  EXPECT_TRUE(error_contains(load_tensor_pb(p.string()).status(), StatusCode::kUnsupported,
                             {p.string(), "sequence or optional", "'sequence'"}));
  onnx::OptionalProto opt;
  opt.set_name("maybe");
  opt.set_elem_type(onnx::OptionalProto::UNDEFINED);
  opt.SerializeToString(&bytes);
  write_file(p, bytes);
  EXPECT_TRUE(error_contains(load_tensor_pb(p.string()).status(), StatusCode::kUnsupported, {"'maybe'"}));
}

}  // namespace
}  // namespace kiln
