// Helpers for importer tests: build ONNX ModelProtos in C++ and import them.
#pragma once

#include <gtest/gtest.h>
#include <onnx/onnx_pb.h>

#include <string>
#include <variant>
#include <vector>

#include "onnx/importer.hpp"

namespace kiln::test {

// A model with the default-domain opset `opset`.
inline onnx::ModelProto make_model(int64_t opset, int64_t ir_version = 8) {
  onnx::ModelProto m;
  m.set_ir_version(ir_version);
  m.set_producer_name("kiln-test");
  auto* op = m.add_opset_import();
  op->set_domain("");
  op->set_version(opset);
  m.mutable_graph()->set_name("g");
  return m;
}

// A dimension: a size, a symbol ("batch"), or unknown (Dim{}).
struct D {
  std::variant<std::monostate, int64_t, std::string> v;
  D() = default;
  D(int64_t x) : v(x) {}      // NOLINT(implicit)
  D(int x) : v(int64_t{x}) {}  // NOLINT(implicit)
  D(const char* s) : v(std::string(s)) {}  // NOLINT(implicit)
};

inline void set_type(onnx::ValueInfoProto* vi, int32_t elem_type, const std::vector<D>* dims) {
  auto* tt = vi->mutable_type()->mutable_tensor_type();
  tt->set_elem_type(elem_type);
  if (!dims) return;  // unknown rank
  auto* shape = tt->mutable_shape();
  for (const D& d : *dims) {
    auto* dim = shape->add_dim();
    if (auto* i = std::get_if<int64_t>(&d.v)) dim->set_dim_value(*i);
    if (auto* s = std::get_if<std::string>(&d.v)) dim->set_dim_param(*s);
  }
}

inline onnx::ValueInfoProto* add_input(onnx::GraphProto* g, const std::string& name, int32_t elem_type,
                                       std::vector<D> dims) {
  auto* vi = g->add_input();
  vi->set_name(name);
  set_type(vi, elem_type, &dims);
  return vi;
}
inline onnx::ValueInfoProto* add_output(onnx::GraphProto* g, const std::string& name, int32_t elem_type = 0,
                                        const std::vector<D>* dims = nullptr) {
  auto* vi = g->add_output();
  vi->set_name(name);
  if (elem_type) set_type(vi, elem_type, dims);
  return vi;
}
inline onnx::ValueInfoProto* add_value_info(onnx::GraphProto* g, const std::string& name, int32_t elem_type,
                                            std::vector<D> dims) {
  auto* vi = g->add_value_info();
  vi->set_name(name);
  set_type(vi, elem_type, &dims);
  return vi;
}

inline onnx::NodeProto* add_node(onnx::GraphProto* g, const std::string& op, std::vector<std::string> ins,
                                 std::vector<std::string> outs, const std::string& name = "") {
  auto* n = g->add_node();
  n->set_op_type(op);
  n->set_name(name);
  for (auto& i : ins) n->add_input(i);
  for (auto& o : outs) n->add_output(o);
  return n;
}

inline onnx::AttributeProto* add_attr(onnx::NodeProto* n, const std::string& name,
                                      onnx::AttributeProto::AttributeType type) {
  auto* a = n->add_attribute();
  a->set_name(name);
  a->set_type(type);
  return a;
}
inline void attr_i(onnx::NodeProto* n, const std::string& name, int64_t v) {
  add_attr(n, name, onnx::AttributeProto::INT)->set_i(v);
}
inline void attr_f(onnx::NodeProto* n, const std::string& name, float v) {
  add_attr(n, name, onnx::AttributeProto::FLOAT)->set_f(v);
}
inline void attr_s(onnx::NodeProto* n, const std::string& name, const std::string& v) {
  add_attr(n, name, onnx::AttributeProto::STRING)->set_s(v);
}
inline void attr_ints(onnx::NodeProto* n, const std::string& name, std::vector<int64_t> v) {
  auto* a = add_attr(n, name, onnx::AttributeProto::INTS);
  for (int64_t x : v) a->add_ints(x);
}
inline void attr_floats(onnx::NodeProto* n, const std::string& name, std::vector<float> v) {
  auto* a = add_attr(n, name, onnx::AttributeProto::FLOATS);
  for (float x : v) a->add_floats(x);
}

// A float tensor in float_data (raw = false) or raw_data.
inline onnx::TensorProto float_tensor(const std::string& name, std::vector<int64_t> dims, std::vector<float> v,
                                      bool raw = false) {
  onnx::TensorProto t;
  t.set_name(name);
  t.set_data_type(onnx::TensorProto::FLOAT);
  for (int64_t d : dims) t.add_dims(d);
  if (raw) t.set_raw_data(std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(float)));
  else for (float x : v) t.add_float_data(x);
  return t;
}
inline onnx::TensorProto int64_tensor(const std::string& name, std::vector<int64_t> dims, std::vector<int64_t> v) {
  onnx::TensorProto t;
  t.set_name(name);
  t.set_data_type(onnx::TensorProto::INT64);
  for (int64_t d : dims) t.add_dims(d);
  for (int64_t x : v) t.add_int64_data(x);
  return t;
}

// Serializes and imports `m` as "test.onnx" (external data relative to `dir`).
inline Expected<Model> import_proto(const onnx::ModelProto& m, const ImportOptions& options = {},
                                    const std::string& dir = ".") {
  std::string bytes;
  m.SerializeToString(&bytes);
  return import_onnx_bytes(bytes, dir, "test.onnx", options);
}

// The node of `g` named `name`, or null.
inline const Node* find_node(const Graph& g, const std::string& name) {
  for (const auto& n : g.nodes())
    if (n->name == name) return n.get();
  return nullptr;
}

inline ::testing::AssertionResult error_contains(const Status& st, StatusCode code,
                                                 std::vector<std::string> parts) {
  if (st.ok()) return ::testing::AssertionFailure() << "expected an error, got OK";
  if (st.code() != code)
    return ::testing::AssertionFailure() << "wrong code: " << st.to_string();
  for (const auto& p : parts)
    if (st.message().find(p) == std::string::npos)
      return ::testing::AssertionFailure() << "'" << p << "' not in: " << st.message();
  return ::testing::AssertionSuccess();
}

}  // namespace kiln::test
