#include "onnx/importer.hpp"

#include <onnx/onnx-data_pb.h>
#include <onnx/onnx_pb.h>

#include <filesystem>
#include <functional>
#include <fstream>
#include <sstream>

#include "onnx/functions.hpp"
#include "onnx/graph_import.hpp"
#include "onnx/normalize.hpp"
#include "onnx/proto_tensor.hpp"
#include "ops/shape_inference.hpp"
#include "util/error.hpp"

namespace kiln {

namespace {

using onnx_import::canonical_domain;

// The newest IR version and default-domain opset kiln understands. IR 11 (ONNX 1.18) adds only
// element types, refused where used; current exporters write it whatever opset they target.
constexpr int64_t kMaxIrVersion = 11;
constexpr int64_t kMaxOpset = 21;

Expected<std::string> read_file(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return not_found("{}: no such file", path);
  if (std::filesystem::is_directory(path, ec)) return invalid_argument("{}: is a directory, not a file", path);
  std::ifstream in(path, std::ios::binary);
  if (!in) return io_error("{}: cannot open for reading", path);
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) return io_error("{}: read failed", path);
  return ss.str();
}

Status import_model(onnx::ModelProto& proto, const std::string& base_dir, const std::string& name,
                    const ImportOptions& options, Model& model) {
  if (!proto.has_ir_version() || proto.ir_version() <= 0)
    return invalid_model("not an ONNX model (no IR version)");
  if (proto.ir_version() > kMaxIrVersion)
    return unsupported("IR version {} is newer than kiln supports (up to {})", proto.ir_version(),
                       kMaxIrVersion);
  if (!proto.has_graph()) return invalid_model("the model has no graph");
  model.ir_version = proto.ir_version();
  model.producer_name = proto.producer_name();
  model.producer_version = proto.producer_version();
  model.path = name;
  KILN_RETURN_IF_ERROR(onnx_import::inline_functions(proto));

  for (const auto& op : proto.opset_import()) {
    std::string domain = canonical_domain(op.domain());
    if (model.opset_imports.count(domain))
      return invalid_model("opset_import lists domain '{}' twice", domain.empty() ? "ai.onnx" : domain);
    model.opset_imports[domain] = op.version();
  }
  // IR version 1 and 2 predate opset_import: they mean opset 1 of the default domain.
  if (proto.opset_import_size() == 0 && proto.ir_version() < 3) model.opset_imports[""] = 1;
  bool uses_default = false;
  std::function<void(const onnx::GraphProto&)> scan = [&](const onnx::GraphProto& g) {
    for (const auto& n : g.node()) {
      if (canonical_domain(n.domain()).empty()) uses_default = true;
      for (const auto& a : n.attribute()) {
        if (a.has_g()) scan(a.g());
        for (const auto& sg : a.graphs()) scan(sg);
      }
    }
  };
  scan(proto.graph());
  auto def = model.opset_imports.find("");
  if (def != model.opset_imports.end()) {
    if (def->second > kMaxOpset)
      return unsupported("opset {} of the default domain is newer than kiln supports (1 to {})", def->second,
                         kMaxOpset);
    if (def->second < 1) return invalid_model("opset {} of the default domain is invalid", def->second);
  } else if (uses_default) {
    return invalid_model("nodes use the default ONNX domain, but opset_import does not list it");
  }

  onnx_import::ImportContext ctx{name, base_dir, model.opset_imports};
  model.graph = std::make_shared<Graph>();
  KILN_RETURN_IF_ERROR(onnx_import::import_graph(proto.graph(), *model.graph, ctx));
  KILN_RETURN_IF_ERROR(onnx_import::normalize_opsets(*model.graph));
  if (options.infer_shapes) KILN_RETURN_IF_ERROR(infer_shapes(*model.graph));
  return Status::Ok();
}

}  // namespace

namespace {

Status parse_model(const std::string& bytes, const std::string& name, onnx::ModelProto& proto) {
  if (bytes.empty()) return invalid_model("{}: empty file, not an ONNX model", name);
  if (!proto.ParseFromString(bytes))
    return invalid_model("{}: not an ONNX model, or truncated (the protobuf does not parse; {} bytes)", name,
                         bytes.size());
  return Status::Ok();
}

Expected<Model> import_parsed(onnx::ModelProto& proto, const std::string& base_dir, const std::string& name,
                              const ImportOptions& options) {
  Model model;
  Status st = import_model(proto, base_dir, name, options, model);
  if (!st.ok()) return st.add_context(name);
  return model;
}

}  // namespace

Expected<Model> import_onnx_bytes(const std::string& bytes, const std::string& base_dir,
                                  const std::string& name, const ImportOptions& options) {
  onnx::ModelProto proto;
  KILN_RETURN_IF_ERROR(parse_model(bytes, name, proto));
  return import_parsed(proto, base_dir, name, options);
}

Expected<Model> import_onnx_file(const std::string& path, const ImportOptions& options) {
  onnx::ModelProto proto;
  {
    // The file's bytes are freed before the weights are copied out of the parsed proto.
    KILN_ASSIGN_OR_RETURN(std::string bytes, read_file(path));
    KILN_RETURN_IF_ERROR(parse_model(bytes, path, proto));
  }
  std::string dir = std::filesystem::path(path).parent_path().string();
  return import_parsed(proto, dir.empty() ? "." : dir, path, options);
}

Expected<Tensor> load_tensor_pb(const std::string& path, std::string* name) {
  KILN_ASSIGN_OR_RETURN(std::string bytes, read_file(path));
  if (bytes.empty()) return invalid_argument("{}: empty file, not a TensorProto", path);
  onnx::TensorProto proto;
  const bool parsed = proto.ParseFromString(bytes);
  Status tensor_error = invalid_argument("{}: not a serialized TensorProto", path);
  if (parsed && proto.data_type() != onnx::TensorProto::UNDEFINED && !proto.has_segment()) {
    std::string dir = std::filesystem::path(path).parent_path().string();
    auto t = onnx_import::tensor_from_proto(proto, {dir.empty() ? "." : dir, path});
    if (t.ok()) {
      if (name) *name = proto.name();
      return t;
    }
    tensor_error = t.status();
  }
  // A SequenceProto or OptionalProto also parses as a TensorProto (its name read as dims, its
  // elements as `segment` or typed data), so test it only when the bytes are no valid tensor.
  onnx::SequenceProto seq;
  if (seq.ParseFromString(bytes) && seq.has_elem_type() && seq.has_name() && !seq.name().empty())
    return unsupported("{}: holds a sequence or optional value '{}', not a tensor (see load_value_pb)", path,
                       seq.name());
  return tensor_error;
}

namespace {

Expected<TensorSequence> sequence_from_proto(const onnx::SequenceProto& p, DType declared, const std::string& path) {
  if (p.elem_type() != onnx::SequenceProto::TENSOR && p.elem_type() != onnx::SequenceProto::UNDEFINED)
    return unsupported("{}: a sequence of non-tensors (elem_type {}); kiln supports sequences of tensors only",
                       path, static_cast<int>(p.elem_type()));
  std::string dir = std::filesystem::path(path).parent_path().string();
  TensorSequence s{declared, {}};
  for (int i = 0; i < p.tensor_values_size(); ++i) {
    KILN_ASSIGN_OR_RETURN(Tensor t, onnx_import::tensor_from_proto(p.tensor_values(i),
                                                                   {dir.empty() ? "." : dir, path}));
    if (s.dtype == DType::kUndefined) s.dtype = t.dtype();
    s.tensors.push_back(std::move(t));
  }
  return s;
}

}  // namespace

Expected<RuntimeValue> load_value_pb(const std::string& path, const TensorType& declared) {
  if (declared.is_tensor()) {
    KILN_ASSIGN_OR_RETURN(Tensor t, load_tensor_pb(path));
    return RuntimeValue(std::move(t));
  }
  KILN_ASSIGN_OR_RETURN(std::string bytes, read_file(path));
  if (declared.kind == ValueKind::kSequence) {
    onnx::SequenceProto seq;
    if (!seq.ParseFromString(bytes)) return invalid_argument("{}: not a serialized SequenceProto", path);
    KILN_ASSIGN_OR_RETURN(TensorSequence s, sequence_from_proto(seq, declared.dtype, path));
    return RuntimeValue(std::move(s));
  }
  onnx::OptionalProto opt;
  if (!opt.ParseFromString(bytes)) return invalid_argument("{}: not a serialized OptionalProto", path);
  std::string dir = std::filesystem::path(path).parent_path().string();
  switch (opt.elem_type()) {
    case onnx::OptionalProto::UNDEFINED: return RuntimeValue(EmptyOptional{});
    case onnx::OptionalProto::TENSOR: {
      KILN_ASSIGN_OR_RETURN(Tensor t, onnx_import::tensor_from_proto(opt.tensor_value(), {dir.empty() ? "." : dir, path}));
      return RuntimeValue(std::move(t));
    }
    case onnx::OptionalProto::SEQUENCE: {
      KILN_ASSIGN_OR_RETURN(TensorSequence s, sequence_from_proto(opt.sequence_value(), declared.dtype, path));
      return RuntimeValue(std::move(s));
    }
    default:
      return unsupported("{}: an optional of elem_type {}; kiln supports optional tensors and sequences", path,
                         static_cast<int>(opt.elem_type()));
  }
}

}  // namespace kiln
