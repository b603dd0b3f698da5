// kiln custom-op plugins: run an op kiln does not have (or replace one) with your own code.
//
// A plugin library is a shared object that defines a Plugin (the op: type inference, a CPU
// compute and/or a CUDA enqueue, serialization) and a PluginCreator (its name, version and domain;
// makes the plugin from ONNX attributes or from the bytes stored in a plan), and exports them:
//
//   class HSwish : public kiln::Plugin { ... };
//   class HSwishCreator : public kiln::PluginCreator {
//     std::string name() const override { return "HSwish"; }
//     std::string version() const override { return "1"; }
//     kiln::Expected<std::unique_ptr<kiln::Plugin>> create(const kiln::PluginAttributes&) const override {
//       return std::unique_ptr<kiln::Plugin>(std::make_unique<HSwish>());
//     }
//     ...
//   };
//   KILN_PLUGIN_LIBRARY(HSwishCreator)   // exports the entry points kiln::load_plugin_library calls
//
// and is loaded with `kiln run --plugin libmy_plugins.so model.onnx` or, from C++:
//
//   if (auto st = kiln::load_plugin_library("libmy_plugins.so"); !st.ok()) { ... st.message() ... }
//
// A node runs as a plugin when (a) its domain is a custom one and a plugin of its op name is
// registered, (b) it is op "Plugin" with string attributes `name` (the plugin) and `info` (free
// text, e.g. JSON: tensorRT_Pro's convention), or (c) kiln has no op of that name and a plugin does.
// docs/plugins.md walks through examples/plugins/hswish.
//
// The interface uses C++ standard-library types: build plugins with the same compiler and standard
// library as kiln. kPluginInterfaceVersion changes whenever this header changes incompatibly; a
// library built against another version is refused when loaded.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <variant>
#include <vector>

#include "kiln/status.hpp"

namespace kiln {

inline constexpr int kPluginInterfaceVersion = 1;

// Element types, numbered as ONNX's TensorProto.DataType.
enum class PluginDataType : int32_t {
  kUndefined = 0,
  kFloat32 = 1,
  kUInt8 = 2,
  kInt8 = 3,
  kUInt16 = 4,
  kInt16 = 5,
  kInt32 = 6,
  kInt64 = 7,
  kBool = 9,
  kFloat16 = 10,
  kFloat64 = 11,
  kUInt32 = 12,
  kUInt64 = 13,
  kBFloat16 = 16,
};

// Where a plugin runs.
enum class PluginDevice { kCpu, kCuda };

// A tensor's type. dims: row-major sizes; a negative dim is unknown (at build time, for symbolic
// sizes). Equal negative values stand for the same unknown size, so a plugin that copies input
// dims to its output keeps them symbolic. At execution every dim is known.
struct PluginTensorDesc {
  PluginDataType dtype = PluginDataType::kUndefined;
  std::vector<int64_t> dims;
  bool has_rank = true;  // false: even the rank is unknown (inference only)
};

// A tensor at execution: dense, row-major (NCHW-contiguous), on the host for compute() and on the
// current CUDA device for enqueue(). `data` is null for an absent optional input.
struct PluginTensor {
  PluginTensorDesc desc;
  void* data = nullptr;
  int64_t numel() const {
    int64_t n = 1;
    for (int64_t d : desc.dims) n *= d;
    return n;
  }
};

// A node's ONNX attributes (tensor and graph attributes are not passed).
using PluginAttribute = std::variant<int64_t, float, std::string, std::vector<int64_t>, std::vector<float>,
                                     std::vector<std::string>>;
class PluginAttributes {
 public:
  std::map<std::string, PluginAttribute> values;

  bool has(const std::string& name) const { return values.count(name) != 0; }
  template <typename T>
  const T* get(const std::string& name) const {
    auto it = values.find(name);
    return it == values.end() ? nullptr : std::get_if<T>(&it->second);
  }
  int64_t i(const std::string& name, int64_t def = 0) const { return get<int64_t>(name) ? *get<int64_t>(name) : def; }
  float f(const std::string& name, float def = 0.f) const { return get<float>(name) ? *get<float>(name) : def; }
  std::string s(const std::string& name, const std::string& def = "") const {
    return get<std::string>(name) ? *get<std::string>(name) : def;
  }
};

// A CUDA stream (cudaStream_t), opaque so that this header needs no CUDA headers.
using PluginCudaStream = void*;

// One instance per node. Every method is const: an engine may run the same plugin from several
// threads (one execution context each); keep per-call state on the stack.
class Plugin {
 public:
  virtual ~Plugin() = default;

  // Output dtypes and shapes from the inputs'. `outputs` comes sized to the node's output count.
  // Called at build time (dims may be negative = unknown) and before each CPU execution.
  virtual Status infer(const std::vector<PluginTensorDesc>& inputs, std::vector<PluginTensorDesc>& outputs) const = 0;

  // Whether this plugin can run these input types on `device` (dense row-major layout only).
  virtual bool supports(const std::vector<PluginTensorDesc>& inputs, PluginDevice device) const = 0;

  // The CPU implementation: reads inputs, writes the (already allocated) outputs.
  virtual Status compute(const std::vector<PluginTensor>& inputs, const std::vector<PluginTensor>& outputs) const {
    return Status(StatusCode::kUnsupported, "this plugin has no CPU implementation");
  }

  // Scratch device memory enqueue() needs for these (static) inputs.
  virtual size_t workspace_bytes(const std::vector<PluginTensorDesc>& inputs) const { return 0; }

  // The CUDA implementation: launches work on `stream` with device pointers. Must not allocate,
  // synchronize or touch host memory (it may be captured into a CUDA graph).
  virtual Status enqueue(const std::vector<PluginTensor>& inputs, const std::vector<PluginTensor>& outputs,
                         void* workspace, PluginCudaStream stream) const {
    return Status(StatusCode::kUnsupported, "this plugin has no CUDA implementation");
  }

  // The state a plan stores; PluginCreator::deserialize rebuilds the plugin from it.
  virtual std::string serialize() const = 0;
  virtual std::unique_ptr<Plugin> clone() const = 0;
};

class PluginCreator {
 public:
  virtual ~PluginCreator() = default;
  virtual std::string name() const = 0;     // the op name it implements, e.g. "HSwish"
  virtual std::string version() const = 0;  // of its serialized form, e.g. "1"
  // The ONNX domain of its op for rule (a), e.g. "com.example"; "" matches any custom domain.
  virtual std::string plugin_namespace() const { return ""; }
  // From a node's attributes (for rule (b) they include `name` and `info`). Errors name what is wrong.
  virtual Expected<std::unique_ptr<Plugin>> create(const PluginAttributes& attributes) const = 0;
  // From Plugin::serialize()'s bytes, when a plan is loaded.
  virtual Expected<std::unique_ptr<Plugin>> deserialize(const std::string& bytes) const = 0;
};

// The process-wide set of creators. Creators stay registered for the life of the process (plugin
// libraries are never unloaded).
class PluginRegistry {
 public:
  virtual ~PluginRegistry() = default;
  // Fails when a creator of the same name, version and namespace is already registered.
  virtual Status add(std::shared_ptr<PluginCreator> creator) = 0;
  // version "" = the newest registered; plugin_namespace "" = any.
  virtual const PluginCreator* find(const std::string& name, const std::string& version = "",
                                    const std::string& plugin_namespace = "") const = 0;
  virtual std::vector<const PluginCreator*> creators() const = 0;
};

// The registry (defined in libkiln).
PluginRegistry& plugin_registry();

// dlopens a plugin library, checks its interface version and registers its creators. Loading the
// same file twice is harmless. Errors name the file: not found / not loadable (dlerror), not a
// kiln plugin (no entry point), built for another interface version.
Status load_plugin_library(const std::string& path);

}  // namespace kiln

// The entry points a plugin library exports (KILN_PLUGIN_LIBRARY defines them).
#define KILN_PLUGIN_VERSION_SYMBOL "kiln_plugin_interface_version"
#define KILN_PLUGIN_REGISTER_SYMBOL "kiln_register_plugins"

// Exports a library's creators: KILN_PLUGIN_LIBRARY(HSwishCreator, OtherCreator).
#define KILN_PLUGIN_LIBRARY(...)                                                              \
  extern "C" __attribute__((visibility("default"))) int kiln_plugin_interface_version() {    \
    return ::kiln::kPluginInterfaceVersion;                                                   \
  }                                                                                           \
  extern "C" __attribute__((visibility("default"))) void kiln_register_plugins(              \
      ::kiln::PluginRegistry* registry, ::kiln::Status* status) {                             \
    ::kiln::kiln_plugin_detail::register_all<__VA_ARGS__>(*registry, *status);               \
  }

namespace kiln::kiln_plugin_detail {
template <typename... Creators>
void register_all(PluginRegistry& registry, Status& status) {
  ((status.ok() ? (void)(status = registry.add(std::make_shared<Creators>())) : (void)0), ...);
}
}  // namespace kiln::kiln_plugin_detail
