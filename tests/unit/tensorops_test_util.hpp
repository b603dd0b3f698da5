// Helpers for the tensor/shape op tests: naive index-mapping references and one-node inference.
#pragma once

#include <cstring>
#include <functional>
#include <optional>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <array>
#include <numeric>

#include "op_test_util.hpp"

namespace kiln::test {

inline Tensor i64(Dims dims, std::vector<int64_t> v) { return Tensor::from_vector<int64_t>(std::move(dims), v); }
inline Tensor i64v(std::vector<int64_t> v) {
  Dims d{static_cast<int64_t>(v.size())};
  return Tensor::from_vector<int64_t>(d, v);
}

inline std::vector<int64_t> unravel(int64_t flat, const Dims& dims) {
  std::vector<int64_t> idx(dims.size());
  for (size_t k = dims.size(); k-- > 0;) {
    idx[k] = flat % dims[k];
    flat /= dims[k];
  }
  return idx;
}
inline int64_t ravel(const std::vector<int64_t>& idx, const Dims& dims) {
  int64_t flat = 0;
  for (size_t k = 0; k < dims.size(); ++k) flat = flat * dims[k] + idx[k];
  return flat;
}

// The reference output of an element-moving op: out[i] = src[source(i)], or `fill` (bytes of one
// element of src's dtype, zeros when null) where source() gives nullopt.
using SourceFn = std::function<std::optional<std::vector<int64_t>>(const std::vector<int64_t>&)>;
inline Tensor map_tensor(const Tensor& src, const Dims& out_dims, const SourceFn& source, const void* fill = nullptr) {
  Tensor out = Tensor::zeros(src.dtype(), out_dims);
  const size_t es = dtype_size(src.dtype());
  for (int64_t i = 0; i < out.numel(); ++i) {
    auto s = source(unravel(i, out_dims));
    char* dst = static_cast<char*>(out.raw_data()) + static_cast<size_t>(i) * es;
    if (s) std::memcpy(dst, static_cast<const char*>(src.raw_data()) + static_cast<size_t>(ravel(*s, src.dims())) * es, es);
    else if (fill) std::memcpy(dst, fill, es);
  }
  return out;
}

// Same dtype, dims and bytes.
inline ::testing::AssertionResult tensors_equal(const Tensor& a, const Tensor& b) {
  if (a.dtype() != b.dtype() || a.dims() != b.dims())
    return ::testing::AssertionFailure() << a.describe() << " vs expected " << b.describe();
  if (std::memcmp(a.raw_data(), b.raw_data(), a.nbytes()) != 0) {
    auto x = a.to_double_vector(), y = b.to_double_vector();
    for (size_t i = 0; i < x.size(); ++i)
      if (x[i] != y[i]) return ::testing::AssertionFailure() << "element " << i << ": " << x[i] << " vs expected " << y[i];
    return ::testing::AssertionFailure() << "bytes differ";
  }
  return ::testing::AssertionSuccess();
}

// Runs a one-output op and returns its output; a failure is reported as a test failure.
inline Tensor run1(const OpCall& call) {
  auto r = run_op(call);
  EXPECT_TRUE(r.ok()) << r.status().message();
  return r.ok() ? r->at(0) : Tensor();
}

// Runs the op expecting an error whose message names the node and contains each of `parts`.
inline void expect_error(const OpCall& call, const std::vector<std::string>& parts) {
  auto r = run_op(call);
  ASSERT_FALSE(r.ok()) << "expected an error from " << call.op_type;
  const std::string& m = r.status().message();
  EXPECT_NE(m.find("'" + call.op_type + "_node'"), std::string::npos) << m;
  for (const auto& p : parts) EXPECT_NE(m.find(p), std::string::npos) << "missing '" << p << "' in: " << m;
}

// Import-time inference of one node on inputs of the given types; constant inputs as given.
struct InferResult {
  Status status;
  std::vector<TensorType> outputs;
  std::vector<std::optional<Tensor>> values;  // folded constants
};
inline InferResult infer_op(const std::string& op, const std::vector<std::variant<TensorType, Tensor>>& inputs,
                            Attributes attrs = {}, int num_outputs = 1) {
  Graph g;
  std::vector<Value*> ins;
  for (size_t i = 0; i < inputs.size(); ++i) {
    std::string name = "in" + std::to_string(i);
    if (const auto* t = std::get_if<Tensor>(&inputs[i])) {
      ins.push_back(t->defined() ? g.add_constant(name, *t) : nullptr);
    } else {
      Value* v = g.add_value(name, std::get<TensorType>(inputs[i]));
      g.inputs.push_back(v);
      ins.push_back(v);
    }
  }
  std::vector<Value*> outs;
  for (int i = 0; i < num_outputs; ++i) outs.push_back(g.add_value("out" + std::to_string(i)));
  Node* n = g.add_node(op, ins, outs, op + "_node", "", 21);
  n->attrs = std::move(attrs);
  g.outputs = outs;
  InferResult r;
  r.status = infer_shapes(g);
  for (Value* v : outs) {
    r.outputs.push_back(v->type);
    r.values.push_back(v->constant);
  }
  return r;
}

inline TensorType ttype(DType t, std::vector<Dim> dims) { return TensorType{t, Shape(std::move(dims))}; }

}  // namespace kiln::test
