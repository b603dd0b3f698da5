#include "quant/calibrate.hpp"

#include <cmath>
#include <filesystem>

#include "backends/cpu/cpu_executor.hpp"
#include "builder/specialize.hpp"
#include "quant/calibration_cache.hpp"

namespace kiln {

namespace {

bool observed(const Value* v) {
  return v && !v->constant && v->type.is_tensor() && v->type.dtype == DType::kFloat32;
}

}  // namespace

Expected<RangeTable> collect_ranges(const Graph& g, const std::vector<std::map<std::string, Tensor>>& batches,
                                    const CalibrationAlgorithm& algo,
                                    const std::function<void(std::string_view)>& log) {
  // A copy whose outputs are every float32 intermediate too: the executor keeps what it returns.
  GraphPtr copy = clone_graph(g);
  std::map<std::string, size_t> output_index;
  for (size_t i = 0; i < copy->outputs.size(); ++i) output_index.emplace(copy->outputs[i]->name, i);
  for (const auto& n : copy->nodes())
    for (Value* v : n->outputs)
      if (observed(v) && !output_index.count(v->name)) {
        output_index.emplace(v->name, copy->outputs.size());
        copy->outputs.push_back(v);
      }
  std::vector<std::pair<std::string, size_t>> watch;  // value name -> output index
  for (const auto& [name, idx] : output_index)  // node outputs (graph inputs come from the batch)
    if (observed(copy->outputs[idx]) && copy->outputs[idx]->producer) watch.emplace_back(name, idx);
  std::vector<std::string> input_names;
  for (const Value* in : copy->inputs)
    if (observed(in)) input_names.push_back(in->name);

  KILN_ASSIGN_OR_RETURN(auto exec, CpuExecutor::create(copy));
  std::map<std::string, Histogram> hist;
  for (size_t b = 0; b < batches.size(); ++b) {
    if (log) log(fmt::format("calibration: batch {}/{}", b + 1, batches.size()));
    auto outs = exec->run(batches[b]);
    if (!outs.ok()) return Status(outs.status()).add_context(fmt::format("calibration batch {}", b + 1));
    for (const std::string& name : input_names) {
      const Tensor& t = batches[b].at(name);
      hist[name].add(t.data<float>(), t.numel());
    }
    for (const auto& [name, idx] : watch) {
      const Tensor& t = (*outs)[idx];
      if (t.dtype() == DType::kFloat32) hist[name].add(t.data<float>(), t.numel());
    }
  }
  RangeTable table;
  table.algorithm = algo.name();
  for (const auto& [name, h] : hist) {
    const double amax = choose_amax(h, algo);
    if (amax > 0 && std::isfinite(static_cast<float>(amax))) table.amax[name] = static_cast<float>(amax);
  }
  return table;
}

Expected<RangeTable> calibrate(const Graph& g, const CalibrationOptions& o) {
  auto log = [&o](const std::string& line) {
    if (o.data.log) o.data.log(line);
  };
  KILN_ASSIGN_OR_RETURN(CalibrationAlgorithm algo, parse_calibration_algorithm(o.algorithm));
  std::error_code ec;
  if (!o.cache.empty() && std::filesystem::exists(o.cache, ec)) {
    KILN_ASSIGN_OR_RETURN(RangeTable cached, read_calibration_cache(o.cache));
    std::vector<std::string> unknown;
    for (const auto& [name, amax] : cached.amax)
      if (!g.find_value(name)) unknown.push_back(name);
    if (cached.algorithm != algo.name()) {
      log(fmt::format("warning: calibration cache '{}' was made with --calib-algo {}, not {}: recalibrating (the "
                      "cache will be replaced)",
                      o.cache, cached.algorithm, algo.name()));
    } else if (!unknown.empty()) {
      log(fmt::format("warning: calibration cache '{}' names {} values this model lacks (e.g. '{}'): it was made "
                      "for another model or build; recalibrating (the cache will be replaced)",
                      o.cache, unknown.size(), unknown[0]));
    } else {
      log(fmt::format("calibration: using cache '{}' ({}, {} ranges); no calibration run", o.cache,
                      cached.algorithm, cached.amax.size()));
      return cached;
    }
    if (o.data.dir.empty())
      return invalid_argument("calibration cache '{}' does not fit this build (see the warning) and there is no "
                              "--calib-data to recalibrate with",
                              o.cache);
  }
  if (o.data.dir.empty())
    return invalid_argument("INT8 needs calibration: give --calib-data DIR (or an existing --calib-cache FILE)");
  KILN_ASSIGN_OR_RETURN(auto batches, load_calibration_batches(g, o.data));
  log(fmt::format("calibration: {} batches, algorithm {}", batches.size(), algo.name()));
  KILN_ASSIGN_OR_RETURN(RangeTable ranges, collect_ranges(g, batches, algo, o.data.log));
  if (!o.cache.empty()) {
    KILN_RETURN_IF_ERROR(write_calibration_cache(o.cache, ranges));
    log(fmt::format("calibration: wrote cache '{}' ({} ranges)", o.cache, ranges.amax.size()));
  }
  return ranges;
}

}  // namespace kiln
