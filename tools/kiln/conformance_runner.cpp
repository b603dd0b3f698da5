#include "conformance_runner.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <new>

#include "cli_util.hpp"
#include "onnx/importer.hpp"
#include "util/error.hpp"

namespace kiln::cli {

namespace fs = std::filesystem;

namespace {

bool is_data_set(const fs::path& p) {
  std::error_code ec;
  return fs::is_directory(p, ec) && p.filename().string().rfind("test_data_set_", 0) == 0;
}

// input_0.pb, input_1.pb, ... in numeric order (input_10 after input_9).
std::vector<fs::path> numbered_files(const fs::path& dir, const std::string& prefix) {
  std::vector<std::pair<long, fs::path>> found;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    std::string name = e.path().filename().string();
    if (name.rfind(prefix, 0) != 0 || e.path().extension() != ".pb") continue;
    std::string num = name.substr(prefix.size(), name.size() - prefix.size() - 3);
    if (num.empty() || num.size() > 6 || num.find_first_not_of("0123456789") != std::string::npos) continue;
    found.emplace_back(std::stol(num), e.path());
  }
  std::sort(found.begin(), found.end());
  std::vector<fs::path> out;
  for (auto& f : found) out.push_back(f.second);
  return out;
}

std::string index_text(int64_t flat, const Dims& dims) {
  if (dims.empty()) return "[]";
  Dims idx(dims.size());
  for (size_t d = dims.size(); d-- > 0;) {
    idx[d] = flat % dims[d];
    flat /= dims[d];
  }
  return "[" + fmt::format("{}", fmt::join(idx, ",")) + "]";
}

// One element for a message: integers exactly (int64 values beyond 2^53 included).
std::string element_text(const Tensor& t, size_t i) {
  std::string out;
  if (t.dtype() == DType::kString) return fmt::format("'{}'", t.data<std::string>()[i]);
  dispatch_dtype(t.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    if constexpr (std::is_integral_v<T>) out = fmt::format("{}", t.data<T>()[i]);
    else out = fmt::format("{:.8g}", static_cast<double>(static_cast<compute_t<T>>(t.data<T>()[i])));
  });
  return out;
}

// The ONNX test data stores bfloat16 tensors as uint16 bit patterns (numpy has no bfloat16): read
// them as bfloat16 where the model has bfloat16.
Tensor as_bfloat16_if(const Tensor& t, bool wanted) {
  if (!wanted || t.dtype() != DType::kUInt16) return t;
  return Tensor::from_bytes(DType::kBFloat16, t.dims(), t.raw_data());
}

// A failed step: Unsupported statuses make the case a skip, anything else a failure.
struct Outcome {
  CaseStatus status;
  std::string reason;
};
Outcome from_status(const Status& st, const std::string& step) {
  return {st.code() == StatusCode::kUnsupported ? CaseStatus::kSkip : CaseStatus::kFail, step + ": " + st.message()};
}

// The first op in the graph (subgraphs included) whose outputs are random draws: the reference data
// came from numpy's global generator, which no implementation can reproduce.
std::string random_op_in(const Graph& g) {
  static const char* const kRandomOps[] = {"Bernoulli",  "RandomUniform",     "RandomUniformLike",
                                           "RandomNormal", "RandomNormalLike", "Multinomial"};
  for (const auto& n : g.nodes()) {
    if (n->domain.empty() || n->domain == "ai.onnx")
      for (const char* op : kRandomOps)
        if (n->op_type == op) return op;
    for (const Graph* sg : n->subgraphs())
      if (std::string op = random_op_in(*sg); !op.empty()) return op;
  }
  return "";
}

const char* kind_text(const RuntimeValue& v) {
  return as_tensor(v) ? "a tensor" : as_sequence(v) ? "a sequence" : "an empty optional";
}

// compare_tensors for any value: a sequence matches element by element.
std::string compare_values(const RuntimeValue& got, const RuntimeValue& want, bool shapes_only) {
  if (got.index() != want.index()) return fmt::format("got {}, expected {}", kind_text(got), kind_text(want));
  if (const Tensor* g = as_tensor(got)) {
    const Tensor& w = *as_tensor(want);
    if (!shapes_only) return compare_tensors(*g, w);
    return g->dtype() != w.dtype() || g->dims() != w.dims()
               ? fmt::format("got {}, expected {}", g->describe(), w.describe())
               : "";
  }
  if (const TensorSequence* g = as_sequence(got)) {
    const TensorSequence& w = *as_sequence(want);
    if (g->tensors.size() != w.tensors.size())
      return fmt::format("a sequence of {} tensors, expected {}", g->tensors.size(), w.tensors.size());
    if (g->dtype != w.dtype && w.dtype != DType::kUndefined)
      return fmt::format("a sequence of {}, expected {}", dtype_name(g->dtype), dtype_name(w.dtype));
    for (size_t i = 0; i < g->tensors.size(); ++i)
      if (std::string d = compare_values(g->tensors[i], w.tensors[i], shapes_only); !d.empty())
        return fmt::format("element {}: {}", i, d);
  }
  return "";
}

// With `random_op` set only the outputs' dtypes and shapes are compared.
Outcome run_data_set(const Graph& g, const Runner& runner, const fs::path& dir, const std::string& random_op) {
  auto input_files = numbered_files(dir, "input_");
  auto output_files = numbered_files(dir, "output_");
  if (input_files.size() > g.inputs.size())
    return {CaseStatus::kFail, fmt::format("{} input files for a model with {} inputs", input_files.size(),
                                           g.inputs.size())};
  // Feeds bind by position, as the ONNX backend test runner does; graph inputs beyond the files
  // stay absent (the executor reports them if they are required).
  std::map<std::string, RuntimeValue> feeds;
  for (size_t i = 0; i < input_files.size(); ++i) {
    auto v = load_value_pb(input_files[i].string(), g.inputs[i]->type);
    if (!v.ok()) return from_status(v.status(), "loading " + input_files[i].filename().string());
    if (const Tensor* t = as_tensor(*v)) *v = as_bfloat16_if(*t, g.inputs[i]->type.dtype == DType::kBFloat16);
    feeds[g.inputs[i]->name] = std::move(*v);
  }
  auto outs = runner.run_values(feeds);
  if (!outs.ok()) return from_status(outs.status(), "run");
  if (outs->size() != output_files.size())
    return {CaseStatus::kFail, fmt::format("the model has {} outputs, the test data {}", outs->size(),
                                           output_files.size())};
  for (size_t i = 0; i < output_files.size(); ++i) {
    auto want = load_value_pb(output_files[i].string(), g.outputs[i]->type);
    if (!want.ok()) return from_status(want.status(), "loading " + output_files[i].filename().string());
    const Tensor* got_t = as_tensor((*outs)[i]);
    if (const Tensor* t = as_tensor(*want)) *want = as_bfloat16_if(*t, got_t && got_t->dtype() == DType::kBFloat16);
    std::string diff = compare_values((*outs)[i], *want, !random_op.empty());
    if (!diff.empty()) return {CaseStatus::kFail, fmt::format("output {} ('{}'): {}", i, g.outputs[i]->name, diff)};
  }
  return {CaseStatus::kPass, ""};
}

Outcome run_case(const TestCase& test, BackendKind backend) {
  auto model = import_onnx_file((fs::path(test.dir) / "model.onnx").string());
  if (!model.ok()) return from_status(model.status(), "import");
  // Reference outputs are exact float32: no TF32 on the GPU.
  BuildOptions exact;
  exact.tf32 = false;
  auto runner = create_runner(backend, model->graph, exact);
  if (!runner.ok()) return from_status(runner.status(), "prepare");
  const std::string random_op = random_op_in(*model->graph);
  std::vector<fs::path> sets;
  for (const auto& e : fs::directory_iterator(test.dir))
    if (is_data_set(e.path())) sets.push_back(e.path());
  std::sort(sets.begin(), sets.end());
  for (const fs::path& set : sets) {
    Outcome o = run_data_set(*model->graph, **runner, set, random_op);
    if (o.status != CaseStatus::kPass) {
      if (sets.size() > 1) o.reason = set.filename().string() + ": " + o.reason;
      return o;
    }
  }
  if (!random_op.empty())
    return {CaseStatus::kSkip, fmt::format("{} draws random numbers: the reference values cannot be matched (the "
                                           "outputs' dtypes and shapes do)",
                                           random_op)};
  return {CaseStatus::kPass, ""};
}

}  // namespace

const char* case_status_name(CaseStatus s) {
  switch (s) {
    case CaseStatus::kPass: return "pass";
    case CaseStatus::kFail: return "fail";
    case CaseStatus::kSkip: return "skip";
  }
  return "?";
}

Expected<std::vector<TestCase>> find_test_cases(const std::string& root) {
  std::error_code ec;
  if (!fs::exists(root, ec)) return not_found("test data folder '{}' does not exist", root);
  if (!fs::is_directory(root, ec)) return invalid_argument("'{}' is not a folder", root);
  fs::path base = fs::path(root).lexically_normal();
  std::string suite = (base.filename().empty() ? base.parent_path() : base).filename().string();
  std::vector<TestCase> out;
  auto it = fs::recursive_directory_iterator(base, fs::directory_options::skip_permission_denied, ec);
  if (ec) return io_error("cannot read folder '{}': {}", root, ec.message());
  for (; it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (ec) return io_error("cannot read folder '{}': {}", root, ec.message());
    const fs::path& p = it->path();
    if (!it->is_directory(ec) || is_data_set(p) || !fs::is_regular_file(p / "model.onnx", ec)) continue;
    bool has_data = false;
    for (const auto& e : fs::directory_iterator(p, ec)) has_data |= is_data_set(e.path());
    if (!has_data) continue;
    out.push_back(TestCase{suite, fs::relative(p, base).generic_string(), p.string()});
  }
  std::sort(out.begin(), out.end(), [](const TestCase& a, const TestCase& b) { return a.name < b.name; });
  return out;
}

CaseResult run_test_case(const TestCase& test, BackendKind backend) {
  CaseResult r{test};
  Timer timer;
  Outcome o;
  try {
    o = run_case(test, backend);
  } catch (const std::bad_alloc&) {
    o = {CaseStatus::kFail, "out of memory"};
  } catch (const std::exception& e) {
    o = {CaseStatus::kFail, std::string("exception: ") + e.what()};
  } catch (...) {
    o = {CaseStatus::kFail, "unknown exception"};
  }
  r.status = o.status;
  // Messages name files by full path; within a case report, the case folder goes without saying.
  std::string prefix = test.dir + "/";
  for (size_t p; (p = o.reason.find(prefix)) != std::string::npos;) o.reason.erase(p, prefix.size());
  r.reason = one_line(o.reason);
  r.seconds = timer.seconds();
  return r;
}

std::string compare_tensors(const Tensor& got, const Tensor& want, double rtol, double atol) {
  if (got.dtype() != want.dtype())
    return fmt::format("dtype {}, expected {}", dtype_name(got.dtype()), dtype_name(want.dtype()));
  if (got.dims() != want.dims())
    return fmt::format("shape [{}], expected [{}]", dims_to_string(got.dims()), dims_to_string(want.dims()));
  if (got.dtype() == DType::kString) {  // strings have no bytes to compare: compare the text
    const std::string *pa = got.data<std::string>(), *pb = want.data<std::string>();
    int64_t bad = 0, first = -1;
    for (int64_t i = 0; i < got.numel(); ++i)
      if (pa[i] != pb[i] && bad++ == 0) first = i;
    if (bad == 0) return "";
    return fmt::format("{} of {} strings differ; first at {}: got {}, expected {}", bad, got.numel(),
                       index_text(first, got.dims()), element_text(got, static_cast<size_t>(first)),
                       element_text(want, static_cast<size_t>(first)));
  }
  bool exact = !is_floating(got.dtype());
  auto a = got.to_double_vector(), b = want.to_double_vector();
  const auto* pa = static_cast<const char*>(got.raw_data());
  const auto* pb = static_cast<const char*>(want.raw_data());
  const size_t size = dtype_size(got.dtype());
  int64_t bad = 0, first = -1;
  double max_diff = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    bool ok;
    if (exact) ok = std::memcmp(pa + i * size, pb + i * size, size) == 0;  // exact even beyond 2^53
    else if (std::isnan(b[i]) || std::isnan(a[i])) ok = std::isnan(a[i]) && std::isnan(b[i]);
    else if (std::isinf(b[i]) || std::isinf(a[i])) ok = a[i] == b[i];
    else ok = std::abs(a[i] - b[i]) <= atol + rtol * std::abs(b[i]);
    if (ok) continue;
    if (first < 0) first = static_cast<int64_t>(i);
    ++bad;
    double d = std::abs(a[i] - b[i]);  // approximate for huge integers; only reported for floats
    if (!(d <= max_diff)) max_diff = d;  // NaN propagates into the report
  }
  if (bad == 0) return "";
  auto f = static_cast<size_t>(first);
  std::string where = fmt::format("first at {}: got {}, expected {}", index_text(first, got.dims()),
                                  element_text(got, f), element_text(want, f));
  if (exact) return fmt::format("{} of {} values differ; {}", bad, a.size(), where);
  return fmt::format("{} of {} values differ (max abs diff {:.6g}, rtol {:g}, atol {:g}); {}", bad, a.size(),
                     max_diff, rtol, atol, where);
}

}  // namespace kiln::cli
