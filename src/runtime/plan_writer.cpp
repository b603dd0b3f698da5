// Plan -> bytes: header, FlatBuffers table, aligned weights.
#include <zlib.h>

#include <cstring>
#include <map>

#include "io/file.hpp"
#include "plugin/plugin_node.hpp"
#include "plan_generated.h"
#include "runtime/plan.hpp"
#include "runtime/plan_header.hpp"
#include "util/error.hpp"

namespace kiln {

namespace {

using flatbuffers::FlatBufferBuilder;
using flatbuffers::Offset;
using namespace plan_detail;

class Writer {
 public:
  Offset<fb::Plan> write(const Plan& plan) {
    auto target = fb::CreateTarget(fbb_, fbb_.CreateString(plan.target.backend),
                                   plan.target.compute_capability,
                                   fbb_.CreateString(plan.target.device_name),
                                   plan.target.cuda_runtime_version, plan.target.cudnn_version,
                                   plan.target.cublas_version);
    auto graph = write_graph(*plan.graph, &plan.layers);
    std::vector<Offset<fb::ArenaSlot>> slots;
    for (const auto& s : plan.arena)
      slots.push_back(fb::CreateArenaSlot(fbb_, fbb_.CreateString(s.value), s.offset, s.nbytes));
    std::vector<Offset<fb::Profile>> profiles;
    for (const OptimizationProfile& p : plan.profiles) {
      std::vector<Offset<fb::ProfileInput>> ins;
      for (const auto& [name, r] : p.inputs)
        ins.push_back(fb::CreateProfileInput(fbb_, fbb_.CreateString(name), fbb_.CreateVector(r.min),
                                             fbb_.CreateVector(r.opt), fbb_.CreateVector(r.max)));
      profiles.push_back(fb::CreateProfile(fbb_, fbb_.CreateVector(ins)));
    }
    Offset<flatbuffers::Vector<Offset<fb::Profile>>> profile_vec;  // absent for static plans
    if (!profiles.empty()) profile_vec = fbb_.CreateVector(profiles);
    return fb::CreatePlan(fbb_, fbb_.CreateString(plan.kiln_version), target, graph, plan.arena_bytes,
                          plan.workspace_bytes, fbb_.CreateVector(slots), plan.build_seconds,
                          fbb_.CreateString(plan.options_json), profile_vec);
  }

  FlatBufferBuilder& fbb() { return fbb_; }
  const std::vector<Tensor>& weights() const { return weights_; }
  const std::vector<uint64_t>& weight_offsets() const { return offsets_; }
  uint64_t weights_size() const { return weights_size_; }

 private:
  Offset<fb::TensorRef> write_tensor(const Tensor& t) {
    uint64_t offset = align_up(weights_size_, kTensorAlignment);
    weights_size_ = offset + t.nbytes();
    weights_.push_back(t);
    offsets_.push_back(offset);
    return fb::CreateTensorRef(fbb_, static_cast<uint8_t>(t.dtype()), fbb_.CreateVector(t.dims()), offset,
                               t.nbytes());
  }

  Offset<fb::Attribute> write_attr(const std::string& name, const AttrValue& v) {
    auto n = fbb_.CreateString(name);
    if (auto* i = std::get_if<int64_t>(&v)) return fb::CreateAttribute(fbb_, n, fb::AttrKind_Int, *i);
    if (auto* f = std::get_if<float>(&v)) return fb::CreateAttribute(fbb_, n, fb::AttrKind_Float, 0, *f);
    if (auto* s = std::get_if<std::string>(&v))
      return fb::CreateAttribute(fbb_, n, fb::AttrKind_String, 0, 0, fbb_.CreateString(*s));
    if (auto* t = std::get_if<Tensor>(&v)) {
      auto ref = write_tensor(*t);
      return fb::CreateAttribute(fbb_, n, fb::AttrKind_Tensor, 0, 0, 0, ref);
    }
    if (auto* g = std::get_if<GraphPtr>(&v)) {
      auto sg = write_graph(**g, nullptr);
      return fb::CreateAttribute(fbb_, n, fb::AttrKind_Graph, 0, 0, 0, 0, sg);
    }
    if (auto* is = std::get_if<std::vector<int64_t>>(&v))
      return fb::CreateAttribute(fbb_, n, fb::AttrKind_Ints, 0, 0, 0, 0, 0, fbb_.CreateVector(*is));
    if (auto* fs = std::get_if<std::vector<float>>(&v))
      return fb::CreateAttribute(fbb_, n, fb::AttrKind_Floats, 0, 0, 0, 0, 0, 0, fbb_.CreateVector(*fs));
    if (auto* ss = std::get_if<std::vector<std::string>>(&v))
      return fb::CreateAttribute(fbb_, n, fb::AttrKind_Strings, 0, 0, 0, 0, 0, 0, 0,
                                 fbb_.CreateVectorOfStrings(*ss));
    if (auto* ts = std::get_if<std::vector<Tensor>>(&v)) {
      std::vector<Offset<fb::TensorRef>> refs;
      for (const auto& t : *ts) refs.push_back(write_tensor(t));
      return fb::CreateAttribute(fbb_, n, fb::AttrKind_Tensors, 0, 0, 0, 0, 0, 0, 0, 0,
                                 fbb_.CreateVector(refs));
    }
    const auto& gs = std::get<std::vector<GraphPtr>>(v);
    std::vector<Offset<fb::Graph>> graphs;
    for (const auto& g : gs) graphs.push_back(write_graph(*g, nullptr));
    return fb::CreateAttribute(fbb_, n, fb::AttrKind_Graphs, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                               fbb_.CreateVector(graphs));
  }

  Offset<fb::Graph> write_graph(const Graph& g, const std::vector<LayerChoice>* layers) {
    std::vector<Offset<fb::Value>> values;
    for (const auto& v : g.values()) {
      std::vector<Offset<fb::Dim>> dims;
      if (v->type.shape.has_rank())
        for (const Dim& d : v->type.shape.dims())
          dims.push_back(fb::CreateDim(fbb_, d.value, d.symbol.empty() ? 0 : fbb_.CreateString(d.symbol)));
      Offset<fb::TensorRef> constant = v->constant ? write_tensor(*v->constant) : 0;
      values.push_back(fb::CreateValue(fbb_, fbb_.CreateString(v->name), static_cast<uint8_t>(v->type.dtype),
                                       v->type.shape.has_rank(), fbb_.CreateVector(dims), constant));
    }
    std::vector<Offset<fb::Node>> nodes;
    for (size_t i = 0; i < g.nodes().size(); ++i) {
      const Node& n = *g.nodes()[i];
      std::vector<Offset<fb::Attribute>> attrs;
      for (const auto& [name, val] : n.attrs.all()) attrs.push_back(write_attr(name, val));
      auto names = [&](const std::vector<Value*>& vs) {
        std::vector<std::string> out;
        for (const Value* v : vs) out.push_back(v ? v->name : "");
        return fbb_.CreateVectorOfStrings(out);
      };
      auto ins = names(n.inputs);
      auto outs = names(n.outputs);
      std::string tactic, precision;
      if (layers && i < layers->size()) {
        tactic = (*layers)[i].tactic;
        precision = (*layers)[i].precision;
      }
      Offset<flatbuffers::String> plugin_name = 0, plugin_version = 0, plugin_ns = 0;
      Offset<flatbuffers::Vector<uint8_t>> plugin_data = 0;
      if (n.plugin) {
        std::string bytes = n.plugin->plugin->serialize();
        plugin_name = fbb_.CreateString(n.plugin->name);
        plugin_version = fbb_.CreateString(n.plugin->version);
        plugin_ns = fbb_.CreateString(n.plugin->plugin_namespace);
        plugin_data = fbb_.CreateVector(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
      }
      nodes.push_back(fb::CreateNode(fbb_, fbb_.CreateString(n.name), fbb_.CreateString(n.op_type),
                                     fbb_.CreateString(n.domain), n.opset, ins, outs, fbb_.CreateVector(attrs),
                                     fbb_.CreateString(tactic), fbb_.CreateString(precision), plugin_name,
                                     plugin_version, plugin_ns, plugin_data));
    }
    auto names = [&](const std::vector<Value*>& vs) {
      std::vector<std::string> out;
      for (const Value* v : vs) out.push_back(v->name);
      return fbb_.CreateVectorOfStrings(out);
    };
    auto gname = fbb_.CreateString(g.name);
    auto vals = fbb_.CreateVector(values);
    auto nds = fbb_.CreateVector(nodes);
    auto ins = names(g.inputs);
    auto outs = names(g.outputs);
    return fb::CreateGraph(fbb_, gname, vals, nds, ins, outs);
  }

  FlatBufferBuilder fbb_{1 << 16};
  std::vector<Tensor> weights_;
  std::vector<uint64_t> offsets_;
  uint64_t weights_size_ = 0;
};

}  // namespace

const char* kiln_version() { return KILN_VERSION; }

Expected<std::string> serialize_plan(const Plan& plan) {
  if (!plan.graph) return invalid_argument("the plan has no graph");
  Writer w;
  w.fbb().Finish(w.write(plan));
  // Weights are stored as bytes; string tensors have none.
  for (const Tensor& t : w.weights())
    if (t.dtype() == DType::kString)
      return unsupported("the plan holds a string tensor {}; plan files cannot store strings", t.describe());
  Header h{};
  std::memcpy(h.magic, kMagic, sizeof(kMagic));
  h.format_version = kPlanFormatVersion;
  h.header_size = sizeof(Header);
  h.flatbuffer_offset = sizeof(Header);
  h.flatbuffer_size = w.fbb().GetSize();
  h.weights_offset = align_up(h.flatbuffer_offset + h.flatbuffer_size, kWeightsAlignment);
  h.weights_size = w.weights_size();
  std::string bytes(h.weights_offset + h.weights_size, '\0');
  std::memcpy(bytes.data() + h.flatbuffer_offset, w.fbb().GetBufferPointer(), h.flatbuffer_size);
  for (size_t i = 0; i < w.weights().size(); ++i) {
    const Tensor& t = w.weights()[i];
    if (t.nbytes()) std::memcpy(bytes.data() + h.weights_offset + w.weight_offsets()[i], t.raw_data(), t.nbytes());
  }
  const auto* body = reinterpret_cast<const Bytef*>(bytes.data() + sizeof(Header));
  uLong crc = crc32_z(0L, Z_NULL, 0);
  crc = crc32_z(crc, body, bytes.size() - sizeof(Header));
  h.crc32 = static_cast<uint32_t>(crc);
  std::memcpy(bytes.data(), &h, sizeof(Header));
  return bytes;
}

Status save_plan(const Plan& plan, const std::string& path) {
  KILN_ASSIGN_OR_RETURN(std::string bytes, serialize_plan(plan));
  return write_file_atomic(path, bytes);
}

}  // namespace kiln
