#include "quant/calibration_cache.hpp"

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace kiln {

namespace {
constexpr const char* kMagic = "kiln-calibration-cache";
constexpr int kVersion = 1;
}  // namespace

Status write_calibration_cache(const std::string& path, const RangeTable& ranges) {
  std::string text = fmt::format("{} {} {}\n", kMagic, kVersion, ranges.algorithm);
  char buf[64];
  for (const auto& [name, amax] : ranges.amax) {
    std::snprintf(buf, sizeof(buf), "%a", static_cast<double>(amax));
    text += name + ": " + buf + "\n";
  }
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) return io_error("cannot write the calibration cache '{}'", tmp);
    out << text;
    out.flush();
    if (!out) return io_error("cannot write the calibration cache '{}'", tmp);
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    std::filesystem::remove(tmp, ec);
    return io_error("cannot write the calibration cache '{}'", path);
  }
  return Status::Ok();
}

Expected<RangeTable> read_calibration_cache(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return io_error("cannot read the calibration cache '{}'", path);
  std::string line;
  if (!std::getline(in, line)) return invalid_argument("calibration cache '{}' is empty", path);
  std::istringstream head(line);
  std::string magic, algo;
  int version = 0;
  head >> magic >> version >> algo;
  if (magic != kMagic)
    return invalid_argument("'{}' is not a kiln calibration cache (its first line should start with '{}')", path,
                            kMagic);
  if (version != kVersion)
    return invalid_argument("calibration cache '{}' has format version {}; this kiln reads version {}", path, version,
                            kVersion);
  if (algo.empty()) return invalid_argument("calibration cache '{}': the first line names no algorithm", path);
  RangeTable t;
  t.algorithm = algo;
  for (int line_no = 2; std::getline(in, line); ++line_no) {
    if (line.empty()) continue;
    const size_t sep = line.rfind(": ");
    if (sep == std::string::npos)
      return invalid_argument("calibration cache '{}', line {}: expected 'value name: amax', got '{}'", path, line_no,
                              line);
    const std::string num = line.substr(sep + 2);
    char* end = nullptr;
    errno = 0;
    const double v = std::strtod(num.c_str(), &end);
    if (num.empty() || *end != '\0' || errno == ERANGE || !std::isfinite(v) || v <= 0)
      return invalid_argument("calibration cache '{}', line {}: '{}' is not a positive number", path, line_no, num);
    t.amax[line.substr(0, sep)] = static_cast<float>(v);
  }
  return t;
}

}  // namespace kiln
