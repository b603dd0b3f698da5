#include "onnx/graph_import.hpp"

#include <set>

#include "onnx/proto_tensor.hpp"
#include "util/error.hpp"

namespace kiln::onnx_import {

namespace {

using onnx::AttributeProto;

std::string describe_node(const std::string& name, const std::string& domain, const std::string& op,
                          int64_t opset) {
  std::string full = domain.empty() ? op : domain + "." + op;
  return fmt::format("node '{}' ({}, opset {})", name, full, opset);
}

const char* attr_type_name(int t) {
  switch (t) {
    case AttributeProto::FLOAT: return "FLOAT";
    case AttributeProto::INT: return "INT";
    case AttributeProto::STRING: return "STRING";
    case AttributeProto::TENSOR: return "TENSOR";
    case AttributeProto::GRAPH: return "GRAPH";
    case AttributeProto::SPARSE_TENSOR: return "SPARSE_TENSOR";
    case AttributeProto::TYPE_PROTO: return "TYPE_PROTO";
    case AttributeProto::FLOATS: return "FLOATS";
    case AttributeProto::INTS: return "INTS";
    case AttributeProto::STRINGS: return "STRINGS";
    case AttributeProto::TENSORS: return "TENSORS";
    case AttributeProto::GRAPHS: return "GRAPHS";
    case AttributeProto::SPARSE_TENSORS: return "SPARSE_TENSORS";
    case AttributeProto::TYPE_PROTOS: return "TYPE_PROTOS";
    default: return "UNDEFINED";
  }
}

// Models from before IR version 2 may leave AttributeProto.type unset: deduce it from the field set.
int attribute_type(const AttributeProto& a) {
  if (a.type() != AttributeProto::UNDEFINED) return a.type();
  if (a.has_f()) return AttributeProto::FLOAT;
  if (a.has_i()) return AttributeProto::INT;
  if (a.has_s()) return AttributeProto::STRING;
  if (a.has_t()) return AttributeProto::TENSOR;
  if (a.has_g()) return AttributeProto::GRAPH;
  if (a.floats_size()) return AttributeProto::FLOATS;
  if (a.ints_size()) return AttributeProto::INTS;
  if (a.strings_size()) return AttributeProto::STRINGS;
  if (a.tensors_size()) return AttributeProto::TENSORS;
  if (a.graphs_size()) return AttributeProto::GRAPHS;
  return AttributeProto::UNDEFINED;
}

class GraphImporter {
 public:
  explicit GraphImporter(const ImportContext& ctx) : ctx_(ctx) {}

  Status import(const onnx::GraphProto& proto, Graph& g);

 private:
  struct NodeInfo {
    std::string name, domain, desc;
    int64_t opset = 0;
  };
  // A value's declared type; `strict` turns a type kiln cannot represent (a map, ...) into an error
  // (graph inputs/outputs).
  Expected<TensorType> declared_type(const onnx::ValueInfoProto& vi, const std::string& what, bool strict);
  Expected<AttrValue> attribute(const AttributeProto& a, Graph& g, const NodeInfo& node);
  Expected<Tensor> attribute_tensor(const onnx::TensorProto& t, const NodeInfo& node, const std::string& attr);
  Expected<GraphPtr> subgraph(const onnx::GraphProto& p, Graph& g, const NodeInfo& node, const std::string& attr);
  Status constant_node(const onnx::NodeProto& n, Graph& g, const NodeInfo& node);
  Status define(const std::string& name, const std::string& by);

  const ImportContext& ctx_;
  std::map<std::string, std::string> defined_;  // names defined in the graph being imported -> by what
};

Status GraphImporter::define(const std::string& name, const std::string& by) {
  auto [it, inserted] = defined_.emplace(name, by);
  if (!inserted) return invalid_model("value '{}' is defined twice: by {} and by {}", name, it->second, by);
  return Status::Ok();
}

Expected<TensorType> GraphImporter::declared_type(const onnx::ValueInfoProto& vi, const std::string& what,
                                                  bool strict) {
  if (!vi.has_type()) return TensorType{};
  auto t = type_from_proto(vi.type(), what);
  if (!t && !strict) return TensorType{};  // an intermediate value kiln cannot type: left unknown
  return t;
}

Expected<Tensor> GraphImporter::attribute_tensor(const onnx::TensorProto& t, const NodeInfo& node,
                                                 const std::string& attr) {
  TensorSource src{ctx_.base_dir, fmt::format("{}: attribute '{}'", node.desc, attr)};
  return tensor_from_proto(t, src);
}

Expected<GraphPtr> GraphImporter::subgraph(const onnx::GraphProto& p, Graph& g, const NodeInfo& node,
                                           const std::string& attr) {
  auto sg = std::make_shared<Graph>();
  sg->parent = &g;
  // A fresh importer: names are scoped per graph.
  GraphImporter sub(ctx_);
  Status st = sub.import(p, *sg);
  if (!st.ok()) return st.add_context(fmt::format("in subgraph '{}' of {}", attr, node.desc));
  return sg;
}

Expected<AttrValue> GraphImporter::attribute(const AttributeProto& a, Graph& g, const NodeInfo& node) {
  const int type = attribute_type(a);
  switch (type) {
    case AttributeProto::FLOAT: return AttrValue(a.f());
    case AttributeProto::INT: return AttrValue(static_cast<int64_t>(a.i()));
    case AttributeProto::STRING: return AttrValue(a.s());
    case AttributeProto::FLOATS: return AttrValue(std::vector<float>(a.floats().begin(), a.floats().end()));
    case AttributeProto::INTS: return AttrValue(std::vector<int64_t>(a.ints().begin(), a.ints().end()));
    case AttributeProto::STRINGS:
      return AttrValue(std::vector<std::string>(a.strings().begin(), a.strings().end()));
    case AttributeProto::TENSOR: {
      KILN_ASSIGN_OR_RETURN(Tensor t, attribute_tensor(a.t(), node, a.name()));
      return AttrValue(std::move(t));
    }
    case AttributeProto::TENSORS: {
      std::vector<Tensor> ts;
      for (const auto& tp : a.tensors()) {
        KILN_ASSIGN_OR_RETURN(Tensor t, attribute_tensor(tp, node, a.name()));
        ts.push_back(std::move(t));
      }
      return AttrValue(std::move(ts));
    }
    case AttributeProto::GRAPH: {
      KILN_ASSIGN_OR_RETURN(GraphPtr sg, subgraph(a.g(), g, node, a.name()));
      return AttrValue(std::move(sg));
    }
    case AttributeProto::GRAPHS: {
      std::vector<GraphPtr> gs;
      for (const auto& gp : a.graphs()) {
        KILN_ASSIGN_OR_RETURN(GraphPtr sg, subgraph(gp, g, node, a.name()));
        gs.push_back(std::move(sg));
      }
      return AttrValue(std::move(gs));
    }
    case AttributeProto::TYPE_PROTO: {
      // Kept as ints [ValueKind, ONNX elem type] (Optional's 'type'); element shapes are dropped.
      KILN_ASSIGN_OR_RETURN(TensorType t, type_from_proto(a.tp(), fmt::format("{}: attribute '{}'", node.desc, a.name())));
      const int64_t elem = a.tp().has_tensor_type() ? a.tp().tensor_type().elem_type()
                           : a.tp().has_sequence_type() ? a.tp().sequence_type().elem_type().tensor_type().elem_type()
                           : 0;
      return AttrValue(std::vector<int64_t>{static_cast<int64_t>(t.kind), elem});
    }
    case AttributeProto::SPARSE_TENSOR:
    case AttributeProto::SPARSE_TENSORS:
    case AttributeProto::TYPE_PROTOS:
      return unsupported("{}: attribute '{}' of type {} is not supported by kiln", node.desc, a.name(),
                         attr_type_name(type));
    default:
      return invalid_model("{}: attribute '{}' has an unknown type ({})", node.desc, a.name(),
                           static_cast<int>(a.type()));
  }
}

// Constant nodes become constant values (initializers) of the graph.
Status GraphImporter::constant_node(const onnx::NodeProto& n, Graph& g, const NodeInfo& node) {
  if (n.output_size() != 1 || n.output(0).empty())
    return invalid_model("{}: a Constant has exactly one output", node.desc);
  if (n.attribute_size() != 1)
    return invalid_model("{}: a Constant needs exactly one of value, value_float(s), value_int(s), "
                         "value_string(s), sparse_value; it has {} attributes",
                         node.desc, n.attribute_size());
  const AttributeProto& a = n.attribute(0);
  const std::string& out = n.output(0);
  KILN_RETURN_IF_ERROR(define(out, node.desc));
  Tensor t;
  if (a.name() == "value") {
    KILN_ASSIGN_OR_RETURN(t, attribute_tensor(a.t(), node, a.name()));
  } else if (a.name() == "value_float") {
    t = Tensor::scalar<float>(a.f());
  } else if (a.name() == "value_floats") {
    t = Tensor::from_vector<float>({a.floats_size()}, {a.floats().begin(), a.floats().end()});
  } else if (a.name() == "value_int") {
    t = Tensor::scalar<int64_t>(a.i());
  } else if (a.name() == "value_ints") {
    t = Tensor::from_vector<int64_t>({a.ints_size()}, {a.ints().begin(), a.ints().end()});
  } else if (a.name() == "value_string") {
    t = Tensor(DType::kString, {});
    *t.data<std::string>() = a.s();
  } else if (a.name() == "value_strings") {
    t = Tensor(DType::kString, {a.strings_size()});
    std::copy(a.strings().begin(), a.strings().end(), t.data<std::string>());
  } else if (a.name() == "sparse_value") {
    return unsupported("{}: sparse constants (sparse_value) are not supported by kiln", node.desc);
  } else {
    return invalid_model("{}: unknown Constant attribute '{}'", node.desc, a.name());
  }
  g.add_constant(out, std::move(t));
  return Status::Ok();
}

Status GraphImporter::import(const onnx::GraphProto& proto, Graph& g) {
  g.name = proto.name();
  std::map<std::string, const onnx::ValueInfoProto*> value_info;
  for (const auto& vi : proto.value_info()) value_info[vi.name()] = &vi;
  for (const auto& vi : proto.output()) value_info[vi.name()] = &vi;  // outputs' types win

  if (proto.sparse_initializer_size() > 0)
    return unsupported("sparse initializer '{}' is not supported by kiln",
                       proto.sparse_initializer(0).values().name());
  for (const auto& init : proto.initializer()) {
    const std::string& name = init.name();
    if (name.empty()) return invalid_model("an initializer has no name");
    KILN_RETURN_IF_ERROR(define(name, "an initializer"));
    TensorSource src{ctx_.base_dir, fmt::format("initializer '{}'", name)};
    KILN_ASSIGN_OR_RETURN(Tensor t, tensor_from_proto(init, src));
    g.add_constant(name, std::move(t));
  }

  for (const auto& in : proto.input()) {
    const std::string& name = in.name();
    if (name.empty()) return invalid_model("graph '{}' has an input without a name", g.name);
    auto prev = defined_.find(name);
    if (prev != defined_.end() && prev->second == "an initializer") continue;  // a constant, not a runtime input
    KILN_RETURN_IF_ERROR(define(name, "a graph input"));
    KILN_ASSIGN_OR_RETURN(TensorType type, declared_type(in, fmt::format("graph input '{}'", name), true));
    g.inputs.push_back(g.add_value(name, type));
  }

  // Pass 1: names and declared types of every node output, so that nodes and subgraphs may refer
  // to values defined later in the file (the order is fixed by the topological sort).
  std::vector<NodeInfo> infos(static_cast<size_t>(proto.node_size()));
  std::set<std::string> proto_names;
  for (const auto& n : proto.node()) proto_names.insert(n.name());
  for (int i = 0; i < proto.node_size(); ++i) {
    const onnx::NodeProto& n = proto.node(i);
    NodeInfo& info = infos[static_cast<size_t>(i)];
    info.domain = canonical_domain(n.domain());
    auto op = ctx_.opsets.find(info.domain);
    info.opset = op == ctx_.opsets.end() ? 0 : op->second;
    info.name = n.name();
    if (info.name.empty()) {  // a stable name for messages: "<op>_<index>"
      info.name = fmt::format("{}_{}", n.op_type(), i);
      while (proto_names.count(info.name)) info.name += "_";
      proto_names.insert(info.name);
    }
    info.desc = describe_node(info.name, info.domain, n.op_type(), info.opset);
    if (n.op_type().empty()) return invalid_model("{}: node has no op_type", info.desc);
    if (info.domain.empty() && n.op_type() == "Constant") {
      KILN_RETURN_IF_ERROR(constant_node(n, g, info));
      continue;
    }
    for (const auto& out : n.output()) {
      if (out.empty()) continue;
      KILN_RETURN_IF_ERROR(define(out, info.desc));
      TensorType type;
      if (auto it = value_info.find(out); it != value_info.end()) {
        KILN_ASSIGN_OR_RETURN(type, declared_type(*it->second, fmt::format("value '{}'", out), false));
      }
      g.add_value(out, type);
    }
  }

  // Pass 2: the nodes, with inputs resolved here or in enclosing graphs.
  for (int i = 0; i < proto.node_size(); ++i) {
    const onnx::NodeProto& n = proto.node(i);
    const NodeInfo& info = infos[static_cast<size_t>(i)];
    if (info.domain.empty() && n.op_type() == "Constant") continue;
    std::vector<Value*> inputs, outputs;
    for (const auto& name : n.input()) {
      if (name.empty()) {
        inputs.push_back(nullptr);  // an absent optional input
        continue;
      }
      Value* v = g.find_value(name);
      if (!v)
        return invalid_model("{}: input '{}' is not defined by any node, initializer or graph input",
                             info.desc, name);
      inputs.push_back(v);
    }
    for (const auto& name : n.output()) outputs.push_back(name.empty() ? nullptr : g.find_value(name));
    // Trailing absent outputs carry no information, except for Split, whose output count is the
    // number of parts.
    if (!(info.domain.empty() && n.op_type() == "Split"))
      while (!outputs.empty() && !outputs.back()) outputs.pop_back();
    Attributes attrs;
    for (const auto& a : n.attribute()) {
      if (a.name().empty()) return invalid_model("{}: an attribute has no name", info.desc);
      auto v = attribute(a, g, info);
      if (!v) {
        // No kiln kernel reads attributes of other domains' ops; they are reported unsupported later.
        if (!info.domain.empty() && v.status().code() == StatusCode::kUnsupported) continue;
        return v.status();
      }
      attrs.set(a.name(), std::move(*v));
    }
    Node* node = g.add_node(n.op_type(), std::move(inputs), std::move(outputs), info.name, info.domain,
                            static_cast<int>(info.opset));
    node->attrs = std::move(attrs);
  }

  for (const auto& out : proto.output()) {
    const std::string& name = out.name();
    if (name.empty()) return invalid_model("graph '{}' has an output without a name", g.name);
    Value* v = g.find_value(name);
    if (!v) return invalid_model("graph output '{}' is not produced by any node, initializer or input", name);
    KILN_ASSIGN_OR_RETURN(TensorType decl, declared_type(out, fmt::format("graph output '{}'", name), true));
    if (v->owner != &g) {
      // A subgraph output that is an enclosing graph's value: an Identity keeps outputs local.
      auto def = ctx_.opsets.find("");
      const int opset = def == ctx_.opsets.end() ? 0 : static_cast<int>(def->second);
      std::string local_name = name + "__kiln_outer";
      while (g.find_value(local_name)) local_name += "_";
      Value* local = g.add_value(local_name, decl);
      g.add_node("Identity", {v}, {local}, local_name + "_identity", "", opset);
      v = local;
    } else if (!v->is_constant()) {
      if (v->type.dtype == DType::kUndefined) v->type.dtype = decl.dtype;
      if (!v->type.shape.has_rank()) v->type.shape = decl.shape;
    }
    g.outputs.push_back(v);
  }
  return g.topological_sort();
}

}  // namespace

Status import_graph(const onnx::GraphProto& proto, Graph& g, const ImportContext& ctx) {
  GraphImporter importer(ctx);
  return importer.import(proto, g);
}

}  // namespace kiln::onnx_import
