// The public runtime API (include/kiln/kiln.hpp) over Engine and ExecutionContext.
#include <cstring>

#include "kiln/kiln.hpp"
#include "runtime/engine.hpp"
#include "util/error.hpp"

namespace kiln {

// ElementType mirrors the IR's DType value for value, so conversions are casts.
static_assert(static_cast<int>(ElementType::kFloat32) == static_cast<int>(DType::kFloat32));
static_assert(static_cast<int>(ElementType::kFloat16) == static_cast<int>(DType::kFloat16));
static_assert(static_cast<int>(ElementType::kBFloat16) == static_cast<int>(DType::kBFloat16));
static_assert(static_cast<int>(ElementType::kFloat64) == static_cast<int>(DType::kFloat64));
static_assert(static_cast<int>(ElementType::kInt8) == static_cast<int>(DType::kInt8));
static_assert(static_cast<int>(ElementType::kUInt8) == static_cast<int>(DType::kUInt8));
static_assert(static_cast<int>(ElementType::kInt16) == static_cast<int>(DType::kInt16));
static_assert(static_cast<int>(ElementType::kUInt16) == static_cast<int>(DType::kUInt16));
static_assert(static_cast<int>(ElementType::kInt32) == static_cast<int>(DType::kInt32));
static_assert(static_cast<int>(ElementType::kUInt32) == static_cast<int>(DType::kUInt32));
static_assert(static_cast<int>(ElementType::kInt64) == static_cast<int>(DType::kInt64));
static_assert(static_cast<int>(ElementType::kUInt64) == static_cast<int>(DType::kUInt64));
static_assert(static_cast<int>(ElementType::kBool) == static_cast<int>(DType::kBool));

namespace {

ElementType to_element_type(DType t) {
  return t == DType::kString ? ElementType::kUndefined : static_cast<ElementType>(t);
}
DType to_dtype(ElementType t) { return static_cast<DType>(t); }

std::vector<int64_t> shape_dims(const Shape& s) {
  std::vector<int64_t> out;
  if (!s.has_rank()) return out;
  for (const Dim& d : s.dims()) out.push_back(d.known() ? d.value : -1);
  return out;
}

bool fully_known(const std::vector<int64_t>& dims) {
  for (int64_t d : dims)
    if (d < 0) return false;
  return true;
}

std::string dims_text(const std::vector<int64_t>& dims) {
  std::string s = "[";
  for (size_t i = 0; i < dims.size(); ++i) s += (i ? "," : "") + (dims[i] < 0 ? std::string("?") : std::to_string(dims[i]));
  return s + "]";
}

std::vector<TensorInfo> infos(const std::vector<BindingInfo>& bindings) {
  std::vector<TensorInfo> out;
  for (const BindingInfo& b : bindings) out.push_back({b.name, to_element_type(b.dtype), shape_dims(b.shape)});
  return out;
}

}  // namespace

const char* element_type_name(ElementType t) { return dtype_name(to_dtype(t)).data(); }
size_t element_size(ElementType t) { return dtype_size(to_dtype(t)); }

// ---- InferTensor ----

int64_t InferTensor::numel() const {
  if (!fully_known(shape_)) return 0;
  int64_t n = 1;
  for (int64_t d : shape_) n *= d;
  return n;
}

Status InferTensor::copy_from(const void* data, size_t nbytes) {
  if (!is_input_) return invalid_argument("'{}' is an output: only inputs take data", name_);
  if (!data_) return invalid_argument("input '{}' has dynamic shape {}: resize() it first", name_, dims_text(shape_));
  if (nbytes != this->nbytes())
    return invalid_argument("input '{}' is {}{}: {} bytes, given {}", name_, element_type_name(dtype_),
                            dims_text(shape_), this->nbytes(), nbytes);
  if (nbytes) std::memcpy(data_, data, nbytes);
  return Status::Ok();
}

Status InferTensor::copy_to(void* data, size_t nbytes) const {
  if (!data_) return invalid_argument("'{}' has no data yet (shape {})", name_, dims_text(shape_));
  if (nbytes != this->nbytes())
    return invalid_argument("'{}' is {}{}: {} bytes, given room for {}", name_, element_type_name(dtype_),
                            dims_text(shape_), this->nbytes(), nbytes);
  if (nbytes) std::memcpy(data, data_, nbytes);
  return Status::Ok();
}

Status InferTensor::to_host() {
  if (is_input_) return Status::Ok();
  return owner_->fetch_outputs();
}

// ---- Infer ----

struct Infer::Impl {
  std::unique_ptr<ExecutionContext> ctx;
  std::vector<Shape> declared;       // inputs' shapes in the plan (resize checks against them)
  std::vector<Tensor> in_tensors;    // own the inputs' host buffers
  std::vector<Tensor> out_tensors;   // own the outputs' host buffers
  uint64_t generation = 0;           // forwards queued
  uint64_t fetched = 0;              // the forward whose outputs are on the host
};

bool InferTensor::on_host() const {
  if (is_input_) return true;
  return owner_->impl_->generation > 0 && owner_->impl_->fetched == owner_->impl_->generation;
}

Status InferTensor::resize(const std::vector<int64_t>& shape) {
  if (!is_input_) return invalid_argument("'{}' is an output: its shape comes from the model", name_);
  Infer::Impl& impl = *owner_->impl_;
  const Shape& want = impl.declared[index_];
  bool ok = fully_known(shape) && (!want.has_rank() || want.rank() == shape.size());
  for (size_t i = 0; ok && want.has_rank() && i < shape.size(); ++i) ok = !want[i].known() || want[i].value == shape[i];
  if (!ok)
    return invalid_argument("input '{}': shape {} does not fit the plan's {}", name_, dims_text(shape),
                            want.to_string());
  if (shape == shape_ && data_) return Status::Ok();
  // Within the plan's optimization profile (an error names the input and the allowed range).
  KILN_RETURN_IF_ERROR(impl.ctx->set_input_shape(name_, shape));
  Tensor t = Tensor::zeros(to_dtype(dtype_), shape);
  shape_ = shape;
  data_ = t.raw_data();
  impl.in_tensors[index_] = std::move(t);
  return Status::Ok();
}

Infer::~Infer() = default;

InferTensor* Infer::input(const std::string& name) {
  for (auto& t : inputs_)
    if (t->name() == name) return t.get();
  return nullptr;
}

InferTensor* Infer::output(const std::string& name) {
  for (auto& t : outputs_)
    if (t->name() == name) return t.get();
  return nullptr;
}

Status Infer::forward_async() {
  std::map<std::string, Tensor> feeds;
  for (size_t i = 0; i < inputs_.size(); ++i) {
    const InferTensor& in = *inputs_[i];
    if (!in.host())
      return invalid_argument("input '{}' has dynamic shape {}: resize() it first", in.name(), dims_text(in.shape()));
    feeds[in.name()] = impl_->in_tensors[i];
  }
  KILN_RETURN_IF_ERROR(impl_->ctx->set_inputs(feeds));
  KILN_RETURN_IF_ERROR(impl_->ctx->enqueue());
  ++impl_->generation;
  return Status::Ok();
}

Status Infer::synchronize() { return impl_->ctx->synchronize(); }

Status Infer::forward() {
  KILN_RETURN_IF_ERROR(forward_async());
  KILN_RETURN_IF_ERROR(synchronize());
  return fetch_outputs();
}

Status Infer::fetch_outputs() {
  if (impl_->generation == 0) return invalid_argument("no forward has run yet");
  if (impl_->fetched == impl_->generation) return Status::Ok();
  KILN_ASSIGN_OR_RETURN(std::vector<Tensor> outs, impl_->ctx->outputs());
  if (outs.size() != outputs_.size())
    return internal_error("the plan has {} outputs, the run gave {}", outputs_.size(), outs.size());
  for (size_t i = 0; i < outs.size(); ++i) {
    InferTensor& o = *outputs_[i];
    Tensor& mine = impl_->out_tensors[i];
    // Copy into this Infer's own buffer: host() pointers stay put while shapes do, and never alias
    // the backend's memory (or an input's, for view ops on the CPU).
    if (!mine.defined() || mine.dims() != outs[i].dims() || mine.dtype() != outs[i].dtype())
      mine = Tensor(outs[i].dtype(), outs[i].dims());
    if (mine.nbytes()) std::memcpy(mine.raw_data(), outs[i].raw_data(), mine.nbytes());
    o.shape_ = mine.dims();
    o.data_ = mine.raw_data();
  }
  impl_->fetched = impl_->generation;
  return Status::Ok();
}

// ---- InferEngine ----

InferEngine::~InferEngine() = default;

Expected<std::shared_ptr<InferEngine>> InferEngine::load(const std::string& plan_path) {
  KILN_ASSIGN_OR_RETURN(std::shared_ptr<Engine> engine, Engine::load(plan_path));
  return std::shared_ptr<InferEngine>(new InferEngine(std::move(engine)));
}

Expected<std::shared_ptr<Infer>> InferEngine::create_infer(const InferOptions& options) const {
  std::shared_ptr<Infer> infer(new Infer());
  infer->engine_ = shared_from_this();
  infer->impl_ = std::make_unique<Infer::Impl>();
  Infer::Impl& impl = *infer->impl_;
  KILN_ASSIGN_OR_RETURN(impl.ctx, engine_->create_context(ContextOptions{.cuda_graph = options.cuda_graph}));
  auto make = [&](const BindingInfo& b, bool is_input, size_t index, std::vector<Tensor>& store) {
    auto t = std::unique_ptr<InferTensor>(new InferTensor());
    t->name_ = b.name;
    t->dtype_ = to_element_type(b.dtype);
    t->shape_ = shape_dims(b.shape);
    t->is_input_ = is_input;
    t->owner_ = infer.get();
    t->index_ = index;
    Tensor buffer;
    if (b.shape.has_rank() && fully_known(t->shape_) && t->dtype_ != ElementType::kUndefined)
      buffer = Tensor::zeros(b.dtype, t->shape_);  // zeros: a forward before copy_from is deterministic
    t->data_ = buffer.defined() ? buffer.raw_data() : nullptr;
    store.push_back(std::move(buffer));
    return t;
  };
  std::vector<BindingInfo> ins = engine_->inputs(), outs = engine_->outputs();
  for (size_t i = 0; i < ins.size(); ++i) {
    if (ins[i].dtype == DType::kString || ins[i].dtype == DType::kUndefined)
      return unsupported("input '{}' has type {}: the API passes numeric tensors only", ins[i].name,
                         dtype_name(ins[i].dtype));
    impl.declared.push_back(ins[i].shape);
    infer->inputs_.push_back(make(ins[i], true, i, impl.in_tensors));
  }
  for (size_t i = 0; i < outs.size(); ++i) {
    if (outs[i].dtype == DType::kString)  // string outputs have no bytes to hand out
      return unsupported("output '{}' has type string: the API passes numeric tensors only", outs[i].name);
    infer->outputs_.push_back(make(outs[i], false, i, impl.out_tensors));
  }
  return infer;
}

std::string InferEngine::backend() const { return engine_->plan().target.backend; }
std::vector<TensorInfo> InferEngine::inputs() const { return infos(engine_->inputs()); }
std::vector<TensorInfo> InferEngine::outputs() const { return infos(engine_->outputs()); }
size_t InferEngine::num_layers() const { return engine_->plan().graph->nodes().size(); }
uint64_t InferEngine::device_weight_bytes() const { return engine_->impl().weight_bytes(); }
uint64_t InferEngine::device_context_bytes() const { return engine_->impl().context_bytes(); }

Expected<std::shared_ptr<Infer>> load(const std::string& plan_path, const InferOptions& options) {
  KILN_ASSIGN_OR_RETURN(auto engine, InferEngine::load(plan_path));
  return engine->create_infer(options);
}

}  // namespace kiln
