#include "backends/cuda/tactic_timer.hpp"

#include <cstdio>
#include <cstdlib>

#include <algorithm>
#include <filesystem>
#include <optional>
#include <random>

#include <nlohmann/json.hpp>

#include "backends/cuda/device_buffer.hpp"
#include "backends/cuda/device_info.hpp"
#include "backends/cuda/gpu_delay.hpp"
#include "io/file.hpp"

namespace kiln::cuda {

namespace {

// Deterministic, non-zero test data: floats in [-1, 1), integers in [0, 4), bools random.
Tensor random_like(DType dtype, const Dims& dims, uint32_t seed) {
  Tensor t(dtype, dims);
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  dispatch_dtype(dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    T* p = t.data<T>();
    for (int64_t i = 0; i < t.numel(); ++i) {
      if constexpr (std::is_same_v<T, bool>) p[i] = (rng() & 1) != 0;
      else if constexpr (std::is_same_v<T, Half> || std::is_same_v<T, BFloat16>) p[i] = T(u(rng));
      else if constexpr (std::is_floating_point_v<T>) p[i] = static_cast<T>(u(rng));
      else p[i] = static_cast<T>(rng() % 4);
    }
  });
  if (dtype == DType::kFloat8E4M3FN)  // not in dispatch_dtype
    for (int64_t i = 0; i < t.numel(); ++i) t.data<Float8E4M3FN>()[i] = Float8E4M3FN(u(rng) * 448.f);
  return t;
}

std::string attr_string(const AttrValue& v) {
  if (auto* i = std::get_if<int64_t>(&v)) return std::to_string(*i);
  if (auto* f = std::get_if<float>(&v)) return fmt::format("{}", *f);
  if (auto* s = std::get_if<std::string>(&v)) return *s;
  if (auto* is = std::get_if<std::vector<int64_t>>(&v)) return fmt::format("{}", fmt::join(*is, ","));
  if (auto* fs = std::get_if<std::vector<float>>(&v)) return fmt::format("{}", fmt::join(*fs, ","));
  return "?";
}

}  // namespace

std::string tactic_cache_key(const Node& node, const std::string& precision, const std::string& device) {
  std::string key = device + "|" + node.op_type + "|" + precision;
  for (const Value* v : node.inputs)
    key += "|" + (v ? v->type.to_string() + (v->constant ? "c" : "") : std::string("-"));
  for (const auto& [name, v] : node.attrs.all())
    if (name != "kiln_fused") key += "|" + name + "=" + attr_string(v);  // names: not the layer's kind
  return key;
}

Status TacticTimer::load() {
  if (path_.empty() || !std::filesystem::exists(path_)) return Status::Ok();
  KILN_ASSIGN_OR_RETURN(std::string text, read_file(path_));
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("entries"))
    return invalid_argument("{}: not a kiln timing cache (delete it to rebuild it)", path_);
  for (auto& [key, tactics] : j["entries"].items())
    for (auto& [tactic, ms] : tactics.items())
      if (ms.is_number()) cache_[key][tactic] = ms.get<double>();
  return Status::Ok();
}

Status TacticTimer::save() const {
  if (path_.empty() || !dirty_) return Status::Ok();
  nlohmann::json j;
  j["format"] = "kiln-timing-cache-1";
  j["entries"] = nlohmann::json::object();
  for (const auto& [key, tactics] : cache_)
    for (const auto& [tactic, ms] : tactics) j["entries"][key][tactic] = ms;
  return write_file_atomic(path_, j.dump(1));
}

TacticTimer::~TacticTimer() {
  if (handles_.cudnn) cudnnDestroy(handles_.cudnn);
  if (handles_.cublaslt) cublasLtDestroy(handles_.cublaslt);
  if (start_) cudaEventDestroy(start_);
  if (stop_) cudaEventDestroy(stop_);
  if (stream_) cudaStreamDestroy(stream_);
}

Status TacticTimer::ensure_session() {
  if (stream_) return Status::Ok();
  KILN_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
  KILN_CUDA_CHECK(cudnnCreate(&handles_.cudnn));
  KILN_CUDA_CHECK(cudnnSetStream(handles_.cudnn, stream_));
  KILN_CUDA_CHECK(cublasLtCreate(&handles_.cublaslt));
  KILN_CUDA_CHECK(cudaEventCreate(&start_));
  KILN_CUDA_CHECK(cudaEventCreate(&stop_));
  return Status::Ok();
}

Status TacticTimer::make_buffers(const Node& node, NodeBuffers& io) {
  auto make = [&](const Value* v, bool fill, uint32_t seed) -> Expected<DeviceTensor> {
    if (!v) return DeviceTensor{};
    auto dims = v->type.shape.to_dims();
    if (!dims) return internal_error("{}: value '{}' has no static shape to time with", node.describe(), v->name);
    Tensor host = v->constant ? *v->constant : (fill ? random_like(v->type.dtype, *dims, seed) : Tensor());
    const size_t nbytes = v->constant || fill ? host.nbytes() : static_cast<size_t>(dims_numel(*dims)) * dtype_size(v->type.dtype);
    KILN_ASSIGN_OR_RETURN(DeviceBuffer b, DeviceBuffer::allocate(std::max<size_t>(nbytes, 1)));
    if (fill && nbytes) KILN_CUDA_CHECK(cudaMemcpy(b.get(), host.raw_data(), nbytes, cudaMemcpyHostToDevice));
    DeviceTensor t{b.get(), v->type.dtype, *dims};
    io.buffers.push_back(std::move(b));
    return t;
  };
  uint32_t seed = 1;
  for (const Value* v : node.inputs) {
    KILN_ASSIGN_OR_RETURN(DeviceTensor t, make(v, true, seed++));
    io.inputs.push_back(t);
  }
  for (const Value* v : node.outputs) {
    KILN_ASSIGN_OR_RETURN(DeviceTensor t, make(v, false, 0));
    io.outputs.push_back(t);
  }
  return Status::Ok();
}

// KILN_TACTIC_LOG=1: every tactic timed (or failing) at build goes to stderr, trtexec --verbose style.
static bool log_tactics() {
  static const bool on = [] {
    const char* v = std::getenv("KILN_TACTIC_LOG");
    return v && *v && std::string(v) != "0";
  }();
  return on;
}

Expected<std::string> TacticTimer::fastest(const Node& node, const CudaLayerFactory& factory,
                                           const std::string& precision, const std::vector<std::string>& tactics) {
  KILN_ASSIGN_OR_RETURN(PlanTarget target, current_target());
  std::string key = tactic_cache_key(node, precision, target.device_name);
  auto& known = cache_[key];
  std::string best;
  double best_ms = 0;
  Status first_error;
  std::optional<NodeBuffers> io;  // made on the first tactic the cache does not know
  for (const std::string& t : tactics) {
    double ms;
    auto it = known.find(t);
    if (it != known.end()) {
      ms = it->second;
    } else {
      if (!io) {
        io.emplace();
        Status made = make_buffers(node, *io);
        if (!made.ok()) return made;
      }
      auto timed = time_one(node, factory, LayerChoice{t, precision}, *io, best.empty() ? 0 : best_ms);
      if (!timed.ok()) {
        if (log_tactics()) std::fprintf(stderr, "[tactic] %s  %s: failed: %s\n", node.name.c_str(), t.c_str(),
                                        timed.status().message().c_str());
        if (first_error.ok()) first_error = timed.status();
        continue;
      }
      ms = *timed;
      if (log_tactics()) std::fprintf(stderr, "[tactic] %s  %s: %.4f ms\n", node.name.c_str(), t.c_str(), ms);
      known[t] = ms;
      dirty_ = true;
    }
    if (ms >= 0 && (best.empty() || ms < best_ms)) {
      best = t;
      best_ms = ms;
    }
  }
  if (best.empty()) {
    if (!first_error.ok()) return first_error;
    return internal_error("{}: no tactic could be timed", node.describe());
  }
  return best;
}

namespace {
constexpr uint64_t kHostLead = 50'000;  // ns of GPU time queued ahead of each timed run
}  // namespace

Expected<double> TacticTimer::time_one(const Node& node, const CudaLayerFactory& factory, const LayerChoice& choice,
                                       const NodeBuffers& io, double best_ms) {
  KILN_ASSIGN_OR_RETURN(auto layer, factory.create(node, choice));
  KILN_RETURN_IF_ERROR(ensure_session());
  KILN_ASSIGN_OR_RETURN(DeviceBuffer ws, DeviceBuffer::allocate(std::max<size_t>(layer->workspace_bytes(), 1)));
  LaunchArgs args{io.inputs, io.outputs, ws.get(), layer->workspace_bytes(), stream_, handles_};
  KILN_RETURN_IF_ERROR(layer->enqueue(args));  // warm-up (lazy module loading, caches)
  // Up to 9 timed runs, fewer when the tactic is plainly slower than the best so far or the runs
  // are long: slow algorithms of big layers used to dominate the build time.
  std::vector<float> times;
  double total = 0;
  for (int i = 0; i < 9; ++i) {
    // The GPU waits a little first, so the host's part of the enqueue (encoding tensor maps,
    // building cuDNN variant packs) is done before the start event: the plan runs its layers from
    // a CUDA graph, where that host work is not repeated, and some tactics have more of it.
    KILN_CUDA_CHECK(gpu_delay(stream_, kHostLead));
    KILN_CUDA_CHECK(cudaEventRecord(start_, stream_));
    KILN_RETURN_IF_ERROR(layer->enqueue(args));
    KILN_CUDA_CHECK(cudaEventRecord(stop_, stream_));
    KILN_CUDA_CHECK(cudaEventSynchronize(stop_));
    float ms = 0;
    KILN_CUDA_CHECK(cudaEventElapsedTime(&ms, start_, stop_));
    times.push_back(ms);
    total += ms;
    if (best_ms > 0 && ms > 2 * best_ms) break;
    if (times.size() >= 3 && total > 50) break;
  }
  std::nth_element(times.begin(), times.begin() + times.size() / 2, times.end());
  return static_cast<double>(times[times.size() / 2]);
}

}  // namespace kiln::cuda
