// A naive float32 interpreter for the few ops that opset normalization emits (Flatten, Shape,
// Reshape, Unsqueeze, Softmax/LogSoftmax/Hardmax on the last axis, broadcasting Add/Sub/Mul/Div/
// PRelu, Sqrt, CastLike). Independent of kiln's kernels: importer tests use it to check that a
// rewritten graph computes what the legacy op did.
#pragma once

#include <cmath>
#include <map>
#include <string>
#include <vector>

#include "ir/graph.hpp"
#include "util/error.hpp"

namespace kiln::test {

namespace refeval {

inline Dims broadcast(const Dims& a, const Dims& b) {
  Dims out(std::max(a.size(), b.size()), 1);
  for (size_t i = 0; i < out.size(); ++i) {
    int64_t da = i < out.size() - a.size() ? 1 : a[i - (out.size() - a.size())];
    int64_t db = i < out.size() - b.size() ? 1 : b[i - (out.size() - b.size())];
    out[i] = da == 1 ? db : da;
  }
  return out;
}

// Flat index into `d` (right-aligned, broadcast) of the multi-index `idx` over `out`.
inline int64_t source_index(const Dims& out, const Dims& d, const std::vector<int64_t>& idx) {
  int64_t flat = 0;
  size_t off = out.size() - d.size();
  for (size_t i = 0; i < d.size(); ++i) flat = flat * d[i] + (d[i] == 1 ? 0 : idx[i + off]);
  return flat;
}

template <typename F>
Tensor binary(const Tensor& a, const Tensor& b, F f) {
  Dims out = broadcast(a.dims(), b.dims());
  Tensor r(DType::kFloat32, out);
  std::vector<int64_t> idx(out.size(), 0);
  for (int64_t i = 0; i < r.numel(); ++i) {
    int64_t rem = i;
    for (size_t k = out.size(); k-- > 0;) {
      idx[k] = rem % out[k];
      rem /= out[k];
    }
    r.data<float>()[i] = f(a.data<float>()[source_index(out, a.dims(), idx)],
                           b.data<float>()[source_index(out, b.dims(), idx)]);
  }
  return r;
}

// Softmax-family over the last axis.
inline Tensor rows(const Tensor& x, const std::string& op) {
  Tensor r(DType::kFloat32, x.dims());
  const int64_t n = x.dims().empty() ? 1 : x.dims().back();
  for (int64_t row = 0; row * n < x.numel(); ++row) {
    const float* in = x.data<float>() + row * n;
    float* out = r.data<float>() + row * n;
    int64_t arg = 0;
    for (int64_t j = 1; j < n; ++j)
      if (in[j] > in[arg]) arg = j;
    double sum = 0;
    for (int64_t j = 0; j < n; ++j) sum += std::exp(double(in[j]) - in[arg]);
    for (int64_t j = 0; j < n; ++j) {
      double e = std::exp(double(in[j]) - in[arg]);
      out[j] = op == "Softmax" ? float(e / sum) : op == "LogSoftmax" ? float(std::log(e / sum)) : (j == arg);
    }
  }
  return r;
}

}  // namespace refeval

inline Expected<std::vector<Tensor>> reference_eval(const Graph& g, const std::map<std::string, Tensor>& feeds) {
  std::map<const Value*, Tensor> env;
  for (const Value* v : g.inputs) env[v] = feeds.at(v->name);
  auto get = [&](const Value* v) -> const Tensor& { return v->constant ? *v->constant : env.at(v); };
  for (const auto& node : g.nodes()) {
    const Node& n = *node;
    auto in = [&](size_t i) -> const Tensor& { return get(n.inputs[i]); };
    const std::string& op = n.op_type;
    Tensor out;
    if (op == "Add" || op == "Sub" || op == "Mul" || op == "Div" || op == "PRelu") {
      out = refeval::binary(in(0), in(1), [&](float a, float b) {
        return op == "Add" ? a + b : op == "Sub" ? a - b : op == "Mul" ? a * b : op == "Div" ? a / b : (a < 0 ? a * b : a);
      });
    } else if (op == "Sqrt") {
      out = in(0).clone();
      for (int64_t i = 0; i < out.numel(); ++i) out.data<float>()[i] = std::sqrt(out.data<float>()[i]);
    } else if (op == "CastLike") {
      if (in(1).dtype() != DType::kFloat32) return unsupported("reference CastLike: float32 only");
      out = in(0).cast(DType::kFloat32);
    } else if (op == "Shape") {
      out = Tensor::from_vector<int64_t>({in(0).rank()}, in(0).dims());
    } else if (op == "Flatten") {
      int64_t axis = n.attrs.i("axis", 1);
      if (axis < 0) axis += in(0).rank();
      int64_t outer = 1;
      for (int64_t i = 0; i < axis; ++i) outer *= in(0).dim(static_cast<int>(i));
      out = in(0).reshaped({outer, in(0).numel() / outer});
    } else if (op == "Reshape" || op == "Unsqueeze") {
      KILN_ASSIGN_OR_RETURN(std::vector<int64_t> v, in(1).to_int64_vector());
      Dims d = in(0).dims();
      if (op == "Reshape") d = v;
      else for (int64_t a : v) d.insert(d.begin() + a, 1);
      out = in(0).reshaped(d);
    } else if (op == "Softmax" || op == "LogSoftmax" || op == "Hardmax") {
      if (n.attrs.i("axis", -1) != -1 && n.attrs.i("axis", -1) != in(0).rank() - 1)
        return unsupported("reference {}: last axis only", op);
      out = refeval::rows(in(0), op);
    } else {
      return unsupported("reference interpreter has no op {}", op);
    }
    env[n.outputs[0]] = out;
  }
  std::vector<Tensor> outs;
  for (const Value* v : g.outputs) outs.push_back(get(v));
  return outs;
}

}  // namespace kiln::test
