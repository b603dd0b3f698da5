#include "backends/cuda/cuda_engine.hpp"

#include <cstring>

#include "backends/cpu/cpu_executor.hpp"

namespace kiln::cuda {

namespace {

constexpr uint64_t kAlign = 256;
uint64_t align_up(uint64_t x) { return (x + kAlign - 1) / kAlign * kAlign; }

class CudaContext : public ExecutionContext {
 public:
  CudaContext(const CudaEngine& engine, ContextOptions options) : engine_(engine), options_(options) {}
  ~CudaContext() override {
    if (graph_exec_) cudaGraphExecDestroy(graph_exec_);
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
      // One event before the first layer and one after each: layer i runs between i and i+1.
      layer_events_.assign(engine_.layers().size() + 1, nullptr);
      for (cudaEvent_t& e : layer_events_) KILN_CUDA_CHECK(cudaEventCreate(&e));
    }
    KILN_ASSIGN_OR_RETURN(arena_, DeviceBuffer::allocate(engine_.arena_bytes()));
    KILN_ASSIGN_OR_RETURN(workspace_, DeviceBuffer::allocate(engine_.workspace_bytes()));
    auto* base = static_cast<char*>(arena_.get());
    auto resolve = [&](const Value* v) -> Expected<DeviceTensor> {
      if (!v) return DeviceTensor{};
      KILN_ASSIGN_OR_RETURN(ValueLocation loc, engine_.locate(v));
      void* p = loc.constant ? const_cast<void*>(loc.weights_ptr) : base + loc.arena_offset;
      return DeviceTensor{p, loc.dtype, loc.dims};
    };
    const Graph& g = engine_.graph();
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
      layer_inputs_.push_back(std::move(ins));
      layer_outputs_.push_back(std::move(outs));
    }
    size_t staging = 0;
    for (const Value* v : g.inputs) {
      KILN_ASSIGN_OR_RETURN(DeviceTensor t, resolve(v));
      input_tensors_.push_back(t);
      staging += align_up(t.nbytes());
    }
    for (const Value* v : g.outputs) {
      KILN_ASSIGN_OR_RETURN(DeviceTensor t, resolve(v));
      output_tensors_.push_back(t);
      staging += align_up(t.nbytes());
    }
    KILN_ASSIGN_OR_RETURN(staging_, PinnedBuffer::allocate(staging));
    return Status::Ok();
  }

  Status set_inputs(const std::map<std::string, Tensor>& inputs) override {
    const Graph& g = engine_.graph();
    KILN_RETURN_IF_ERROR(check_inputs(g, inputs));
    auto* stage = static_cast<char*>(staging_.get());
    // The previous run's copies may still read the pinned staging buffer.
    KILN_CUDA_CHECK(cudaStreamSynchronize(stream_));
    timings_ = {};
    KILN_CUDA_CHECK(cudaEventRecord(events_[0], stream_));
    for (size_t i = 0; i < g.inputs.size(); ++i) {
      const Tensor& t = inputs.at(g.inputs[i]->name);
      const DeviceTensor& d = input_tensors_[i];
      std::memcpy(stage, t.raw_data(), t.nbytes());
      KILN_CUDA_CHECK(cudaMemcpyAsync(d.data, stage, t.nbytes(), cudaMemcpyHostToDevice, stream_));
      stage += align_up(t.nbytes());
    }
    KILN_CUDA_CHECK(cudaEventRecord(events_[1], stream_));
    pending_[0] = true;
    return Status::Ok();
  }

  Status enqueue_layers() {
    const auto& layers = engine_.layers();
    const auto& nodes = engine_.graph().nodes();
    const bool timed = !layer_events_.empty();
    if (timed) KILN_CUDA_CHECK(cudaEventRecord(layer_events_[0], stream_));
    for (size_t i = 0; i < layers.size(); ++i) {
      LaunchArgs args{layer_inputs_[i], layer_outputs_[i], workspace_.get(), workspace_.size(), stream_, handles_};
      Status st = layers[i]->enqueue(args);
      if (!st.ok()) return st.add_context(nodes[i]->describe());
      if (timed) KILN_CUDA_CHECK(cudaEventRecord(layer_events_[i + 1], stream_));
    }
    return Status::Ok();
  }

  Status enqueue() override {
    timings_.compute_ms = timings_.d2h_ms = 0;
    KILN_CUDA_CHECK(cudaEventRecord(events_[2], stream_));
    if (options_.cuda_graph) {
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
    const Graph& g = engine_.graph();
    size_t in_bytes = 0;
    for (const DeviceTensor& d : input_tensors_) in_bytes += align_up(d.nbytes());
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
    if (!layers_timed_) return invalid_argument("no layers have run on this context yet");
    std::vector<double> out(layer_events_.size() - 1);
    for (size_t i = 0; i + 1 < layer_events_.size(); ++i) {
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
  std::vector<std::vector<DeviceTensor>> layer_inputs_, layer_outputs_;
  std::vector<DeviceTensor> input_tensors_, output_tensors_;
  cudaGraphExec_t graph_exec_ = nullptr;
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
  for (const auto& s : plan.arena) e->arena_offsets_[s.value] = s.offset;
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
    e->weight_ptrs_[v] = dst;
  }

  for (size_t i = 0; i < g.nodes().size(); ++i) {
    const Node& n = *g.nodes()[i];
    const CudaLayerFactory* f = find_cuda_layer(n);
    if (!f) return unsupported("{}: no CUDA layer for this op", n.describe());
    auto layer = f->create(n, plan.layers[i]);
    if (!layer.ok()) return Status(layer.status()).add_context(n.describe());
    e->workspace_bytes_ = std::max<uint64_t>(e->workspace_bytes_, (*layer)->workspace_bytes());
    e->layers_.push_back(std::move(*layer));
  }
  return e;
}

Expected<ValueLocation> CudaEngine::locate(const Value* v) const {
  ValueLocation loc;
  loc.dtype = v->type.dtype;
  if (v->constant) {
    auto it = weight_ptrs_.find(v);
    if (it == weight_ptrs_.end()) return internal_error("constant '{}' was not uploaded", v->name);
    loc.constant = true;
    loc.weights_ptr = it->second;
    loc.dims = v->constant->dims();
    return loc;
  }
  auto it = arena_offsets_.find(v->name);
  if (it == arena_offsets_.end()) return internal_error("value '{}' has no place in the memory plan", v->name);
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
