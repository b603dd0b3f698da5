// Naive references for the elementwise op tests: each output element is computed in double from
// its operands' elements, located by explicit coordinate arithmetic (independent of the
// broadcast layout code under test).
#pragma once

#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "op_test_util.hpp"
#include "ops/infer_util.hpp"

namespace kiln::test {

// The flat index in an operand of dims `in` of output element `i` of dims `out` (numpy rules).
inline int64_t naive_broadcast_index(const Dims& out, const Dims& in, int64_t i) {
  int64_t idx = 0, stride = 1;
  for (size_t k = 0; k < out.size(); ++k) {
    size_t d = out.size() - 1 - k;
    int64_t coord = i % out[d];
    i /= out[d];
    if (k < in.size()) {
      int64_t n = in[in.size() - 1 - k];
      idx += (n == 1 ? 0 : coord) * stride;
      stride *= n;
    }
  }
  return idx;
}

// expected[i] = f({operand values at i}) over `out_dims`, returned as a tensor of `dtype`
// (values converted from double like Tensor::cast does).
inline Tensor naive_map(const Dims& out_dims, const std::vector<Tensor>& ins, DType dtype,
                        const std::function<double(const std::vector<double>&)>& f) {
  std::vector<std::vector<double>> vals;
  for (const Tensor& t : ins) vals.push_back(t.to_double_vector());
  std::vector<double> out(static_cast<size_t>(dims_numel(out_dims)));
  std::vector<double> args(ins.size());
  for (size_t i = 0; i < out.size(); ++i) {
    for (size_t k = 0; k < ins.size(); ++k)
      args[k] = vals[k][static_cast<size_t>(naive_broadcast_index(out_dims, ins[k].dims(), static_cast<int64_t>(i)))];
    out[i] = f(args);
  }
  return Tensor::from_vector<double>(out_dims, out).cast(dtype);
}

// Tolerances for comparing a kernel's result with a double reference rounded to `dtype`.
inline double rtol_for(DType t) {
  switch (t) {
    case DType::kFloat16: return 2e-3;
    case DType::kBFloat16: return 1.6e-2;
    case DType::kFloat32: return 2e-6;
    case DType::kFloat64: return 1e-12;
    default: return 0;
  }
}
inline double atol_for(DType t) { return is_floating(t) ? rtol_for(t) : 0; }

inline std::vector<DType> float_dtypes() {
  return {DType::kFloat32, DType::kFloat16, DType::kBFloat16, DType::kFloat64};
}
inline std::vector<DType> int_dtypes() {
  return {DType::kInt8, DType::kUInt8, DType::kInt16, DType::kUInt16,
          DType::kInt32, DType::kUInt32, DType::kInt64, DType::kUInt64};
}

// Runs a single-output op and returns its output, failing the test on an error.
inline Tensor run1(const OpCall& call) {
  auto r = run_op(call);
  EXPECT_TRUE(r.ok()) << call.op_type << ": " << r.status().message();
  return r.ok() ? r->at(0) : Tensor();
}

// Runs an op that must fail; returns the status.
inline Status run_err(const OpCall& call) {
  auto r = run_op(call);
  EXPECT_FALSE(r.ok()) << call.op_type << " unexpectedly succeeded";
  return r.ok() ? Status::Ok() : r.status();
}

inline bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

}  // namespace kiln::test
