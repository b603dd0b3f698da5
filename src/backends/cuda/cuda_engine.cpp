#include "backends/cuda/cuda_engine.hpp"

#include <cstring>

#include "backends/cpu/cpu_executor.hpp"
#include "builder/backend.hpp"
#include "builder/memory_planner.hpp"
#include "builder/specialize.hpp"
#include "util/error.hpp"

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
    arenas_.resize(1);
    KILN_ASSIGN_OR_RETURN(arenas_[0], DeviceBuffer::allocate(engine_.arena_bytes()));
    KILN_ASSIGN_OR_RETURN(workspace_, DeviceBuffer::allocate(engine_.workspace_bytes()));
    KILN_ASSIGN_OR_RETURN(count_dev_, DeviceBuffer::allocate(sizeof(int64_t)));
    KILN_ASSIGN_OR_RETURN(count_host_, PinnedBuffer::allocate(sizeof(int64_t)));
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

  // Makes `set` current: its layers' tensors at their places in this context's arena regions
  // (grown first when the set needs more than the profile's max plan; that waits for the stream).
  // A later stage of a staged run only ever grows its own region, which holds nothing yet.
  Status bind(std::shared_ptr<const ShapeSet> set) {
    auto found = bound_.find(set.get());
    if (found != bound_.end()) {
      current_ = &found->second;
      return Status::Ok();
    }
    bool grow = set->workspace_bytes > workspace_.size() || set->region_bytes.size() > arenas_.size();
    for (size_t r = 0; r < set->region_bytes.size() && r < arenas_.size(); ++r)
      grow |= set->region_bytes[r] > arenas_[r].size();
    // Staged runs make a set per distinct count: bound how many this context keeps.
    constexpr size_t kMaxBound = 64;
    if (grow || bound_.size() >= kMaxBound) {
      KILN_CUDA_CHECK(cudaStreamSynchronize(stream_));
      release_bindings();
    }
    if (grow) {
      if (arenas_.size() < set->region_bytes.size()) arenas_.resize(set->region_bytes.size());
      for (size_t r = 0; r < set->region_bytes.size(); ++r) {
        if (set->region_bytes[r] <= arenas_[r].size() && arenas_[r].get()) continue;
        arenas_[r] = DeviceBuffer();
        KILN_ASSIGN_OR_RETURN(arenas_[r], DeviceBuffer::allocate(set->region_bytes[r]));
      }
      if (set->workspace_bytes > workspace_.size()) {
        workspace_ = DeviceBuffer();
        KILN_ASSIGN_OR_RETURN(workspace_, DeviceBuffer::allocate(set->workspace_bytes));
      }
    }
    Bound b;
    b.set = set;
    auto resolve = [&](const Value* v) -> Expected<DeviceTensor> {
      if (!v) return DeviceTensor{};
      KILN_ASSIGN_OR_RETURN(ValueLocation loc, set->locate(v));
      if (!loc.constant && loc.region >= arenas_.size())
        return internal_error("value '{}' is in arena region {} of {}", v->name, loc.region, arenas_.size());
      void* p = loc.constant ? const_cast<void*>(loc.weights_ptr)
                             : static_cast<char*>(arenas_[loc.region].get()) + loc.arena_offset;
      return DeviceTensor{p, loc.dtype, loc.dims};
    };
    const Graph& g = *set->graph;
    for (const Node* n : set->nodes) {
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
    // A set that syncs is not the last stage: the outputs are bound by the last one.
    for (const Value* v : g.outputs) {
      if (set->sync_node) break;
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
    first_ = current_->set;  // a staged run starts from here on every enqueue
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

  // The current set's layers; with layer timing, event ran_layers_ + i + 1 follows its layer i.
  Status enqueue_layers() {
    const auto& layers = current_->set->layers;
    const auto& nodes = current_->set->nodes;
    const bool timed = !layer_events_.empty();
    if (timed && ran_layers_ == 0) KILN_CUDA_CHECK(cudaEventRecord(layer_events_[0], stream_));
    for (size_t i = 0; i < layers.size(); ++i) {
      LaunchArgs args{current_->layer_inputs[i], current_->layer_outputs[i], workspace_.get(), workspace_.size(),
                      stream_, handles_, count_dev_.as<int64_t>()};
      Status st = layers[i]->enqueue(args);
      if (!st.ok()) return st.add_context(nodes[i]->describe());
      if (timed && ran_layers_ + i + 1 < layer_events_.size()) {
        KILN_CUDA_CHECK(cudaEventRecord(layer_events_[ran_layers_ + i + 1], stream_));
        ran_index_.push_back(engine_.plan_index(*nodes[i]));
      }
    }
    return Status::Ok();
  }

  Status enqueue() override {
    if (!current_) return invalid_argument("set the inputs (set_inputs) before enqueue");
    timings_.compute_ms = timings_.d2h_ms = 0;
    ran_layers_ = 0;
    ran_index_.clear();
    if (current_->set != first_) KILN_RETURN_IF_ERROR(bind(first_));  // a staged run's first stage
    KILN_CUDA_CHECK(cudaEventRecord(events_[2], stream_));
    // Stage by stage: a stage that ends at a data-dependent layer is followed by THE sync (the
    // layer's 8-byte count to pinned memory, then cudaStreamSynchronize) and the next stage's
    // shape set, specialized on the host with the actual output dims.
    for (size_t stage = 0;; ++stage) {
      KILN_RETURN_IF_ERROR(enqueue_stage());
      ran_layers_ += current_->set->layers.size();
      const ShapeSet& set = *current_->set;
      if (!set.sync_node) break;
      KILN_CUDA_CHECK(cudaMemcpyAsync(count_host_.get(), count_dev_.get(), sizeof(int64_t), cudaMemcpyDeviceToHost,
                                      stream_));
      KILN_CUDA_CHECK(cudaStreamSynchronize(stream_));
      int64_t count = 0;
      std::memcpy(&count, count_host_.get(), sizeof(count));
      auto dims = set.sync_factory->output_dims(*set.sync_node, count);
      if (!dims.ok()) return Status(dims.status()).add_context(set.sync_node->describe());
      KILN_ASSIGN_OR_RETURN(auto next, engine_.next_stage(set, *dims));
      KILN_RETURN_IF_ERROR(bind(std::move(next)));
    }
    KILN_CUDA_CHECK(cudaEventRecord(events_[3], stream_));
    pending_[1] = true;
    layers_timed_ = !layer_events_.empty();
    return Status::Ok();
  }

  // The current set's layers, from its CUDA graph when graphs are on (a staged run captures one
  // graph per stage and resolved shape set: a graph cannot span the sync).
  Status enqueue_stage() {
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
    // One time per plan layer: each layer that ran (every stage's) at its plan index; 0 for
    // those that did not run (folded away by a shape set's specialization).
    std::vector<double> out(engine_.max_layers(), 0.0);
    const size_t ran = std::min(ran_index_.size(), layer_events_.size() - 1);
    for (size_t i = 0; i < ran; ++i) {
      float ms = 0;
      cudaError_t e = cudaEventElapsedTime(&ms, layer_events_[i], layer_events_[i + 1]);
      if (e == cudaErrorNotReady) {
        cudaGetLastError();  // not sticky, but keep it out of the next launch check
        return invalid_argument("the layers are still running: call synchronize() before reading their times");
      }
      KILN_RETURN_IF_ERROR(check(e, "cudaEventElapsedTime"));
      if (ran_index_[i] < out.size()) out[ran_index_[i]] += ms;
    }
    return out;
  }

 private:
  const CudaEngine& engine_;
  ContextOptions options_;
  cudaStream_t stream_ = nullptr;
  Handles handles_;
  std::vector<DeviceBuffer> arenas_;  // one region per stage (one for plans that never sync)
  DeviceBuffer workspace_;
  PinnedBuffer staging_;
  DeviceBuffer count_dev_;   // a data-dependent layer's count ...
  PinnedBuffer count_host_;  // ... read back here at the sync
  std::shared_ptr<const ShapeSet> first_;  // the first stage of the inputs last set
  size_t ran_layers_ = 0;    // layers enqueued by the last enqueue (all stages)
  std::vector<size_t> ran_index_;  // with layer timing: their plan layer indices, in run order
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
  for (size_t i = 0; i < g.nodes().size(); ++i) {
    e->choices_[node_key(*g.nodes()[i])] = plan.layers[i];
    e->index_by_key_[node_key(*g.nodes()[i])] = i;
  }
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

  // Data-dependent output shapes make a plan staged (no arena plan): it specializes like a
  // profiled one.
  if (plan.profiles.empty() && first_unresolved_node(g) == g.nodes().size()) {
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
                                                               uint64_t arena_bytes, const ShapeSet* prev) const {
  auto set = std::make_unique<ShapeSet>();
  set->graph = std::move(graph);
  const Graph& g = *set->graph;
  const auto& all = g.nodes();
  // This set's nodes: after those earlier stages ran, up to the first whose output size depends
  // on values (inclusive), or to the end.
  size_t begin = 0;
  if (prev) {
    while (begin < all.size() && prev->done.count(node_key(*all[begin]))) ++begin;
    set->stage = prev->stage + 1;
    set->region_bytes = prev->region_bytes;
    set->arena_offsets = prev->arena_offsets;
    set->region_of = prev->region_of;
    set->done = prev->done;
    set->input_shapes = prev->input_shapes;
    set->fixed = prev->fixed;
  }
  size_t end = all.size();
  if (!arena) {
    const size_t stop = first_unresolved_node(g, begin);
    if (stop < all.size()) {
      const Node& n = *all[stop];
      const CudaLayerFactory* f = find_cuda_layer(n);
      if (!f || !f->max_output_dims || !f->output_dims)
        return unsupported("{}: its output shape depends on values computed on the device; the CUDA backend "
                           "resolves such shapes only at NonZero, NonMaxSuppression and TopK outputs",
                           n.describe());
      KILN_ASSIGN_OR_RETURN(std::vector<Dims> max, f->max_output_dims(n));
      for (size_t k = 0; k < max.size() && k < n.outputs.size(); ++k)
        if (n.outputs[k]) set->max_dims[n.outputs[k]->name] = max[k];
      set->sync_node = &n;
      set->sync_factory = f;
      end = stop + 1;
    }
  }
  for (size_t i = begin; i < end; ++i) {
    set->nodes.push_back(all[i].get());
    set->done.insert(node_key(*all[i]));
  }
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
  for (const Node* n : set->nodes)
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
    // This stage's values in a region of their own (one region for a plan without syncs).
    MemorySegment seg;
    seg.begin = begin;
    seg.end = end;
    seg.plan_inputs = prev == nullptr;
    if (prev) seg.external = [prev](const Value* v) { return prev->arena_offsets.count(v->name) > 0; };
    for (const auto& [name, dims] : set->max_dims)
      if (const Value* v = g.find_value(name))
        seg.max_bytes[v] = static_cast<uint64_t>(dims_numel(dims)) * dtype_size(v->type.dtype);
    KILN_ASSIGN_OR_RETURN(MemoryPlan mem, plan_memory(g, seg));
    for (const auto& s : mem.slots) {
      set->arena_offsets[s.value] = s.offset;
      set->region_of[s.value] = set->stage;
    }
    set->arena_bytes = mem.arena_bytes;
  }
  set->region_bytes.push_back(set->arena_bytes);

  for (size_t i = begin; i < end; ++i) {
    const Node& n = *all[i];
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

std::shared_ptr<const ShapeSet> CudaEngine::cache(const std::string& key, std::shared_ptr<const ShapeSet> set) const {
  // Every distinct data-dependent count makes a set: bound the cache (contexts keep the sets they
  // use alive through their own references).
  constexpr size_t kMaxSets = 512;
  if (sets_.size() >= kMaxSets) sets_.clear();
  sets_[key] = set;
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
  (*set)->input_shapes = shapes;
  (*set)->key = key;
  return cache(key, std::move(*set));
}

Expected<std::shared_ptr<const ShapeSet>> CudaEngine::next_stage(const ShapeSet& prev,
                                                                 const std::vector<Dims>& dims) const {
  if (!prev.sync_node) return internal_error("the last stage has no next");
  const Node& n = *prev.sync_node;
  std::map<std::string, Dims> fixed = prev.fixed;
  std::string key = prev.key + "|" + node_key(n) + "=";
  for (size_t k = 0; k < dims.size() && k < n.outputs.size(); ++k) {
    if (!n.outputs[k]) continue;
    fixed[n.outputs[k]->name] = dims[k];
    key += dims_to_string(dims[k]) + ";";
  }
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = sets_.find(key);
  if (it != sets_.end()) return it->second;
  auto where = [&] { return fmt::format("after {} (output dims {})", n.describe(), key.substr(prev.key.size() + 1)); };
  auto graph = specialize_graph(*graph_, prev.input_shapes, {}, fixed);
  if (!graph.ok()) return Status(graph.status()).add_context(where());
  auto set = make_shape_set(std::move(*graph), nullptr, nullptr, 0, &prev);
  if (!set.ok()) return Status(set.status()).add_context(where());
  (*set)->fixed = std::move(fixed);
  (*set)->key = key;
  return cache(key, std::move(*set));
}

size_t CudaEngine::plan_index(const Node& n) const {
  auto it = index_by_key_.find(node_key(n));
  return it != index_by_key_.end() ? it->second : max_layers();
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
  if (!dims) {
    auto max = max_dims.find(v->name);  // a data-dependent output, at its largest until synced
    if (max == max_dims.end()) return internal_error("value '{}' has no static shape", v->name);
    dims = max->second;
  }
  loc.arena_offset = it->second;
  auto r = region_of.find(v->name);
  loc.region = r != region_of.end() ? r->second : 0;
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
