#include "onnx/functions.hpp"

#include <map>
#include <set>
#include <string>
#include <vector>

#include <google/protobuf/unknown_field_set.h>

#include "onnx/graph_import.hpp"
#include "util/error.hpp"

namespace kiln::onnx_import {

namespace {

using FunctionMap = std::map<std::pair<std::string, std::string>, const onnx::FunctionProto*>;
constexpr int kMaxDepth = 64;  // nested calls deeper than this are taken for recursion

class Inliner {
 public:
  explicit Inliner(const FunctionMap& functions) : functions_(functions) {}

  // Rewrites g's nodes (and its subgraphs') with every function call expanded.
  Status graph(onnx::GraphProto& g, int depth);

 private:
  const onnx::FunctionProto* find(const onnx::NodeProto& n) const {
    auto it = functions_.find({canonical_domain(n.domain()), n.op_type()});
    return it == functions_.end() ? nullptr : it->second;
  }
  Status expand(const onnx::NodeProto& call, const onnx::FunctionProto& fn, int depth,
                google::protobuf::RepeatedPtrField<onnx::NodeProto>& out);
  Status subgraphs(onnx::NodeProto& n, int depth);

  const FunctionMap& functions_;
  std::set<std::string> prefixes_;  // one per expanded call, so body names never collide
  int calls_ = 0;
};

// FunctionProto.attribute_proto (field 11, IR version 9: attributes with default values) is newer
// than the ONNX proto kiln builds against, so it is read from the unknown fields.
std::vector<onnx::AttributeProto> attribute_defaults(const onnx::FunctionProto& fn) {
  constexpr int kAttributeProtoField = 11;
  std::vector<onnx::AttributeProto> out;
  const auto& unknown = fn.GetReflection()->GetUnknownFields(fn);
  for (int i = 0; i < unknown.field_count(); ++i) {
    const auto& f = unknown.field(i);
    if (f.number() != kAttributeProtoField || f.type() != google::protobuf::UnknownField::TYPE_LENGTH_DELIMITED)
      continue;
    onnx::AttributeProto a;
    if (a.ParseFromString(f.length_delimited())) out.push_back(std::move(a));
  }
  return out;
}

// Renames the names of `g` (a subgraph of a function body) that refer to the function's scope.
void rename_in_subgraph(onnx::GraphProto& g, const std::map<std::string, std::string>& names) {
  auto rename = [&](std::string* s) {
    auto it = names.find(*s);
    if (it != names.end()) *s = it->second;
  };
  for (auto& n : *g.mutable_node()) {
    for (auto& i : *n.mutable_input()) rename(&i);
    for (auto& a : *n.mutable_attribute()) {
      if (a.has_g()) rename_in_subgraph(*a.mutable_g(), names);
      for (auto& sg : *a.mutable_graphs()) rename_in_subgraph(sg, names);
    }
  }
  for (auto& o : *g.mutable_output()) rename(o.mutable_name());
}

Status Inliner::subgraphs(onnx::NodeProto& n, int depth) {
  for (auto& a : *n.mutable_attribute()) {
    if (a.has_g()) KILN_RETURN_IF_ERROR(graph(*a.mutable_g(), depth));
    for (auto& sg : *a.mutable_graphs()) KILN_RETURN_IF_ERROR(graph(sg, depth));
  }
  return Status::Ok();
}

Status Inliner::expand(const onnx::NodeProto& call, const onnx::FunctionProto& fn, int depth,
                       google::protobuf::RepeatedPtrField<onnx::NodeProto>& out) {
  const std::string call_name = call.name().empty() ? fmt::format("{}_call{}", fn.name(), calls_) : call.name();
  ++calls_;
  if (depth > kMaxDepth)
    return invalid_model("node '{}' ({}): function calls nest deeper than {} (recursion?)", call_name,
                         call.op_type(), kMaxDepth);
  if (call.input_size() > fn.input_size() || call.output_size() > fn.output_size())
    return invalid_model("node '{}' calls function {} with {} inputs and {} outputs; it has {} and {}", call_name,
                         fn.name(), call.input_size(), call.output_size(), fn.input_size(), fn.output_size());
  // Formal parameters map to the call's values; every other body name gets the call's prefix.
  std::map<std::string, std::string> names;
  for (int i = 0; i < fn.input_size(); ++i) names[fn.input(i)] = i < call.input_size() ? call.input(i) : "";
  for (int i = 0; i < fn.output_size(); ++i)
    if (i < call.output_size() && !call.output(i).empty()) names[fn.output(i)] = call.output(i);
  std::string prefix = call_name + "/";
  for (int i = 1; !prefixes_.insert(prefix).second; ++i) prefix = fmt::format("{}_{}/", call_name, i);
  for (const auto& bn : fn.node())
    for (const auto& o : bn.output())
      if (!o.empty() && !names.count(o)) names[o] = prefix + o;
  std::map<std::string, const onnx::AttributeProto*> actual, defaults;
  for (const auto& a : call.attribute()) actual[a.name()] = &a;
  std::vector<onnx::AttributeProto> default_storage = attribute_defaults(fn);
  for (const auto& a : default_storage) defaults[a.name()] = &a;

  for (int k = 0; k < fn.node_size(); ++k) {
    onnx::NodeProto n = fn.node(k);
    n.set_name(prefix + (n.name().empty() ? fmt::format("{}_{}", n.op_type(), k) : n.name()));
    for (auto& i : *n.mutable_input())
      if (!i.empty()) i = names.count(i) ? names[i] : i;  // unknown names: outer scope of the call
    for (auto& o : *n.mutable_output())
      if (!o.empty()) o = names[o];
    // Attributes referring to the call's (or the function's default) values.
    google::protobuf::RepeatedPtrField<onnx::AttributeProto> attrs;
    for (const auto& a : n.attribute()) {
      if (a.ref_attr_name().empty()) {
        *attrs.Add() = a;
        continue;
      }
      auto it = actual.find(a.ref_attr_name());
      const onnx::AttributeProto* src = it != actual.end() ? it->second : nullptr;
      if (!src) {
        auto d = defaults.find(a.ref_attr_name());
        if (d != defaults.end()) src = d->second;
      }
      if (!src) continue;  // neither given nor defaulted: the body op's own default applies
      onnx::AttributeProto* copy = attrs.Add();
      *copy = *src;
      copy->set_name(a.name());
    }
    *n.mutable_attribute() = attrs;
    for (auto& a : *n.mutable_attribute()) {
      if (a.has_g()) rename_in_subgraph(*a.mutable_g(), names);
      for (auto& sg : *a.mutable_graphs()) rename_in_subgraph(sg, names);
    }
    KILN_RETURN_IF_ERROR(subgraphs(n, depth + 1));
    if (const onnx::FunctionProto* inner = find(n)) {
      KILN_RETURN_IF_ERROR(expand(n, *inner, depth + 1, out));
    } else {
      *out.Add() = std::move(n);
    }
  }
  return Status::Ok();
}

Status Inliner::graph(onnx::GraphProto& g, int depth) {
  bool any = false;
  for (const auto& n : g.node()) any |= find(n) != nullptr;
  if (!any) {
    for (auto& n : *g.mutable_node()) KILN_RETURN_IF_ERROR(subgraphs(n, depth));
    return Status::Ok();
  }
  google::protobuf::RepeatedPtrField<onnx::NodeProto> out;
  for (auto& n : *g.mutable_node()) {
    KILN_RETURN_IF_ERROR(subgraphs(n, depth));
    if (const onnx::FunctionProto* fn = find(n)) {
      KILN_RETURN_IF_ERROR(expand(n, *fn, depth, out));
    } else {
      *out.Add() = std::move(n);
    }
  }
  g.mutable_node()->Swap(&out);
  return Status::Ok();
}

}  // namespace

Status inline_functions(onnx::ModelProto& model) {
  if (model.functions_size() == 0) return Status::Ok();
  FunctionMap functions;
  for (const auto& f : model.functions()) {
    if (!functions.emplace(std::pair{canonical_domain(f.domain()), f.name()}, &f).second)
      return invalid_model("function {}.{} is defined twice", f.domain(), f.name());
  }
  Inliner inliner(functions);
  return inliner.graph(*model.mutable_graph(), 0);
}

}  // namespace kiln::onnx_import
