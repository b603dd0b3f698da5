#include "calib_batches.hpp"

#include <algorithm>
#include <filesystem>

#include "io/npy.hpp"
#include "util/error.hpp"

namespace kiln::cli {

namespace {

Expected<std::vector<std::string>> npy_files(const std::string& dir) {
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) return not_found("--calib-data '{}' is not a folder", dir);
  std::vector<std::string> files;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec))
    if (e.is_regular_file() && e.path().extension() == ".npy") files.push_back(e.path().string());
  if (ec) return invalid_argument("--calib-data '{}': {}", dir, ec.message());
  std::sort(files.begin(), files.end());
  if (files.empty()) return invalid_argument("--calib-data '{}' holds no .npy files", dir);
  return files;
}

}  // namespace

Expected<std::vector<std::map<std::string, Tensor>>> load_npy_batches(const Graph& g, const std::string& dir,
                                                                      int max_batches) {
  if (g.inputs.empty()) return invalid_argument("--calib-data: the model has no inputs");
  std::map<std::string, std::vector<std::string>> files;
  size_t n = SIZE_MAX;
  for (const Value* in : g.inputs) {
    std::string sub = g.inputs.size() == 1 ? dir : (std::filesystem::path(dir) / in->name).string();
    KILN_ASSIGN_OR_RETURN(files[in->name], npy_files(sub));
    n = std::min(n, files[in->name].size());
  }
  if (max_batches > 0) n = std::min(n, static_cast<size_t>(max_batches));
  std::vector<std::map<std::string, Tensor>> batches(n);
  for (const auto& [name, list] : files)
    for (size_t b = 0; b < n; ++b) {
      auto t = load_npy(list[b]);
      if (!t.ok()) return Status(t.status()).add_context("--calib-data input '" + name + "'");
      batches[b][name] = std::move(*t);
    }
  return batches;
}

}  // namespace kiln::cli
