#include "backends/cuda/cuda_engine.hpp"

#include <cstring>

#include "backends/cpu/cpu_executor.hpp"
#include "builder/backend.hpp"
#include "builder/memory_planner.hpp"
#include "builder/specialize.hpp"

namespace kiln::cuda {

namespace {

constexpr uint64_t kAlign = 256;
uint64_t align_up(uint64_t x) { return (x + kAlign - 1) / kAlign * kAlign; }

class CudaContext : public ExecutionContext {
 public:
  CudaContext(const CudaEngine& engine, ContextOptions options) : engine_(engine), options_(options) {}
  void destroy() {
    for (cudaEvent_t e : events_)
      if (e) cudaEventDestroy(e);
    for (cudaEvent_t e : layer_events_)
      if (e) cudaEventDestroy(e);
    if (handles_.cudnn) cudnnDestroy(handles_.cudnn);
    if (handles_.cublaslt) cublasLtDestroy(handles_.cublaslt);
    if (stream_) cudaStreamDestroy(stream_);
  }

  Status init() {
    KILN_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
    KILN_CUDA_CHECK(cudnnCreate(&handles_.cudnn));
    KILN_CUDA_CHECK(cudnnSetStream(handles_.cudnn, stream_));
    KILN_CUDA_CHECK(cublasLtCreate(&handles_.cublaslt));
    for (cudaEvent_t& e : events_) KILN_CUDA_CHECK(cudaEventCreate(&e));
    if (options_.layer_timing) {
      // One event before the first layer and one after each: layer i runs between i and i+1. A
      // shape set has at most the plan's layers (specializing only folds nodes away).
      layer_events_.assign(engine_.max_layers() + 1, nullptr);
      for (cudaEvent_t& e : layer_events_) KILN_CUDA_CHECK(cudaEventCreate(&e));
    }
    KILN_ASSIGN_OR_RETURN(arena_, DeviceBuffer::allocate(engine_.arena_bytes()));
    KILN_ASSIGN_OR_RETURN(workspace_, DeviceBuffer::allocate(engine_.workspace_bytes()));
    if (!engine_.dynamic()) {
      KILN_ASSIGN_OR_RETURN(auto set, engine_.shape_set({}));
      KILN_RETURN_IF_ERROR(bind(std::move(set)));
    }
    return Status::Ok();
  }

  ~CudaContext() override { release_bindings(); destroy(); }

  void release_bindings() {
    for (auto& [key, b] : bound_)
      if (b.graph_exec) cudaGraphExecDestroy(b.graph_exec);
    bound_.clear();
    current_ = nullptr;
  }

  // Makes `set` current: its layers' tensors at their places in this context's arena (grown first
  // when the set needs more than the profile's max plan; that waits for the stream).
  Status bind(std::shared_ptr<const ShapeSet> set) {
    auto found = bound_.find(set.get());
    if (found != bound_.end()) {
      current_ = &found->second;
      return Status::Ok();
    }
    if (set->arena_bytes > arena_.size() || set->workspace_bytes > workspace_.size()) {
      KILN_CUDA_CHECK(cudaStreamSynchronize(stream_));
      release_bindings();
      if (set->arena_bytes > arena_.size()) {
        arena_ = DeviceBuffer();
        KILN_ASSIGN_OR_RETURN(arena_, DeviceBuffer::allocate(set->arena_bytes));
      }
      if (set->workspace_bytes > workspace_.size()) {
        workspace_ = DeviceBuffer();
        KILN_ASSIGN_OR_RETURN(workspace_, DeviceBuffer::allocate(set->workspace_bytes));
      }
    }
    Bound b;
    b.set = set;
    auto* base = static_cast<char*>(arena_.get());
    auto resolve = [&](const Value* v) -> Expected<DeviceTensor> {
      if (!v) return DeviceTensor{};
      KILN_ASSIGN_OR_RETURN(ValueLocation loc, set->locate(v));
      void* p = loc.constant ? const_cast<void*>(loc.weights_ptr) : base + loc.arena_offset;
      return DeviceTensor{p, loc.dtype, loc.dims};
    };
    const Graph& g = *set->graph;
    for (const auto& n : g.nodes()) {
      std::vector<DeviceTensor> ins, outs;
      for (const Value* v : n->inputs) {
        KILN_ASSIGN_OR_RETURN(DeviceTensor t, resolve(v));
        ins.push_back(t);
      }
      for (const Value* v : n->outputs) {
        KILN_ASSIGN_OR_RETURN(DeviceTensor t, resolve(v));
        outs.push_back(t);
      }
      b.layer_inputs.push_back(std::move(ins));
      b.layer_outputs.push_back(std::move(outs));
    }
    size_t staging = 0;
    for (const Value* v : g.inputs) {
      KILN_ASSIGN_OR_RETURN(DeviceTensor t, resolve(v));
      b.input_tensors.push_back(t);
      staging += align_up(t.nbytes());
    }
    for (const Value* v : g.outputs) {
      KILN_ASSIGN_OR_RETURN(DeviceTensor t, resolve(v));
      b.output_tensors.push_back(t);
      staging += align_up(t.nbytes());
    }
    if (staging > staging_.size()) {
      KILN_CUDA_CHECK(cudaStreamSynchronize(stream_));  // earlier copies may still read it
      staging_ = PinnedBuffer();
      KILN_ASSIGN_OR_RETURN(staging_, PinnedBuffer::allocate(staging));
    }
    current_ = &(bound_[set.get()] = std::move(b));
    return Status::Ok();
  }

  Status set_inputs(const std::map<std::string, Tensor>& inputs) override {
    KILN_RETURN_IF_ERROR(check_inputs(engine_.graph(), inputs));
    KILN_RETURN_IF_ERROR(check_profile(inputs));
    if (engine_.dynamic()) {
      std::map<std::string, Dims> shapes;
      for (const Value* in : engine_.graph().inputs) shapes[in->name] = inputs.at(in->name).dims();
      // Host work on a new shape set (specialize, make layers, plan memory); a lookup after.
      KILN_ASSIGN_OR_RETURN(auto set, engine_.shape_set(shapes));
      KILN_RETURN_IF_ERROR(bind(std::move(set)));
    }
    const Graph& g = *current_->set->graph;
    auto* stage = static_cast<char*>(staging_.get());
    // The previous run's copies may still read the pinned staging buffer.
    KILN_CUDA_CHECK(cudaStreamSynchronize(stream_));
    timings_ = {};
    KILN_CUDA_CHECK(cudaEventRecord(events_[0], stream_));
    for (size_t i = 0; i < g.inputs.size(); ++i) {
      const Tensor& t = inputs.at(g.inputs[i]->name);
      const DeviceTensor& d = current_->input_tensors[i];
      std::memcpy(stage, t.raw_data(), t.nbytes());
      KILN_CUDA_CHECK(cudaMemcpyAsync(d.data, stage, t.nbytes(), cudaMemcpyHostToDevice, stream_));
      stage += align_up(t.nbytes());
    }
    KILN_CUDA_CHECK(cudaEventRecord(events_[1], stream_));
    pending_[0] = true;
    return Status::Ok();
  }

  Status enqueue_layers() {
    const auto& layers = current_->set->layers;
    const auto& nodes = current_->set->graph->nodes();
    const bool timed = !layer_events_.empty();
    if (timed) KILN_CUDA_CHECK(cudaEventRecord(layer_events_[0], stream_));
    for (size_t i = 0; i < layers.size(); ++i) {
      LaunchArgs args{current_->layer_inputs[i], current_->layer_outputs[i], workspace_.get(), workspace_.size(),
                      stream_, handles_};
      Status st = layers[i]->enqueue(args);
      if (!st.ok()) return st.add_context(nodes[i]->describe());
      if (timed) KILN_CUDA_CHECK(cudaEventRecord(layer_events_[i + 1], stream_));
    }
    return Status::Ok();
  }

  Status enqueue() override {
    if (!current_) return invalid_argument("set the inputs (set_inputs) before enqueue");
    timings_.compute_ms = timings_.d2h_ms = 0;
    KILN_CUDA_CHECK(cudaEventRecord(events_[2], stream_));
    if (options_.cuda_graph) {
      // One CUDA graph per shape set, captured on its first run and replayed after.
      cudaGraphExec_t& graph_exec_ = current_->graph_exec;
      if (!graph_exec_) {
        cudaGraph_t graph = nullptr;
        KILN_CUDA_CHECK(cudaStreamBeginCapture(stream_, cudaStreamCaptureModeThreadLocal));
        Status st = enqueue_layers();
        cudaError_t end = cudaStreamEndCapture(stream_, &graph);
        KILN_RETURN_IF_ERROR(st);
        KILN_RETURN_IF_ERROR(check(end, "cudaStreamEndCapture"));
        cudaError_t inst = cudaGraphInstantiate(&graph_exec_, graph, 0);
        cudaGraphDestroy(graph);
        KILN_RETURN_IF_ERROR(check(inst, "cudaGraphInstantiate"));
      }
      KILN_CUDA_CHECK(cudaGraphLaunch(graph_exec_, stream_));
    } else {
      KILN_RETURN_IF_ERROR(enqueue_layers());
    }
    KILN_CUDA_CHECK(cudaEventRecord(events_[3], stream_));
    pending_[1] = true;
    layers_timed_ = !layer_events_.empty();
    return Status::Ok();
  }

  Status synchronize() override {
    KILN_CUDA_CHECK(cudaStreamSynchronize(stream_));
    // Every event recorded so far has completed: read the times of the steps since the last wait.
    float ms = 0;
    double* slot[3] = {&timings_.h2d_ms, &timings_.compute_ms, &timings_.d2h_ms};
    for (int i = 0; i < 3; ++i) {
      if (!pending_[i]) continue;
      pending_[i] = false;
      KILN_CUDA_CHECK(cudaEventElapsedTime(&ms, events_[2 * i], events_[2 * i + 1]));
      *slot[i] = ms;
    }
    return Status::Ok();
  }

  Expected<std::vector<Tensor>> outputs() override {
    if (!current_) return invalid_argument("nothing has run on this context yet");
    const Graph& g = *current_->set->graph;
    const auto& output_tensors_ = current_->output_tensors;
    size_t in_bytes = 0;
    for (const DeviceTensor& d : current_->input_tensors) in_bytes += align_up(d.nbytes());
    auto* stage = static_cast<char*>(staging_.get()) + in_bytes;
    std::vector<char*> where;
    KILN_CUDA_CHECK(cudaEventRecord(events_[4], stream_));
    for (const DeviceTensor& d : output_tensors_) {
      KILN_CUDA_CHECK(cudaMemcpyAsync(stage, d.data, d.nbytes(), cudaMemcpyDeviceToHost, stream_));
      where.push_back(stage);
      stage += align_up(d.nbytes());
    }
    KILN_CUDA_CHECK(cudaEventRecord(events_[5], stream_));
    pending_[2] = true;
    KILN_RETURN_IF_ERROR(synchronize());
    std::vector<Tensor> outs;
    for (size_t i = 0; i < g.outputs.size(); ++i) {
      const DeviceTensor& d = output_tensors_[i];
      outs.push_back(Tensor::from_bytes(d.dtype, d.dims, where[i]));
    }
    return outs;
  }

  RunTimings last_timings() const override { return timings_; }

  Expected<std::vector<double>> layer_times_ms() const override {
    if (layer_events_.empty())
      return invalid_argument("layer timing is off: create the context with ContextOptions::layer_timing");
    if (!layers_timed_ || !current_) return invalid_argument("no layers have run on this context yet");
    // One time per layer of the shape set that ran last.
    std::vector<double> out(current_->set->layers.size());
    for (size_t i = 0; i < out.size(); ++i) {
      float ms = 0;
      cudaError_t e = cudaEventElapsedTime(&ms, layer_events_[i], layer_events_[i + 1]);
      if (e == cudaErrorNotReady) {
        cudaGetLastError();  // not sticky, but keep it out of the next launch check
        return invalid_argument("the layers are still running: call synchronize() before reading their times");
      }
      KILN_RETURN_IF_ERROR(check(e, "cudaEventElapsedTime"));
      out[i] = ms;
    }
    return out;
  }

 private:
  const CudaEngine& engine_;
  ContextOptions options_;
  cudaStream_t stream_ = nullptr;
  Handles handles_;
  DeviceBuffer arena_, workspace_;
  PinnedBuffer staging_;
  // A shape set's tensors in this context's arena, and its captured CUDA graph.
  struct Bound {
    std::shared_ptr<const ShapeSet> set;
    std::vector<std::vector<DeviceTensor>> layer_inputs, layer_outputs;
    std::vector<DeviceTensor> input_tensors, output_tensors;
    cudaGraphExec_t graph_exec = nullptr;
  };
  std::map<const ShapeSet*, Bound> bound_;
  Bound* current_ = nullptr;
  cudaEvent_t events_[6] = {};  // pairs around the input copies, the layers and the output copies
  bool pending_[3] = {};        // which pairs were recorded since the last synchronize()
  std::vector<cudaEvent_t> layer_events_;  // with layer timing only
  bool layers_timed_ = false;
  RunTimings timings_;
};

}  // namespace

Expected<std::unique_ptr<CudaEngine>> CudaEngine::create(const Plan& plan) {
  auto e = std::unique_ptr<CudaEngine>(new CudaEngine());
  e->graph_ = plan.graph;
  const Graph& g = *plan.graph;
  if (plan.layers.size() != g.nodes().size())
    return invalid_model("the plan has {} layer choices for {} nodes", plan.layers.size(), g.nodes().size());
  e->tf32_ = plan.options_json.find("\"tf32\":false") == std::string::npos;
  for (size_t i = 0; i < g.nodes().size(); ++i) e->choices_[node_key(*g.nodes()[i])] = plan.layers[i];
  e->arena_bytes_ = plan.arena_bytes;

  // Every constant a layer or a graph output reads goes into one device buffer.
  std::vector<const Value*> consts;
  std::unordered_map<const Value*, uint64_t> offsets;
  uint64_t total = 0;
  auto want = [&](const Value* v) {
    if (v && v->constant && !offsets.count(v)) {
      offsets[v] = total;
      total += align_up(v->constant->nbytes());
      consts.push_back(v);
    }
  };
  for (const auto& n : g.nodes())
    for (const Value* v : n->inputs) want(v);
  for (const Value* v : g.outputs) want(v);
  KILN_ASSIGN_OR_RETURN(e->weights_, DeviceBuffer::allocate(total));
  for (const Value* v : consts) {
    char* dst = e->weights_.as<char>() + offsets[v];
    KILN_CUDA_CHECK(cudaMemcpy(dst, v->constant->raw_data(), v->constant->nbytes(), cudaMemcpyHostToDevice));
    if (v->constant->nbytes()) e->weight_by_host_[v->constant->raw_data()] = dst;
  }

  if (plan.profiles.empty()) {
    KILN_ASSIGN_OR_RETURN(auto set, e->make_shape_set(plan.graph, &plan.layers, &plan.arena, plan.arena_bytes));
    e->workspace_bytes_ = set->workspace_bytes;
    e->static_set_ = std::move(set);
  } else {
    // Layers are made per shape set; the largest workspace is known once they exist (a context
    // grows its workspace when a shape set needs more).
    e->workspace_bytes_ = 0;
  }
  return e;
}

Expected<std::unique_ptr<ShapeSet>> CudaEngine::make_shape_set(GraphPtr graph, const std::vector<LayerChoice>* layers,
                                                               const std::vector<ArenaSlot>* arena,
                                                               uint64_t arena_bytes) const {
  auto set = std::make_unique<ShapeSet>();
  set->graph = std::move(graph);
  const Graph& g = *set->graph;
  // Constants: the plan's (shared, by their host data) or new ones folded for these shapes.
  std::vector<const Value*> fresh;
  uint64_t total = 0;
  auto want = [&](const Value* v) {
    if (!v || !v->constant || set->weight_ptrs.count(v)) return;
    const Tensor& t = *v->constant;
    auto it = t.nbytes() ? weight_by_host_.find(t.raw_data()) : weight_by_host_.end();
    if (it != weight_by_host_.end()) {
      set->weight_ptrs[v] = it->second;
    } else {
      set->weight_ptrs[v] = nullptr;  // placed below
      fresh.push_back(v);
      total += align_up(t.nbytes());
    }
  };
  for (const auto& n : g.nodes())
    for (const Value* v : n->inputs) want(v);
  for (const Value* v : g.outputs) want(v);
  if (total) {
    KILN_ASSIGN_OR_RETURN(set->own_weights, DeviceBuffer::allocate(total));
    uint64_t offset = 0;
    for (const Value* v : fresh) {
      char* dst = set->own_weights.as<char>() + offset;
      KILN_CUDA_CHECK(cudaMemcpy(dst, v->constant->raw_data(), v->constant->nbytes(), cudaMemcpyHostToDevice));
      set->weight_ptrs[v] = dst;
      offset += align_up(v->constant->nbytes());
    }
  } else {
    for (const Value* v : fresh) set->weight_ptrs[v] = weights_.get();  // empty tensors: any valid address
  }

  if (arena) {
    for (const auto& s : *arena) set->arena_offsets[s.value] = s.offset;
    set->arena_bytes = arena_bytes;
  } else {
    KILN_ASSIGN_OR_RETURN(MemoryPlan mem, plan_memory(g));
    for (const auto& s : mem.slots) set->arena_offsets[s.value] = s.offset;
    set->arena_bytes = mem.arena_bytes;
  }

  for (size_t i = 0; i < g.nodes().size(); ++i) {
    const Node& n = *g.nodes()[i];
    const CudaLayerFactory* f = find_cuda_layer(n);
    if (!f) return unsupported("{}: no CUDA layer for this op", n.describe());
    LayerChoice choice;
    if (layers) {
      choice = (*layers)[i];
    } else {
      auto it = choices_.find(node_key(n));
      choice = it != choices_.end() ? it->second : LayerChoice{"", layer_precision(n, tf32_)};
      if (f->supports && !f->supports(n))
        return unsupported("{}: the CUDA layer does not support it at these shapes", n.describe());
    }
    auto layer = f->create(n, choice);
    if (!layer.ok() && !layers && !choice.tactic.empty()) {
      // The tactic timed at the profile's opt shapes may not fit these shapes: use the default.
      choice.tactic.clear();
      layer = f->create(n, choice);
    }
    if (!layer.ok()) return Status(layer.status()).add_context(n.describe());
    set->workspace_bytes = std::max<uint64_t>(set->workspace_bytes, (*layer)->workspace_bytes());
    set->layers.push_back(std::move(*layer));
  }
  return set;
}

Expected<std::shared_ptr<const ShapeSet>> CudaEngine::shape_set(const std::map<std::string, Dims>& shapes) const {
  if (static_set_) return static_set_;
  std::string key;
  for (const auto& [name, dims] : shapes) key += name + ":" + dims_to_string(dims) + ";";
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = sets_.find(key);
  if (it != sets_.end()) return it->second;
  auto graph = specialize_graph(*graph_, shapes);
  if (!graph.ok()) return Status(graph.status()).add_context(fmt::format("input shapes {}", key));
  auto set = make_shape_set(std::move(*graph), nullptr, nullptr, 0);
  if (!set.ok()) return Status(set.status()).add_context(fmt::format("input shapes {}", key));
  std::shared_ptr<const ShapeSet> shared = std::move(*set);
  sets_[key] = shared;
  return shared;
}

Expected<ValueLocation> ShapeSet::locate(const Value* v) const {
  ValueLocation loc;
  loc.dtype = v->type.dtype;
  if (v->constant) {
    auto it = weight_ptrs.find(v);
    if (it == weight_ptrs.end()) return internal_error("constant '{}' was not uploaded", v->name);
    loc.constant = true;
    loc.weights_ptr = it->second;
    loc.dims = v->constant->dims();
    return loc;
  }
  auto it = arena_offsets.find(v->name);
  if (it == arena_offsets.end()) return internal_error("value '{}' has no place in the memory plan", v->name);
  auto dims = v->type.shape.to_dims();
  if (!dims) return internal_error("value '{}' has no static shape", v->name);
  loc.arena_offset = it->second;
  loc.dims = *dims;
  return loc;
}

Expected<std::unique_ptr<ExecutionContext>> CudaEngine::create_context(const ContextOptions& options) const {
  // Events recorded inside a captured graph do not time anything: profile without graphs.
  if (options.cuda_graph && options.layer_timing)
    return invalid_argument("layer timing and CUDA graphs cannot be combined (profile without the graph)");
  auto ctx = std::make_unique<CudaContext>(*this, options);
  KILN_RETURN_IF_ERROR(ctx->init());
  return std::unique_ptr<ExecutionContext>(std::move(ctx));
}

}  // namespace kiln::cuda
