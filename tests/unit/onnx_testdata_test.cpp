// Imports every model of the ONNX backend test data (Debian's libonnx-testdata) and loads every
// input/output .pb: nothing may crash, and the counts of clean imports must not regress.
#include <gtest/gtest.h>

#include <filesystem>
#include <map>

#include "onnx/importer.hpp"

namespace kiln {
namespace {

namespace fs = std::filesystem;
const char* const kTestData = "/usr/share/libonnx-testdata/data";

struct Counts {
  int total = 0, ok = 0, unsupported = 0, other = 0;
  std::vector<std::string> failures;  // non-"unsupported" errors
};

Counts import_dir(const std::string& sub) {
  Counts c;
  fs::path dir = fs::path(kTestData) / sub;
  std::vector<fs::path> models;
  for (const auto& e : fs::directory_iterator(dir))
    if (fs::exists(e.path() / "model.onnx")) models.push_back(e.path() / "model.onnx");
  std::sort(models.begin(), models.end());
  for (const auto& m : models) {
    ++c.total;
    auto model = import_onnx_file(m.string());
    if (model.ok()) {
      ++c.ok;
      EXPECT_TRUE(model->graph != nullptr);
    } else if (model.status().code() == StatusCode::kUnsupported) {
      ++c.unsupported;
    } else {
      ++c.other;
      c.failures.push_back(model.status().to_string());
    }
  }
  return c;
}

class OnnxTestData : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists(kTestData)) GTEST_SKIP() << kTestData << " not installed (apt install libonnx-testdata)";
  }
};

TEST_F(OnnxTestData, ImportsEveryModel) {
  // Minimum clean imports per folder (raise these as the importer improves; never lower them).
  const std::map<std::string, int> kMinOk = {
      {"simple", 23}, {"pytorch-converted", 82}, {"pytorch-operator", 35}, {"node", 908}};
  for (const auto& [sub, min_ok] : kMinOk) {
    Counts c = import_dir(sub);
    std::string detail;
    for (const auto& f : c.failures) detail += "\n  " + f;
    std::printf("[ onnx data ] %s: %d models, %d imported, %d unsupported, %d other errors\n", sub.c_str(),
                c.total, c.ok, c.unsupported, c.other);
    EXPECT_GE(c.ok, min_ok) << sub << detail;
    EXPECT_EQ(c.other, 0) << sub << detail;
  }
}

TEST_F(OnnxTestData, LoadsEveryTensorFile) {
  int total = 0, ok = 0, unsupported = 0;
  std::vector<std::string> failures;
  for (const auto& e : fs::recursive_directory_iterator(kTestData)) {
    if (e.path().extension() != ".pb") continue;
    ++total;
    std::string name;
    auto t = load_tensor_pb(e.path().string(), &name);
    if (t.ok()) {
      ++ok;
    } else if (t.status().code() == StatusCode::kUnsupported) {
      ++unsupported;
      EXPECT_NE(t.status().message().find(e.path().string()), std::string::npos);
    } else {
      failures.push_back(t.status().to_string());
    }
  }
  std::printf("[ onnx data ] %d tensor files: %d loaded, %d unsupported (sequence/optional/string)\n", total,
              ok, unsupported);
  std::string detail;
  for (const auto& f : failures) detail += "\n  " + f;
  EXPECT_TRUE(failures.empty()) << detail;
  EXPECT_GE(ok, 3000);
}

}  // namespace
}  // namespace kiln
