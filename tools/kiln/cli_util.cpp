#include "cli_util.hpp"

#include <cmath>
#include <cstdio>
#include <limits>

#include "io/file.hpp"
#include "io/npy.hpp"
#include "onnx/importer.hpp"
#include "util/error.hpp"

namespace kiln::cli {

std::string one_line(std::string s) {
  for (char& c : s)
    if (c == '\n' || c == '\r' || c == '\t') c = ' ';
  return s;
}

int report_error(const std::string& message) {
  std::fprintf(stderr, "kiln: error: %s\n", one_line(message).c_str());
  return 1;
}

int report_error(const Status& status) { return report_error(status.message()); }

namespace {
bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}
}  // namespace

Expected<Tensor> load_tensor_file(const std::string& path) {
  if (ends_with(path, ".pb")) return load_tensor_pb(path);
  KILN_ASSIGN_OR_RETURN(std::string bytes, read_file(path));
  if (ends_with(path, ".npy") || looks_like_npy(bytes)) return parse_npy(bytes, path);
  return load_tensor_pb(path);
}

std::string tensor_stats(const Tensor& t) {
  if (t.numel() == 0) return "empty";
  double lo = std::numeric_limits<double>::infinity(), hi = -lo, sum = 0;
  int64_t finite = 0, nans = 0, infs = 0;
  for (double v : t.to_double_vector()) {
    if (std::isnan(v)) {
      ++nans;
      continue;
    }
    if (std::isinf(v)) {
      ++infs;
      lo = std::min(lo, v);
      hi = std::max(hi, v);
      continue;
    }
    ++finite;
    lo = std::min(lo, v);
    hi = std::max(hi, v);
    sum += v;
  }
  std::string s;
  if (finite + infs > 0)
    s = fmt::format("min {:.6g} max {:.6g} mean {:.6g}", lo, hi, finite ? sum / static_cast<double>(finite) : NAN);
  if (nans) s += fmt::format("{}{} NaN", s.empty() ? "" : ", ", nans);
  if (infs) s += fmt::format(", {} Inf", infs);
  return s;
}

std::string format_bytes(uint64_t bytes) {
  if (bytes < 1024) return fmt::format("{} B", bytes);
  const char* units[] = {"KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(bytes) / 1024;
  int u = 0;
  for (; v >= 1024 && u < 3; ++u) v /= 1024;
  return fmt::format("{:.{}f} {}", v, v < 10 ? 2 : 1, units[u]);
}

}  // namespace kiln::cli
