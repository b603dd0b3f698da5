// The conformance runner behind `kiln conformance`: finds ONNX backend test cases (a folder with
// model.onnx and test_data_set_*/input_N.pb, output_N.pb), runs them and compares the outputs.
#pragma once

#include <string>
#include <vector>

#include "backend.hpp"

namespace kiln::cli {

struct TestCase {
  std::string suite;  // the basename of the folder given on the command line
  std::string name;   // the case folder relative to it ("test_abs")
  std::string dir;
  std::string id() const { return suite + "/" + name; }
};

enum class CaseStatus { kPass, kFail, kSkip };
const char* case_status_name(CaseStatus s);  // "pass", "fail", "skip"

struct CaseResult {
  TestCase test;
  CaseStatus status = CaseStatus::kFail;
  std::string reason;  // empty for a pass
  double seconds = 0;
};

// Every test case under `root` (recursively), sorted by name. Error when `root` is not a folder.
Expected<std::vector<TestCase>> find_test_cases(const std::string& root);

// Runs every data set of the case. Never throws: any error is a failure with its message, and an
// Unsupported status (an op, dtype or attribute kiln lacks) is a skip.
CaseResult run_test_case(const TestCase& test, BackendKind backend);

// ONNX backend-test tolerances: |got - want| <= atol + rtol * |want| for floating types, exact for
// integers and bool; NaN matches NaN, infinities must match; dtype and shape must match.
// Returns "" when `got` matches, else what differs.
std::string compare_tensors(const Tensor& got, const Tensor& want, double rtol = 1e-3, double atol = 1e-7);

}  // namespace kiln::cli
