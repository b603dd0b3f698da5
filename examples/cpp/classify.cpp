// kiln_example_classify: an image classifier with the public API (include/kiln/kiln.hpp).
//
//   kiln_example_classify resnet50.onnx [--input image.raw] [--backend cpu|cuda|auto] [--top 5]
//   kiln_example_classify resnet50.kplan ...
//
// An .onnx model is compiled first into a plan next to it (MODEL.kplan); a plan is loaded as is.
// The first input is read from a raw file of exactly its size (e.g. float32 NCHW pixels), or is
// a fixed test pattern; the first output is taken as class scores: softmax, then the top K.
#include <kiln/kiln.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <numeric>
#include <string>
#include <vector>

namespace {

int fail(const std::string& what) {
  std::fprintf(stderr, "classify: %s\n", what.c_str());
  return 1;
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::string shape_text(const std::vector<int64_t>& shape) {
  std::string s;
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? "x" : "") + std::to_string(shape[i]);
  return s.empty() ? "scalar" : s;
}

}  // namespace

int main(int argc, char** argv) {
  std::string path, input_file, backend = "auto";
  int top = 5;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if ((a == "--input" || a == "--backend" || a == "--top") && i + 1 < argc) {
      std::string v = argv[++i];
      if (a == "--input") input_file = v;
      else if (a == "--backend") backend = v;
      else top = std::max(1, std::atoi(v.c_str()));
    } else if (!a.empty() && a[0] != '-' && path.empty()) {
      path = a;
    } else {
      return fail("usage: kiln_example_classify MODEL.onnx|PLAN [--input FILE.raw] [--backend cpu|cuda|auto] [--top K]");
    }
  }
  if (path.empty()) return fail("usage: kiln_example_classify MODEL.onnx|PLAN [--input FILE.raw] [--top K]");

  // 1. Compile (once): ONNX -> plan file for this machine.
  std::string plan_path = path;
  if (ends_with(path, ".onnx")) {
    plan_path = path.substr(0, path.size() - 5) + ".kplan";
    kiln::CompileOptions options;
    options.backend = backend;
    options.log = [](std::string_view line) { std::printf("  %.*s\n", static_cast<int>(line.size()), line.data()); };
    std::printf("compiling %s -> %s\n", path.c_str(), plan_path.c_str());
    if (kiln::Status st = kiln::compile(path, plan_path, options); !st.ok()) return fail(st.message());
  }

  // 2. Load the plan and get an Infer (one per thread).
  auto loaded = kiln::load(plan_path);
  if (!loaded) return fail(loaded.status().message());
  std::shared_ptr<kiln::Infer> infer = *loaded;
  std::printf("loaded %s: backend %s, %zu layers\n", plan_path.c_str(), infer->engine().backend().c_str(),
              infer->engine().num_layers());

  // 3. The input: dynamic dims (CPU plans) become 1, then data from the file or a test pattern.
  kiln::InferTensor* image = infer->input(0);
  if (!image) return fail("the model has no inputs");
  std::vector<int64_t> shape = image->shape();
  for (int64_t& d : shape) d = d < 0 ? 1 : d;
  if (kiln::Status st = image->resize(shape); !st.ok()) return fail(st.message());
  if (!input_file.empty()) {
    std::ifstream f(input_file, std::ios::binary);
    std::vector<char> bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    if (!f.good() && !f.eof()) return fail("cannot read " + input_file);
    if (kiln::Status st = image->copy_from(bytes.data(), bytes.size()); !st.ok()) return fail(st.message());
  } else if (float* p = image->host<float>(); p && image->dtype() == kiln::ElementType::kFloat32) {
    for (int64_t i = 0; i < image->numel(); ++i) p[i] = 0.5f * std::sin(0.01f * static_cast<float>(i));
  } else {
    return fail(std::string("input '") + image->name() + "' is " + kiln::element_type_name(image->dtype()) +
                ": give its data with --input FILE.raw");
  }
  std::printf("input  '%s': %s[%s]\n", image->name().c_str(), kiln::element_type_name(image->dtype()),
              shape_text(image->shape()).c_str());

  // 4. Run and wait; the outputs are then on the host.
  if (kiln::Status st = infer->forward(); !st.ok()) return fail(st.message());
  const kiln::InferTensor* scores = infer->output(0);
  const float* s = scores->host<float>();
  if (!s || scores->dtype() != kiln::ElementType::kFloat32 || scores->numel() == 0)
    return fail("output 0 is not a float32 score vector");
  std::printf("output '%s': float32[%s]\n", scores->name().c_str(), shape_text(scores->shape()).c_str());

  // Softmax over the last dim of the first row, then the top K classes.
  int64_t classes = scores->shape().empty() ? 1 : scores->shape().back();
  double peak = *std::max_element(s, s + classes), sum = 0;
  std::vector<double> prob(static_cast<size_t>(classes));
  for (int64_t c = 0; c < classes; ++c) sum += prob[static_cast<size_t>(c)] = std::exp(s[c] - peak);
  std::vector<int64_t> order(static_cast<size_t>(classes));
  std::iota(order.begin(), order.end(), 0);
  size_t k = std::min<size_t>(static_cast<size_t>(top), order.size());
  std::partial_sort(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(k), order.end(),
                    [&](int64_t a, int64_t b) { return prob[static_cast<size_t>(a)] > prob[static_cast<size_t>(b)]; });
  for (size_t i = 0; i < k; ++i)
    std::printf("  class %5lld  p=%.4f  score=%.4f\n", static_cast<long long>(order[i]),
                prob[static_cast<size_t>(order[i])] / sum, s[order[i]]);

  // 5. Asynchronous runs: queue, (do other work), wait, then bring the outputs back explicitly.
  const int runs = 10;
  auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < runs; ++i) {
    if (kiln::Status st = infer->forward_async(); !st.ok()) return fail(st.message());
    if (kiln::Status st = infer->synchronize(); !st.ok()) return fail(st.message());
    if (kiln::Status st = infer->output(0)->to_host(); !st.ok()) return fail(st.message());
  }
  double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count() / runs;
  std::printf("%d more runs: %.3f ms each\n", runs, ms);
  return 0;
}
