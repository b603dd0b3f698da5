#include "quant/calibrate.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <system_error>
#include <thread>

#include "backends/cpu/cpu_executor.hpp"
#include "builder/backend.hpp"
#include "builder/builder.hpp"
#include "builder/specialize.hpp"
#include "runtime/engine.hpp"
#include "quant/calibration_cache.hpp"

namespace kiln {

namespace {

bool observed(const Value* v) {
  return v && !v->constant && v->type.is_tensor() && v->type.dtype == DType::kFloat32;
}

// Runs one batch; the result is in the observed graph's output order.
using BatchRunner = std::function<Expected<std::vector<Tensor>>(const std::map<std::string, Tensor>&)>;

// The observed graph as a float32 CUDA plan (built through the generic builder: TF32 off, no
// precision passes, so the values equal the CPU's up to float rounding), one per input-shape set.
class PlanRunner {
 public:
  PlanRunner(GraphPtr graph, std::vector<std::string> watched, const CalibrationOptions& o,
             std::function<void(std::string_view)> log)
      : graph_(std::move(graph)), watched_(std::move(watched)), log_(std::move(log)) {
    build_.backend = o.backend;
    build_.tf32 = false;  // exact float32 math: ranges as on the CPU
    build_.workspace_bytes = o.workspace_bytes;
    build_.timing_cache = o.timing_cache;
    build_.disabled_passes = o.disabled_passes;
  }

  Expected<std::vector<Tensor>> run(const std::map<std::string, Tensor>& batch) {
    std::map<std::string, Dims> shapes;
    for (const Value* in : graph_->inputs) {
      auto it = batch.find(in->name);
      if (it == batch.end()) return invalid_argument("calibration batch has no input '{}'", in->name);
      shapes[in->name] = it->second.dims();
    }
    auto it = plans_.find(shapes);
    if (it == plans_.end()) {
      KILN_ASSIGN_OR_RETURN(Built b, build(shapes));
      it = plans_.emplace(shapes, std::move(b)).first;
    }
    Built& b = it->second;
    std::map<std::string, Tensor> inputs;  // the plan's (the builder may have dropped unused ones)
    for (const BindingInfo& in : b.engine->inputs()) inputs[in.name] = batch.at(in.name);
    KILN_ASSIGN_OR_RETURN(std::vector<Tensor> outs, b.ctx->run(inputs));
    std::vector<Tensor> ordered(graph_->outputs.size());
    for (size_t i = 0; i < ordered.size(); ++i)
      if (b.index[i] >= 0) ordered[i] = std::move(outs[static_cast<size_t>(b.index[i])]);
    return ordered;
  }

 private:
  struct Built {
    std::shared_ptr<Engine> engine;
    std::unique_ptr<ExecutionContext> ctx;
    std::vector<int> index;  // graph output i -> engine output (-1: not kept)
  };

  Expected<Built> build(const std::map<std::string, Dims>& shapes) {
    auto start = std::chrono::steady_clock::now();
    BuildOptions o = build_;
    o.input_shapes = shapes;
    Model model;
    model.graph = clone_graph(*graph_);  // the builder rewrites its graph
    KILN_ASSIGN_OR_RETURN(Plan plan, build_plan(std::move(model), o));
    Built b;
    KILN_ASSIGN_OR_RETURN(b.engine, Engine::from_plan(std::move(plan)));
    KILN_ASSIGN_OR_RETURN(b.ctx, b.engine->create_context());
    std::map<std::string, int> by_name;
    const std::vector<BindingInfo> outs = b.engine->outputs();
    for (size_t i = 0; i < outs.size(); ++i) by_name.emplace(outs[i].name, static_cast<int>(i));
    for (const Value* v : graph_->outputs) {
      auto f = by_name.find(v->name);
      b.index.push_back(f == by_name.end() ? -1 : f->second);
    }
    // Every observed value must come back as itself: a pass that fused it away or renamed it
    // would leave its range out.
    for (const std::string& name : watched_) {
      auto f = by_name.find(name);
      if (f == by_name.end())
        return internal_error("value '{}' is not an output of the {} calibration plan (a graph pass removed or "
                              "renamed it); calibrate with --calib-backend cpu",
                              name, build_.backend);
      if (outs[static_cast<size_t>(f->second)].dtype != DType::kFloat32)
        return internal_error("value '{}' is {} in the {} calibration plan, not float32; calibrate with "
                              "--calib-backend cpu",
                              name, dtype_name(outs[static_cast<size_t>(f->second)].dtype), build_.backend);
    }
    if (log_)
      log_(fmt::format("calibration: float32 {} plan for {} with {} observed values built in {:.2f} s",
                       build_.backend, describe(shapes), watched_.size(),
                       std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count()));
    return b;
  }

  static std::string describe(const std::map<std::string, Dims>& shapes) {
    std::string s;
    for (const auto& [name, dims] : shapes) s += (s.empty() ? "" : ", ") + name + ": " + dims_to_string(dims);
    return s;
  }

  GraphPtr graph_;
  std::vector<std::string> watched_;
  std::function<void(std::string_view)> log_;
  BuildOptions build_;
  std::map<std::map<std::string, Dims>, Built> plans_;
};

// One batch into the histograms, spread over threads by value: each histogram is still filled
// by one thread in batch order, so the counts are those of a serial pass.
void add_to_histograms(std::vector<std::pair<Histogram*, const Tensor*>>& work) {
  int64_t total = 0;
  for (const auto& [h, t] : work) total += t->numel();
  const size_t threads = std::min<size_t>(
      {work.size(), std::max(1u, std::thread::hardware_concurrency()), static_cast<size_t>(total >> 20) + 1, 32});
  auto add = [](const std::pair<Histogram*, const Tensor*>& w) {
    w.first->add(w.second->data<float>(), w.second->numel());
  };
  if (threads <= 1) {
    for (const auto& w : work) add(w);
    return;
  }
  // Largest first, handed out one at a time: a few big tensors do not end up on one thread.
  std::sort(work.begin(), work.end(),
            [](const auto& a, const auto& b) { return a.second->numel() > b.second->numel(); });
  std::atomic<size_t> next{0};
  auto loop = [&] {
    for (size_t i = next++; i < work.size(); i = next++) add(work[i]);
  };
  std::vector<std::thread> pool;
  for (size_t i = 1; i < threads; ++i) {
    try {
      pool.emplace_back(loop);
    } catch (const std::system_error&) {
      break;  // no more threads: this one does the rest
    }
  }
  loop();
  for (std::thread& t : pool) t.join();
}

}  // namespace

Expected<std::string> check_calibration_backend(const std::string& backend) {
  if (backend.empty() || backend == "cpu") return std::string("cpu");
  if (backend != "cuda") return invalid_argument("unknown calibration backend '{}' (choose cpu or cuda)", backend);
  const Backend* cuda = find_backend("cuda");
  if (!cuda) return unsupported("--calib-backend cuda: this build of kiln has no CUDA backend (use --calib-backend cpu)");
  Status st = cuda->available();
  if (!st.ok())
    return unsupported("--calib-backend cuda: the CUDA backend cannot run here: {} (use --calib-backend cpu)",
                       st.message());
  return backend;
}

Expected<RangeTable> collect_ranges(const Graph& g, const std::vector<std::map<std::string, Tensor>>& batches,
                                    const CalibrationAlgorithm& algo,
                                    const std::function<void(std::string_view)>& log, const CalibrationOptions& o) {
  KILN_ASSIGN_OR_RETURN(std::string backend, check_calibration_backend(o.backend));
  // A copy whose outputs are every float32 intermediate too: a run returns (keeps) its outputs.
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

  BatchRunner runner;
  std::shared_ptr<CpuExecutor> exec;
  std::shared_ptr<PlanRunner> plan;
  if (backend == "cpu") {
    KILN_ASSIGN_OR_RETURN(auto e, CpuExecutor::create(copy));
    exec = std::move(e);
    runner = [&exec](const std::map<std::string, Tensor>& b) { return exec->run(b); };
  } else {
    std::vector<std::string> watched;
    for (const auto& [name, idx] : watch) watched.push_back(name);
    plan = std::make_shared<PlanRunner>(copy, std::move(watched), o, log);
    runner = [&plan](const std::map<std::string, Tensor>& b) { return plan->run(b); };
  }
  std::map<std::string, Histogram> hist;
  for (const std::string& name : input_names) hist[name];  // every entry made before threads fill them
  for (const auto& [name, idx] : watch) hist[name];
  double run_s = 0, hist_s = 0;
  for (size_t b = 0; b < batches.size(); ++b) {
    if (log) log(fmt::format("calibration: batch {}/{} ({})", b + 1, batches.size(), backend));
    auto t0 = std::chrono::steady_clock::now();
    auto outs = runner(batches[b]);
    if (!outs.ok())
      return Status(outs.status()).add_context(fmt::format("calibration batch {} ({})", b + 1, backend));
    auto t1 = std::chrono::steady_clock::now();
    std::vector<std::pair<Histogram*, const Tensor*>> work;
    for (const std::string& name : input_names) work.emplace_back(&hist.at(name), &batches[b].at(name));
    for (const auto& [name, idx] : watch)
      if ((*outs)[idx].dtype() == DType::kFloat32) work.emplace_back(&hist.at(name), &(*outs)[idx]);
    add_to_histograms(work);
    run_s += std::chrono::duration<double>(t1 - t0).count();
    hist_s += std::chrono::duration<double>(std::chrono::steady_clock::now() - t1).count();
  }
  if (log && !batches.empty())
    log(fmt::format("calibration: {:.2f} s running the float32 model ({}), {:.2f} s in histograms", run_s, backend,
                    hist_s));
  RangeTable table;
  table.algorithm = algo.name();
  for (const auto& [name, h] : hist) {
    const double amax = choose_amax(h, algo);
    if (amax > 0 && std::isfinite(static_cast<float>(amax))) table.amax[name] = static_cast<float>(amax);
  }
  return table;
}

namespace {

// collect_ranges on o.backend; a CUDA run chosen by default that fails falls back to the CPU.
Expected<RangeTable> run_calibration(const Graph& g, const std::vector<std::map<std::string, Tensor>>& batches,
                                     const CalibrationAlgorithm& algo, const CalibrationOptions& o) {
  auto ranges = collect_ranges(g, batches, algo, o.data.log, o);
  if (ranges.ok() || !o.backend_fallback || o.backend != "cuda") return ranges;
  if (o.data.log)
    o.data.log(fmt::format("warning: calibration on cuda failed ({}); calibrating on cpu instead (give "
                           "--calib-backend to choose)",
                           ranges.status().to_string()));
  CalibrationOptions cpu = o;
  cpu.backend = "cpu";
  return collect_ranges(g, batches, algo, o.data.log, cpu);
}

}  // namespace

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
  KILN_ASSIGN_OR_RETURN(RangeTable ranges, run_calibration(g, batches, algo, o));
  if (!o.cache.empty()) {
    KILN_RETURN_IF_ERROR(write_calibration_cache(o.cache, ranges));
    log(fmt::format("calibration: wrote cache '{}' ({} ranges)", o.cache, ranges.amax.size()));
  }
  return ranges;
}

}  // namespace kiln
