#include "plugin/plugin_node.hpp"

#include <map>

#include "ops/op_registry.hpp"
#include "util/error.hpp"

namespace kiln {

std::string PluginBinding::describe() const {
  return fmt::format("plugin '{}' (version {}{})", name, version,
                     plugin_namespace.empty() ? "" : ", namespace '" + plugin_namespace + "'");
}

const char* plugin_hint() {
  return "a custom op needs its plugin library: pass --plugin lib.so (or call kiln::load_plugin_library)";
}

bool is_custom_domain(const std::string& domain) {
  // "kiln" holds kiln's own fused ops (FusedConv, ...): never a plugin's.
  return !domain.empty() && domain != "ai.onnx" && domain.rfind("ai.onnx.", 0) != 0 && domain != "kiln";
}

std::string wanted_plugin_name(const Node& n) {
  if (n.op_type == "Plugin") return n.attrs.s("name");
  if (is_custom_domain(n.domain)) return n.op_type;
  if (!OpRegistry::instance().schema(n.domain, n.op_type)) return n.op_type;
  return "";
}

const PluginCreator* find_plugin_creator(const Node& n) {
  const PluginRegistry& reg = plugin_registry();
  if (n.op_type == "Plugin") {  // (b)
    std::string name = n.attrs.s("name");
    return name.empty() ? nullptr : reg.find(name);
  }
  if (is_custom_domain(n.domain)) return reg.find(n.op_type, "", n.domain);  // (a)
  if (!OpRegistry::instance().schema(n.domain, n.op_type)) return reg.find(n.op_type);  // (c)
  return nullptr;
}

namespace {

PluginAttributes to_plugin_attributes(const Attributes& attrs) {
  PluginAttributes out;
  for (const auto& [name, v] : attrs.all()) {
    std::visit(
        [&](const auto& x) {
          using T = std::decay_t<decltype(x)>;
          if constexpr (std::is_constructible_v<PluginAttribute, T> && !std::is_same_v<T, Tensor> &&
                        !std::is_same_v<T, GraphPtr>)
            out.values[name] = x;
        },
        v);
  }
  return out;
}

// Symbolic and unknown dims travel to the plugin as negative numbers, one per distinct symbol,
// and come back to the same symbol.
struct DimCodec {
  std::map<std::string, int64_t> ids;
  std::map<int64_t, std::string> symbols;
  int64_t next = -1;

  int64_t encode(const Dim& d) {
    if (d.known()) return d.value;
    if (d.symbol.empty()) return next--;
    auto [it, fresh] = ids.emplace(d.symbol, next);
    if (fresh) symbols[next--] = d.symbol;
    return it->second;
  }
  Dim decode(int64_t v) const {
    if (v >= 0) return Dim(v);
    auto it = symbols.find(v);
    return it == symbols.end() ? Dim() : Dim::symbolic(it->second);
  }
};

Status plugin_error(const Node& n, const Status& st, const char* what) {
  std::string who = n.plugin ? n.plugin->describe() : "plugin";
  return Status(st.code(), fmt::format("{}: {} {} failed: {}", n.describe(), who, what, st.message()));
}

}  // namespace

PluginDataType to_plugin_dtype(DType t) {
  switch (t) {
    case DType::kFloat32: return PluginDataType::kFloat32;
    case DType::kFloat16: return PluginDataType::kFloat16;
    case DType::kBFloat16: return PluginDataType::kBFloat16;
    case DType::kFloat64: return PluginDataType::kFloat64;
    case DType::kInt8: return PluginDataType::kInt8;
    case DType::kUInt8: return PluginDataType::kUInt8;
    case DType::kInt16: return PluginDataType::kInt16;
    case DType::kUInt16: return PluginDataType::kUInt16;
    case DType::kInt32: return PluginDataType::kInt32;
    case DType::kUInt32: return PluginDataType::kUInt32;
    case DType::kInt64: return PluginDataType::kInt64;
    case DType::kUInt64: return PluginDataType::kUInt64;
    case DType::kBool: return PluginDataType::kBool;
    default: return PluginDataType::kUndefined;
  }
}

DType from_plugin_dtype(PluginDataType t) {
  for (DType d : {DType::kFloat32, DType::kFloat16, DType::kBFloat16, DType::kFloat64, DType::kInt8, DType::kUInt8,
                  DType::kInt16, DType::kUInt16, DType::kInt32, DType::kUInt32, DType::kInt64, DType::kUInt64,
                  DType::kBool})
    if (to_plugin_dtype(d) == t) return d;
  return DType::kUndefined;
}

Status bind_plugin(Node& n) {
  if (n.plugin) return Status::Ok();
  if (n.op_type == "Plugin" && !n.attrs.get_ptr<std::string>("name"))
    return invalid_model("{}: op Plugin needs a string attribute 'name' naming the plugin", n.describe());
  const PluginCreator* creator = find_plugin_creator(n);
  if (!creator) return Status::Ok();
  auto binding = std::make_shared<PluginBinding>();
  binding->name = creator->name();
  binding->version = creator->version();
  binding->plugin_namespace = creator->plugin_namespace();
  auto plugin = creator->create(to_plugin_attributes(n.attrs));
  if (!plugin.ok())
    return Status(plugin.status().code(), fmt::format("{}: {} could not be created: {}", n.describe(),
                                                      binding->describe(), plugin.status().message()));
  if (!*plugin) return internal_error("{}: {} created a null plugin", n.describe(), binding->describe());
  binding->plugin = std::shared_ptr<const Plugin>(std::move(*plugin));
  n.plugin = std::move(binding);
  return Status::Ok();
}

Status bind_plugins(Graph& g) {
  for (const auto& n : g.nodes()) {
    KILN_RETURN_IF_ERROR(bind_plugin(*n));
    for (const Graph* sg : n->subgraphs()) KILN_RETURN_IF_ERROR(bind_plugins(const_cast<Graph&>(*sg)));
  }
  return Status::Ok();
}

Status plugin_infer(const Node& n, const std::vector<TensorType>& inputs, std::vector<TensorType>& outputs) {
  if (!n.plugin) return internal_error("{}: no plugin bound", n.describe());
  DimCodec codec;
  std::vector<PluginTensorDesc> in;
  for (const TensorType& t : inputs) {
    PluginTensorDesc d;
    d.dtype = to_plugin_dtype(t.dtype);
    d.has_rank = t.shape.has_rank();
    if (d.has_rank)
      for (const Dim& dim : t.shape.dims()) d.dims.push_back(codec.encode(dim));
    in.push_back(std::move(d));
  }
  std::vector<PluginTensorDesc> out(n.outputs.size());
  Status st;
  try {
    st = n.plugin->plugin->infer(in, out);
  } catch (const std::exception& e) {
    st = Status(StatusCode::kRuntimeError, std::string("exception: ") + e.what());
  }
  if (!st.ok()) return plugin_error(n, st, "shape inference");
  if (out.size() != n.outputs.size())
    return internal_error("{}: {} returned {} output types for {} outputs", n.describe(), n.plugin->describe(),
                          out.size(), n.outputs.size());
  outputs.clear();
  for (const PluginTensorDesc& d : out) {
    TensorType t;
    t.dtype = from_plugin_dtype(d.dtype);
    if (t.dtype == DType::kUndefined)
      return invalid_argument("{}: {} gave an output an unknown dtype ({})", n.describe(), n.plugin->describe(),
                              static_cast<int>(d.dtype));
    if (d.has_rank) {
      std::vector<Dim> dims;
      for (int64_t v : d.dims) dims.push_back(codec.decode(v));
      t.shape = Shape(std::move(dims));
    }
    outputs.push_back(std::move(t));
  }
  return Status::Ok();
}

bool plugin_supports(const Node& n, PluginDevice device) {
  if (!n.plugin) return false;
  std::vector<PluginTensorDesc> in = plugin_input_descs(n);
  try {
    return n.plugin->plugin->supports(in, device);
  } catch (const std::exception&) {
    return false;
  }
}

std::vector<PluginTensorDesc> plugin_input_descs(const Node& n) {
  std::vector<PluginTensorDesc> in;
  for (const Value* v : n.inputs) {
    PluginTensorDesc d;
    if (v) {
      d.dtype = to_plugin_dtype(v->type.dtype);
      d.has_rank = v->type.shape.has_rank();
      if (d.has_rank)
        for (const Dim& dim : v->type.shape.dims()) d.dims.push_back(dim.known() ? dim.value : -1);
    }
    in.push_back(std::move(d));
  }
  return in;
}

Expected<std::vector<Tensor>> run_plugin_on_cpu(const Node& n, const std::vector<const Tensor*>& inputs) {
  if (!n.plugin) return internal_error("{}: no plugin bound", n.describe());
  std::vector<TensorType> types;
  std::vector<PluginTensor> in;
  for (const Tensor* t : inputs) {
    types.push_back(t ? TensorType{t->dtype(), Shape::from_dims(t->dims())} : TensorType{});
    PluginTensor p;
    if (t) {
      p.desc.dtype = to_plugin_dtype(t->dtype());
      p.desc.dims = t->dims();
      p.data = const_cast<void*>(t->raw_data());  // read-only by contract
    }
    in.push_back(std::move(p));
  }
  std::vector<TensorType> out_types;
  KILN_RETURN_IF_ERROR(plugin_infer(n, types, out_types));
  std::vector<Tensor> outs;
  std::vector<PluginTensor> out;
  for (size_t i = 0; i < out_types.size(); ++i) {
    auto dims = out_types[i].shape.to_dims();
    if (!dims)
      return invalid_argument("{}: {} inferred output {} as {}, not a static shape", n.describe(),
                              n.plugin->describe(), i, out_types[i].to_string());
    outs.emplace_back(out_types[i].dtype, *dims);
    PluginTensor p;
    p.desc.dtype = to_plugin_dtype(out_types[i].dtype);
    p.desc.dims = *dims;
    p.data = outs.back().raw_data();
    out.push_back(std::move(p));
  }
  Status st;
  try {
    st = n.plugin->plugin->compute(in, out);
  } catch (const std::exception& e) {
    st = Status(StatusCode::kRuntimeError, std::string("exception: ") + e.what());
  }
  if (!st.ok()) return plugin_error(n, st, "CPU compute");
  return outs;
}

}  // namespace kiln
