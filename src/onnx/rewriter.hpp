// The toolbox of the opset-normalization rules (internal to the importer): new constants and
// nodes named after the node being rewritten, and the types of values as far as they are known.
#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "ir/graph.hpp"
#include "util/error.hpp"

namespace kiln::onnx_import {

// Types inferred during normalization, shared by a graph and its subgraphs.
using TypeTable = std::map<const Value*, TensorType>;

class Rewriter {
 public:
  Rewriter(Graph& g, TypeTable& types) : g_(g), inferred_(types) {}

  Graph& graph() { return g_; }

  // The type of `v` as known at import: a constant's, the declared one, or the one inferred (in a
  // side table, so the graph's declared types stay untouched) from normalized producers.
  TensorType type(const Value* v) const;
  // The constant value of `v`, or null.
  static const Tensor* constant(const Value* v) { return v && v->constant ? &*v->constant : nullptr; }

  // A fresh value or constant named "<node>/<suffix>" (made unique in the graph).
  Value* new_value(const Node& origin, const std::string& suffix);
  Value* new_constant(const Node& origin, const std::string& suffix, Tensor t);
  // A constant holding `value` in the element type of `like`; when that type is not known at
  // import, a float32 constant followed by a CastLike node (added before `origin`).
  Value* scalar_like(Node& origin, const std::string& suffix, double value, const Value* like);
  // A node computed before / after `origin` (inference visits them in that order).
  Node* add_before(Node& origin, const std::string& op, std::vector<Value*> in, std::vector<Value*> out,
                   Attributes attrs = {});
  Node* add_after(Node& origin, const std::string& op, std::vector<Value*> in, std::vector<Value*> out,
                  Attributes attrs = {});

  // Sets input i of `n`, padding absent optional inputs with null.
  static void set_input(Node& n, size_t i, Value* v);
  // Makes `v` output i of `n` (v's producer becomes n).
  static void set_output(Node& n, size_t i, Value* v);
  // Moves attribute `attr` (ints) of `n` into input `i` as an int64 1-D constant; no-op if absent.
  void ints_attr_to_input(Node& n, const std::string& attr, size_t i);

  // Runs the registered shape inference of `n` on the known input types, recording its outputs'
  // types in the side table. Ops without a schema, or failing inference, are left unknown.
  void infer(const Node& n);
  // The nodes added before/after the node being rewritten; cleared by take_*.
  std::vector<Node*> take_before() { return std::exchange(before_, {}); }
  std::vector<Node*> take_after() { return std::exchange(after_, {}); }

 private:
  Node* add(Node& origin, const std::string& op, std::vector<Value*> in, std::vector<Value*> out,
            Attributes attrs);
  std::string unique_name(const std::string& base) const;

  Graph& g_;
  TypeTable& inferred_;
  std::vector<Node*> before_, after_;
  int counter_ = 0;
};

// Tensor builders for rule constants.
Tensor int64_vector(const std::vector<int64_t>& v);
Tensor float_vector(const std::vector<float>& v);
Tensor scalar_of(DType dtype, double value);  // fails (undefined tensor) for non-numeric dtypes

}  // namespace kiln::onnx_import
