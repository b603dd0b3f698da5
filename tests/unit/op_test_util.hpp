// Helpers for op tests: build a one-node graph, run it on the CPU backend, compare tensors.
#pragma once

#include <gtest/gtest.h>

#include <map>
#include <random>
#include <string>
#include <vector>

#include "backends/cpu/cpu_executor.hpp"
#include "ir/graph.hpp"
#include "ops/shape_inference.hpp"

namespace kiln::test {

struct OpCall {
  std::string op_type;
  std::vector<Tensor> inputs;             // an undefined Tensor() is an absent optional input
  std::vector<bool> constant_inputs = {}; // true: the input is an initializer (default: none)
  Attributes attrs;
  int num_outputs = 1;
  int opset = 21;
  std::string domain;
};

// A graph with one node: non-constant inputs are graph inputs "in0", "in1", ...
inline GraphPtr make_op_graph(const OpCall& call) {
  auto g = std::make_shared<Graph>();
  g->name = call.op_type + "_test";
  std::vector<Value*> ins;
  for (size_t i = 0; i < call.inputs.size(); ++i) {
    const Tensor& t = call.inputs[i];
    if (!t.defined()) { ins.push_back(nullptr); continue; }
    std::string name = "in" + std::to_string(i);
    bool is_const = i < call.constant_inputs.size() && call.constant_inputs[i];
    if (is_const) {
      ins.push_back(g->add_constant(name, t));
    } else {
      Value* v = g->add_value(name, {t.dtype(), Shape::from_dims(t.dims())});
      g->inputs.push_back(v);
      ins.push_back(v);
    }
  }
  std::vector<Value*> outs;
  for (int i = 0; i < call.num_outputs; ++i) outs.push_back(g->add_value("out" + std::to_string(i)));
  Node* n = g->add_node(call.op_type, ins, outs, call.op_type + "_node", call.domain, call.opset);
  n->attrs = call.attrs;
  g->outputs = outs;
  return g;
}

// Runs the op on the CPU backend (with shape inference first). Returns the outputs or the error.
inline Expected<std::vector<Tensor>> run_op(const OpCall& call) {
  GraphPtr g = make_op_graph(call);
  KILN_RETURN_IF_ERROR(infer_shapes(*g));
  KILN_ASSIGN_OR_RETURN(auto exec, CpuExecutor::create(g));
  std::map<std::string, Tensor> feeds;
  for (const Value* v : g->inputs) {
    size_t i = static_cast<size_t>(std::stoi(v->name.substr(2)));
    feeds[v->name] = call.inputs[i];
  }
  return exec->run(feeds);
}

// Random values in [lo, hi) (never all zero); integer dtypes get integers in that range.
inline Tensor random_tensor(DType dtype, Dims dims, uint32_t seed = 1, double lo = -2.0, double hi = 2.0) {
  Tensor t(dtype, std::move(dims));
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> dist(lo, hi);
  dispatch_dtype(dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    T* p = t.data<T>();
    for (int64_t i = 0; i < t.numel(); ++i) {
      double v = dist(rng);
      if constexpr (std::is_same_v<T, bool>) p[i] = v > (lo + hi) / 2;
      else if constexpr (std::is_same_v<T, Half> || std::is_same_v<T, BFloat16>) p[i] = T(static_cast<float>(v));
      else if constexpr (std::is_integral_v<T>) p[i] = static_cast<T>(std::floor(v));
      else p[i] = static_cast<T>(v);
    }
  });
  return t;
}

// Relative L2 error ||a - b|| / ||b|| (0 when both are zero).
inline double rel_l2(const Tensor& a, const Tensor& b) {
  auto x = a.to_double_vector(), y = b.to_double_vector();
  double num = 0, den = 0;
  for (size_t i = 0; i < x.size() && i < y.size(); ++i) {
    num += (x[i] - y[i]) * (x[i] - y[i]);
    den += y[i] * y[i];
  }
  return den == 0 ? std::sqrt(num) : std::sqrt(num / den);
}

// Cosine similarity of two tensors' values (0 when either is all zero).
inline double cosine(const Tensor& a, const Tensor& b) {
  auto x = a.to_double_vector(), y = b.to_double_vector();
  double d = 0, nx = 0, ny = 0;
  for (size_t i = 0; i < x.size() && i < y.size(); ++i) {
    d += x[i] * y[i];
    nx += x[i] * x[i];
    ny += y[i] * y[i];
  }
  return nx > 0 && ny > 0 ? d / std::sqrt(nx * ny) : 0;
}

// float32 values drawn from N(0, stddev^2) (weights of test models).
inline Tensor normal_tensor(Dims dims, uint32_t seed, float stddev) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> n(0.0f, stddev);
  Tensor t(DType::kFloat32, std::move(dims));
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = n(rng);
  return t;
}

// Float8 E4M3 values of a random float32 matrix in [-0.5, 0.5) with its per-tensor scale amax/448,
// and that scale (FP8 GEMM weights of the tests).
inline std::pair<Tensor, float> fp8_weight(Dims dims, uint32_t seed) {
  Tensor w = random_tensor(DType::kFloat32, std::move(dims), seed, -0.5, 0.5);
  float amax = 0;
  for (int64_t i = 0; i < w.numel(); ++i) amax = std::max(amax, std::fabs(w.data<float>()[i]));
  const float s = amax / kFloat8E4M3Max;
  Tensor q(DType::kFloat8E4M3FN, w.dims());
  for (int64_t i = 0; i < w.numel(); ++i) q.data<Float8E4M3FN>()[i] = Float8E4M3FN(w.data<float>()[i] / s);
  return {q, s};
}

// Elementwise |a - b| <= atol + rtol * |b|, same dtype and dims; NaN matches NaN.
inline ::testing::AssertionResult tensors_close(const Tensor& a, const Tensor& b, double rtol = 1e-5,
                                                double atol = 1e-6) {
  if (a.dtype() != b.dtype())
    return ::testing::AssertionFailure() << "dtype " << dtype_name(a.dtype()) << " vs " << dtype_name(b.dtype());
  if (a.dims() != b.dims())
    return ::testing::AssertionFailure() << "dims " << dims_to_string(a.dims()) << " vs " << dims_to_string(b.dims());
  auto x = a.to_double_vector(), y = b.to_double_vector();
  for (size_t i = 0; i < x.size(); ++i) {
    if (std::isnan(x[i]) && std::isnan(y[i])) continue;
    if (x[i] == y[i]) continue;  // also equal infinities
    if (!(std::abs(x[i] - y[i]) <= atol + rtol * std::abs(y[i])))
      return ::testing::AssertionFailure() << "element " << i << ": " << x[i] << " vs expected " << y[i];
  }
  return ::testing::AssertionSuccess();
}

}  // namespace kiln::test
