// kiln: compile an ONNX model into an inference plan for this machine's GPU (or its CPU), load
// the plan, and run it. This header is the whole public API.
//
//   #include <kiln/kiln.hpp>
//
//   // 1. Once (offline, or on the first start): ONNX model -> plan file for this GPU.
//   kiln::CompileOptions options;
//   options.backend = "cuda";                          // "cpu", "cuda" or "auto"
//   options.fp16 = true;                               // allow float16 layers
//   options.input_shapes["images"] = {8, 3, 224, 224}; // fix dynamic dims (GPU plans are static)
//   if (kiln::Status st = kiln::compile("resnet50.onnx", "resnet50.kplan", options); !st.ok()) {
//     std::fprintf(stderr, "%s\n", st.message().c_str());  // says what and where (op, node, file)
//     return 1;
//   }
//
//   // 2. At run time: load the plan (weights go to the GPU once) and run it.
//   auto loaded = kiln::load("resnet50.kplan");
//   if (!loaded) { std::fprintf(stderr, "%s\n", loaded.status().message().c_str()); return 1; }
//   std::shared_ptr<kiln::Infer> infer = *loaded;
//
//   kiln::InferTensor* images = infer->input("images");     // or infer->input(0)
//   images->copy_from(pixels.data(), pixels.size() * sizeof(float));  // checks the size
//   if (kiln::Status st = infer->forward(); !st.ok()) ...   // runs and waits: outputs are on the host
//   const kiln::InferTensor* scores = infer->output(0);
//   const float* p = scores->host<float>();                 // scores->shape() == {8, 1000}
//
//   // 3. Overlapping host work with the GPU: forward_async() returns once the work is queued.
//   infer->forward_async();      // the inputs' host buffers must stay unchanged until synchronize()
//   prepare_next_batch();
//   infer->synchronize();
//   infer->output(0)->to_host(); // explicit: copies the outputs back (host() is stale until then)
//
// Threads: an InferEngine (the loaded plan) is immutable and shared; each thread or stream uses its
// own Infer (engine->create_infer()), which owns its activation memory and, on the GPU, a stream.
// Nothing here aborts or throws on bad input: failures are Status values (kiln/status.hpp).
//
// Linking: kiln::load and InferEngine need libkiln; kiln::compile and InferEngine::build also
// libkiln_onnx (the ONNX importer). Plans for the GPU need the CUDA backend, libkiln_cuda, linked
// into the program (it registers itself when loaded). CMake: target_link_libraries(app kiln
// kiln_onnx kiln_cuda).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "kiln/plugin.hpp"  // custom ops: kiln::load_plugin_library (docs/plugins.md)
#include "kiln/status.hpp"

namespace kiln {

class Engine;  // the runtime's engine (runtime/engine.hpp), behind InferEngine
class Infer;
class InferEngine;

// Element types of inputs and outputs.
enum class ElementType : uint8_t {
  kUndefined = 0,
  kFloat32,
  kFloat16,   // IEEE half: 16 bits per element (use uint16_t for host access)
  kBFloat16,  // bfloat16: 16 bits per element
  kFloat64,
  kInt8,
  kUInt8,
  kInt16,
  kUInt16,
  kInt32,
  kUInt32,
  kInt64,
  kUInt64,
  kBool,  // one byte per element
};
const char* element_type_name(ElementType t);  // "float32", ...
size_t element_size(ElementType t);            // bytes per element

// How to compile a model (the `kiln build` options).
struct CompileOptions {
  std::string backend = "auto";  // "cpu", "cuda", or "auto": CUDA when this machine has a usable GPU
  bool fp16 = false;             // allow float16 layers
  bool bf16 = false;             // allow bfloat16 layers
  bool tf32 = true;              // allow TF32 tensor-core math for float32 layers
  std::map<std::string, std::vector<int64_t>> input_shapes;  // input name -> fixed shape
  // Optimization profiles: per profile, input name -> {min, opt, max} shape. The plan then runs any
  // input shape within a profile (e.g. a batch up to max: infer->input(0)->resize({b, 3, h, w})).
  struct ShapeRange {
    std::vector<int64_t> min, opt, max;
  };
  std::vector<std::map<std::string, ShapeRange>> profiles;
  uint64_t workspace_bytes = 1ull << 30;  // the most scratch memory one layer may use
  std::string timing_cache;               // tactic timings file, read and updated when set
  std::function<void(std::string_view)> log;  // progress lines, when set
};

// Compiles the ONNX model at `model_path` into a plan file at `plan_path` (written atomically).
Status compile(const std::string& model_path, const std::string& plan_path, const CompileOptions& options = {});

struct TensorInfo {
  std::string name;
  ElementType dtype = ElementType::kUndefined;
  std::vector<int64_t> shape;  // -1 for a dim the plan leaves dynamic (CPU plans, or plans with profiles)
};

// One input or output of an Infer, with its host buffer.
class InferTensor {
 public:
  const std::string& name() const { return name_; }
  ElementType dtype() const { return dtype_; }
  // The current shape: an input's as set (resize), an output's as of the last forward. -1 marks a
  // dim not known yet.
  const std::vector<int64_t>& shape() const { return shape_; }
  int64_t numel() const;  // 0 while a dim is unknown
  size_t nbytes() const { return static_cast<size_t>(numel()) * element_size(dtype_); }
  bool is_input() const { return is_input_; }

  // The host buffer (nbytes() bytes; null while the shape is unknown). For an input, what the
  // next forward reads; for an output, what the last forward()/to_host() brought back.
  void* host() { return data_; }
  const void* host() const { return data_; }
  // Typed view; null when sizeof(T) is not the element size.
  template <typename T> T* host() { return sizeof(T) == element_size(dtype_) ? static_cast<T*>(data_) : nullptr; }
  template <typename T> const T* host() const {
    return sizeof(T) == element_size(dtype_) ? static_cast<const T*>(data_) : nullptr;
  }

  // Copies nbytes() bytes in (inputs only); `nbytes` must equal nbytes().
  Status copy_from(const void* data, size_t nbytes);
  // Copies out nbytes() bytes; `nbytes` must equal nbytes().
  Status copy_to(void* data, size_t nbytes) const;
  // Inputs only: sets the dims the plan leaves dynamic (CPU plans); static dims must match.
  Status resize(const std::vector<int64_t>& shape);
  // Outputs: waits for the last forward_async() and copies every output to the host (once per
  // forward; afterwards a no-op).
  Status to_host();
  // Whether host() holds the result of the last forward (outputs; always true for inputs).
  bool on_host() const;

 private:
  friend class Infer;
  friend class InferEngine;
  InferTensor() = default;
  std::string name_;
  ElementType dtype_ = ElementType::kUndefined;
  std::vector<int64_t> shape_;
  bool is_input_ = false;
  void* data_ = nullptr;
  Infer* owner_ = nullptr;
  size_t index_ = 0;
};

struct InferOptions {
  bool cuda_graph = false;  // capture the layers once into a CUDA graph and replay it (CUDA plans)
};

// One inference at a time on one plan: inputs, outputs and the run. Not thread-safe: use one per
// thread (they share the engine).
class Infer {
 public:
  ~Infer();
  Infer(const Infer&) = delete;
  Infer& operator=(const Infer&) = delete;

  size_t num_inputs() const { return inputs_.size(); }
  size_t num_outputs() const { return outputs_.size(); }
  // Null for an index or name out of range.
  InferTensor* input(size_t index) { return index < inputs_.size() ? inputs_[index].get() : nullptr; }
  InferTensor* input(const std::string& name);
  InferTensor* output(size_t index) { return index < outputs_.size() ? outputs_[index].get() : nullptr; }
  const InferTensor* output(size_t index) const {
    return index < outputs_.size() ? outputs_[index].get() : nullptr;
  }
  InferTensor* output(const std::string& name);

  // Runs on the inputs' host buffers and waits; the outputs are then on the host.
  Status forward();
  // Queues the input copies and the layers and returns (on the CPU it runs right away). The inputs'
  // host buffers must stay unchanged until synchronize(); outputs come back with to_host().
  Status forward_async();
  // Waits for everything forward_async() queued.
  Status synchronize();

  const InferEngine& engine() const { return *engine_; }

 private:
  friend class InferEngine;
  friend class InferTensor;
  struct Impl;
  Infer() = default;
  Status fetch_outputs();  // outputs of the last forward to the host, once
  std::shared_ptr<const InferEngine> engine_;
  std::vector<std::unique_ptr<InferTensor>> inputs_, outputs_;
  std::unique_ptr<Impl> impl_;
};

// A loaded plan on its backend (weights on the device). Immutable; shared by threads.
class InferEngine : public std::enable_shared_from_this<InferEngine> {
 public:
  // Loads a plan file; fails saying why when it does not fit this machine (GPU, versions).
  static Expected<std::shared_ptr<InferEngine>> load(const std::string& plan_path);
  // Compiles a model in memory, without a plan file (needs libkiln_onnx).
  static Expected<std::shared_ptr<InferEngine>> build(const std::string& model_path,
                                                      const CompileOptions& options = {});
  ~InferEngine();

  Expected<std::shared_ptr<Infer>> create_infer(const InferOptions& options = {}) const;

  std::string backend() const;  // "cpu" or "cuda"
  std::vector<TensorInfo> inputs() const;
  std::vector<TensorInfo> outputs() const;
  size_t num_layers() const;
  uint64_t device_weight_bytes() const;   // GPU memory of the weights (0 on the CPU)
  uint64_t device_context_bytes() const;  // GPU memory of each Infer (activations + workspace)
  const Engine& engine() const { return *engine_; }  // the runtime's engine (runtime/engine.hpp)

 private:
  explicit InferEngine(std::shared_ptr<Engine> engine) : engine_(std::move(engine)) {}
  std::shared_ptr<Engine> engine_;
};

// kiln::InferEngine::load(plan_path), then create_infer(options).
Expected<std::shared_ptr<Infer>> load(const std::string& plan_path, const InferOptions& options = {});

}  // namespace kiln
