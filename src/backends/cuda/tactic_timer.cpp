#include "backends/cuda/tactic_timer.hpp"

#include <algorithm>
#include <filesystem>
#include <random>

#include <nlohmann/json.hpp>

#include "backends/cuda/device_buffer.hpp"
#include "backends/cuda/device_info.hpp"
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

Expected<std::string> TacticTimer::fastest(const Node& node, const CudaLayerFactory& factory,
                                           const std::string& precision, const std::vector<std::string>& tactics) {
  KILN_ASSIGN_OR_RETURN(PlanTarget target, current_target());
  std::string key = tactic_cache_key(node, precision, target.device_name);
  auto& known = cache_[key];
  std::string best;
  double best_ms = 0;
  Status first_error;
  for (const std::string& t : tactics) {
    double ms;
    auto it = known.find(t);
    if (it != known.end()) {
      ms = it->second;
    } else {
      auto timed = time_one(node, factory, LayerChoice{t, precision});
      if (!timed.ok()) {
        if (first_error.ok()) first_error = timed.status();
        continue;
      }
      ms = *timed;
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

Expected<double> TacticTimer::time_one(const Node& node, const CudaLayerFactory& factory, const LayerChoice& choice) {
  KILN_ASSIGN_OR_RETURN(auto layer, factory.create(node, choice));
  std::vector<DeviceBuffer> buffers;
  std::vector<DeviceTensor> ins, outs;
  auto make = [&](const Value* v, bool fill, uint32_t seed) -> Expected<DeviceTensor> {
    if (!v) return DeviceTensor{};
    Tensor host = v->constant ? *v->constant
                              : random_like(v->type.dtype, *v->type.shape.to_dims(), seed);
    KILN_ASSIGN_OR_RETURN(DeviceBuffer b, DeviceBuffer::allocate(std::max<size_t>(host.nbytes(), 1)));
    if (fill) KILN_CUDA_CHECK(cudaMemcpy(b.get(), host.raw_data(), host.nbytes(), cudaMemcpyHostToDevice));
    DeviceTensor t{b.get(), host.dtype(), host.dims()};
    buffers.push_back(std::move(b));
    return t;
  };
  uint32_t seed = 1;
  for (const Value* v : node.inputs) {
    KILN_ASSIGN_OR_RETURN(DeviceTensor t, make(v, true, seed++));
    ins.push_back(t);
  }
  for (const Value* v : node.outputs) {
    KILN_ASSIGN_OR_RETURN(DeviceTensor t, make(v, false, 0));
    outs.push_back(t);
  }
  KILN_ASSIGN_OR_RETURN(DeviceBuffer ws, DeviceBuffer::allocate(layer->workspace_bytes()));
  Handles h;
  cudaStream_t stream = nullptr;
  cudaEvent_t start = nullptr, stop = nullptr;
  auto cleanup = [&] {
    if (h.cudnn) cudnnDestroy(h.cudnn);
    if (h.cublaslt) cublasLtDestroy(h.cublaslt);
    if (start) cudaEventDestroy(start);
    if (stop) cudaEventDestroy(stop);
    if (stream) cudaStreamDestroy(stream);
  };
  auto run = [&]() -> Expected<double> {
    KILN_CUDA_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
    KILN_CUDA_CHECK(cudnnCreate(&h.cudnn));
    KILN_CUDA_CHECK(cudnnSetStream(h.cudnn, stream));
    KILN_CUDA_CHECK(cublasLtCreate(&h.cublaslt));
    KILN_CUDA_CHECK(cudaEventCreate(&start));
    KILN_CUDA_CHECK(cudaEventCreate(&stop));
    LaunchArgs args{ins, outs, ws.get(), ws.size(), stream, h};
    for (int i = 0; i < 3; ++i) KILN_RETURN_IF_ERROR(layer->enqueue(args));
    std::vector<float> times;
    for (int i = 0; i < 9; ++i) {
      KILN_CUDA_CHECK(cudaEventRecord(start, stream));
      KILN_RETURN_IF_ERROR(layer->enqueue(args));
      KILN_CUDA_CHECK(cudaEventRecord(stop, stream));
      KILN_CUDA_CHECK(cudaEventSynchronize(stop));
      float ms = 0;
      KILN_CUDA_CHECK(cudaEventElapsedTime(&ms, start, stop));
      times.push_back(ms);
    }
    std::nth_element(times.begin(), times.begin() + 4, times.end());
    return static_cast<double>(times[4]);
  };
  auto r = run();
  cleanup();
  return r;
}

}  // namespace kiln::cuda
