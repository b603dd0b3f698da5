// bytes -> Plan, checking the header, the checksum and the FlatBuffers table before trusting them.
#include <zlib.h>

#include <cstring>

#include "io/mapped_file.hpp"
#include "plugin/plugin_node.hpp"
#include "plan_generated.h"
#include "runtime/plan.hpp"
#include "runtime/plan_header.hpp"
#include "util/error.hpp"

namespace kiln {

namespace {

using namespace plan_detail;

std::string str(const flatbuffers::String* s) { return s ? s->str() : std::string(); }

class Reader {
 public:
  Reader(std::shared_ptr<MappedFile> file, const Header& h) : file_(std::move(file)), h_(h) {}

  Expected<Plan> read(const fb::Plan& p) {
    Plan plan;
    plan.kiln_version = str(p.kiln_version());
    if (const auto* t = p.target()) {
      plan.target.backend = str(t->backend());
      plan.target.compute_capability = t->compute_capability();
      plan.target.device_name = str(t->device_name());
      plan.target.cuda_runtime_version = t->cuda_runtime_version();
      plan.target.cudnn_version = t->cudnn_version();
      plan.target.cublas_version = t->cublas_version();
    }
    if (!p.graph()) return corrupt("it has no graph");
    plan.graph = std::make_shared<Graph>();
    KILN_RETURN_IF_ERROR(read_graph(*p.graph(), *plan.graph, &plan.layers));
    plan.arena_bytes = p.arena_bytes();
    plan.workspace_bytes = p.workspace_bytes();
    if (p.arena())
      for (const auto* s : *p.arena()) plan.arena.push_back({str(s->value()), s->offset(), s->nbytes()});
    plan.build_seconds = p.build_seconds();
    plan.options_json = str(p.options());
    if (p.profiles())
      for (const auto* fp : *p.profiles()) {
        OptimizationProfile prof;
        if (fp->inputs())
          for (const auto* fi : *fp->inputs()) {
            auto dims = [](const flatbuffers::Vector<int64_t>* v) {
              return v ? Dims(v->begin(), v->end()) : Dims{};
            };
            prof.inputs[str(fi->name())] = ProfileShapes{dims(fi->min()), dims(fi->opt()), dims(fi->max())};
          }
        plan.profiles.push_back(std::move(prof));
      }
    return plan;
  }

 private:
  Status corrupt(const std::string& why) const {
    return invalid_model("{}: corrupt plan: {}", file_->path(), why);
  }

  Expected<Tensor> read_tensor(const fb::TensorRef* r) {
    if (!r) return corrupt("a tensor reference is missing");
    auto dtype = static_cast<DType>(r->dtype());
    if ((r->dtype() > static_cast<uint8_t>(DType::kBool) && dtype != DType::kFloat8E4M3FN) ||
        dtype == DType::kUndefined)
      return corrupt(fmt::format("unknown dtype code {}", r->dtype()));
    Dims dims;
    if (r->dims())
      for (int64_t d : *r->dims()) {
        if (d < 0) return corrupt("a negative tensor dimension");
        dims.push_back(d);
      }
    uint64_t nbytes = static_cast<uint64_t>(dims_numel(dims)) * dtype_size(dtype);
    if (nbytes != r->nbytes() || r->offset() > h_.weights_size || r->nbytes() > h_.weights_size - r->offset())
      return corrupt("a tensor lies outside the weights section");
    auto* data = const_cast<unsigned char*>(file_->data() + h_.weights_offset + r->offset());
    return Tensor::wrap(dtype, std::move(dims), data, file_);
  }

  Status read_attr(const fb::Attribute& a, Node& n, Graph& g) {
    std::string name = str(a.name());
    switch (a.kind()) {
      case fb::AttrKind_Int: n.attrs.set(name, static_cast<int64_t>(a.i())); break;
      case fb::AttrKind_Float: n.attrs.set(name, a.f()); break;
      case fb::AttrKind_String: n.attrs.set(name, str(a.s())); break;
      case fb::AttrKind_Tensor: {
        KILN_ASSIGN_OR_RETURN(Tensor t, read_tensor(a.t()));
        n.attrs.set(name, std::move(t));
        break;
      }
      case fb::AttrKind_Graph: {
        if (!a.g()) return corrupt("a graph attribute is empty");
        auto sg = std::make_shared<Graph>();
        sg->parent = &g;
        KILN_RETURN_IF_ERROR(read_graph(*a.g(), *sg, nullptr));
        n.attrs.set(name, sg);
        break;
      }
      case fb::AttrKind_Ints: {
        std::vector<int64_t> v;
        if (a.ints()) v.assign(a.ints()->begin(), a.ints()->end());
        n.attrs.set(name, std::move(v));
        break;
      }
      case fb::AttrKind_Floats: {
        std::vector<float> v;
        if (a.floats()) v.assign(a.floats()->begin(), a.floats()->end());
        n.attrs.set(name, std::move(v));
        break;
      }
      case fb::AttrKind_Strings: {
        std::vector<std::string> v;
        if (a.strings())
          for (const auto* s : *a.strings()) v.push_back(str(s));
        n.attrs.set(name, std::move(v));
        break;
      }
      case fb::AttrKind_Tensors: {
        std::vector<Tensor> v;
        if (a.tensors())
          for (const auto* r : *a.tensors()) {
            KILN_ASSIGN_OR_RETURN(Tensor t, read_tensor(r));
            v.push_back(std::move(t));
          }
        n.attrs.set(name, std::move(v));
        break;
      }
      case fb::AttrKind_Graphs: {
        std::vector<GraphPtr> v;
        if (a.graphs())
          for (const auto* fg : *a.graphs()) {
            auto sg = std::make_shared<Graph>();
            sg->parent = &g;
            KILN_RETURN_IF_ERROR(read_graph(*fg, *sg, nullptr));
            v.push_back(sg);
          }
        n.attrs.set(name, std::move(v));
        break;
      }
      default: return corrupt(fmt::format("unknown attribute kind {}", static_cast<int>(a.kind())));
    }
    return Status::Ok();
  }

  Expected<Value*> lookup(const Graph& g, const flatbuffers::String* name) {
    Value* v = g.find_value(str(name));
    if (!v) return corrupt(fmt::format("value '{}' is used but not defined", str(name)));
    return v;
  }

  // The plugin's creator must be registered (its library loaded) before the plan is.
  static Status read_plugin(const fb::Node& fn, Node& n) {
    auto b = std::make_shared<PluginBinding>();
    b->name = str(fn.plugin_name());
    b->version = str(fn.plugin_version());
    b->plugin_namespace = str(fn.plugin_namespace());
    const PluginCreator* creator = plugin_registry().find(b->name, b->version, b->plugin_namespace);
    if (!creator)
      return not_found("{}: the plan needs {}, which is not registered: pass --plugin with its library "
                       "(or call kiln::load_plugin_library) before loading the plan",
                       n.describe(), b->describe());
    std::string bytes;
    if (const auto* d = fn.plugin_data()) bytes.assign(reinterpret_cast<const char*>(d->data()), d->size());
    Expected<std::unique_ptr<Plugin>> plugin = Status(StatusCode::kInternal, "no plugin");
    try {
      plugin = creator->deserialize(bytes);
    } catch (const std::exception& e) {
      plugin = Status(StatusCode::kInvalidModel, std::string("exception: ") + e.what());
    }
    if (!plugin.ok() || !*plugin)
      return invalid_model("{}: {} could not deserialize its state from the plan: {}", n.describe(), b->describe(),
                           plugin.ok() ? "null plugin" : plugin.status().message());
    b->plugin = std::shared_ptr<const Plugin>(std::move(*plugin));
    n.plugin = std::move(b);
    return Status::Ok();
  }

  Status read_graph(const fb::Graph& fg, Graph& g, std::vector<LayerChoice>* layers) {
    g.name = str(fg.name());
    if (fg.values())
      for (const auto* fv : *fg.values()) {
        TensorType type;
        type.dtype = static_cast<DType>(fv->dtype());
        if (fv->has_rank()) {
          std::vector<Dim> dims;
          if (fv->dims())
            for (const auto* d : *fv->dims()) {
              Dim dim(d->value());
              if (d->symbol()) dim.symbol = d->symbol()->str();
              dims.push_back(dim);
            }
          type.shape = Shape(std::move(dims));
        }
        Value* v = g.add_value(str(fv->name()), type);
        if (fv->constant()) {
          KILN_ASSIGN_OR_RETURN(Tensor t, read_tensor(fv->constant()));
          v->constant = std::move(t);
        }
      }
    if (fg.nodes())
      for (const auto* fn : *fg.nodes()) {
        std::vector<Value*> ins, outs;
        if (fn->inputs())
          for (const auto* s : *fn->inputs()) {
            if (s->size() == 0) { ins.push_back(nullptr); continue; }
            KILN_ASSIGN_OR_RETURN(Value* v, lookup(g, s));
            ins.push_back(v);
          }
        if (fn->outputs())
          for (const auto* s : *fn->outputs()) {
            if (s->size() == 0) { outs.push_back(nullptr); continue; }
            KILN_ASSIGN_OR_RETURN(Value* v, lookup(g, s));
            outs.push_back(v);
          }
        Node* n = g.add_node(str(fn->op_type()), ins, outs, str(fn->name()), str(fn->domain()), fn->opset());
        if (fn->attributes())
          for (const auto* a : *fn->attributes()) KILN_RETURN_IF_ERROR(read_attr(*a, *n, g));
        if (fn->plugin_name()) KILN_RETURN_IF_ERROR(read_plugin(*fn, *n));
        if (layers) layers->push_back({str(fn->tactic()), str(fn->precision())});
      }
    if (fg.inputs())
      for (const auto* s : *fg.inputs()) {
        KILN_ASSIGN_OR_RETURN(Value* v, lookup(g, s));
        g.inputs.push_back(v);
      }
    if (fg.outputs())
      for (const auto* s : *fg.outputs()) {
        KILN_ASSIGN_OR_RETURN(Value* v, lookup(g, s));
        g.outputs.push_back(v);
      }
    return Status::Ok();
  }

  std::shared_ptr<MappedFile> file_;
  Header h_;
};

}  // namespace

Expected<Plan> load_plan(const std::string& path) {
  KILN_ASSIGN_OR_RETURN(auto file, MappedFile::open(path));
  const uint64_t size = file->size();
  if (size < sizeof(Header) || std::memcmp(file->data(), kMagic, sizeof(kMagic)) != 0) {
    if (size >= sizeof(kMagic) && std::memcmp(file->data(), kMagic, sizeof(kMagic)) == 0)
      return invalid_model("{}: truncated plan ({} bytes, shorter than its header)", path, size);
    return invalid_model("{}: not a kiln plan (bad magic{})", path,
                         size < sizeof(kMagic) ? ", file too short" : "");
  }
  Header h;
  std::memcpy(&h, file->data(), sizeof(Header));
  if (h.format_version != kPlanFormatVersion)
    return unsupported("{}: plan format version {}, but this kiln ({}) reads version {}: rebuild the plan with "
                       "this kiln",
                       path, h.format_version, kiln_version(), kPlanFormatVersion);
  if (h.header_size != sizeof(Header) || h.flatbuffer_offset != sizeof(Header))
    return invalid_model("{}: corrupt plan header", path);
  uint64_t expected = h.weights_offset + h.weights_size;
  if (h.weights_offset < h.flatbuffer_offset + h.flatbuffer_size || expected < h.weights_offset)
    return invalid_model("{}: corrupt plan header", path);
  if (size < expected)
    return invalid_model("{}: truncated plan: {} bytes, expected {}", path, size, expected);
  uLong crc = crc32_z(0L, Z_NULL, 0);
  crc = crc32_z(crc, file->data() + sizeof(Header), expected - sizeof(Header));
  if (static_cast<uint32_t>(crc) != h.crc32)
    return invalid_model("{}: corrupt plan (checksum mismatch)", path);
  const uint8_t* fbuf = file->data() + h.flatbuffer_offset;
  flatbuffers::Verifier verifier(fbuf, h.flatbuffer_size);
  if (!fb::VerifyPlanBuffer(verifier)) return invalid_model("{}: corrupt plan (its table does not verify)", path);
  Reader reader(file, h);
  return reader.read(*fb::GetPlan(fbuf));
}

}  // namespace kiln
