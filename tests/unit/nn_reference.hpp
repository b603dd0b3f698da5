// Naive reference computations for the NN op tests: direct loops in double, written without
// reference to the kernels (no im2col, no GEMM), over N spatial dims.
#pragma once

#include <cmath>
#include <functional>
#include <vector>

#include "ir/tensor.hpp"

namespace kiln::test {

inline int64_t numel_of(const Dims& d) {
  int64_t n = 1;
  for (int64_t v : d) n *= v;
  return n;
}

// Row-major offset of `idx` in `dims`.
inline int64_t offset_of(const Dims& dims, const Dims& idx) {
  int64_t off = 0;
  for (size_t i = 0; i < dims.size(); ++i) off = off * dims[i] + idx[i];
  return off;
}

// Calls fn(idx) for every index of `dims` in row-major order.
inline void for_each_index(const Dims& dims, const std::function<void(const Dims&)>& fn) {
  int64_t total = numel_of(dims);
  Dims idx(dims.size(), 0);
  for (int64_t flat = 0; flat < total; ++flat) {
    fn(idx);
    for (int64_t i = static_cast<int64_t>(dims.size()) - 1; i >= 0; --i) {
      if (++idx[static_cast<size_t>(i)] < dims[static_cast<size_t>(i)]) break;
      idx[static_cast<size_t>(i)] = 0;
    }
  }
}

struct ConvParams {
  Dims strides, dilations, pads_begin, pads_end;  // per spatial dim
  int64_t group = 1;
};

// Direct convolution: x (N, C, in...), w (M, C/group, k...), optional bias; output dims given.
inline std::vector<double> ref_conv(const std::vector<double>& x, const Dims& xd, const std::vector<double>& w,
                                    const Dims& wd, const std::vector<double>* bias, const ConvParams& p,
                                    const Dims& yd) {
  const size_t nd = xd.size() - 2;
  const int64_t cg = wd[1], mg = wd[0] / p.group;
  std::vector<double> y(static_cast<size_t>(numel_of(yd)), 0.0);
  Dims kdims(wd.begin() + 2, wd.end());
  for_each_index(yd, [&](const Dims& yi) {
    const int64_t n = yi[0], m = yi[1], g = m / mg;
    double acc = bias ? (*bias)[static_cast<size_t>(m)] : 0.0;
    for (int64_t c = 0; c < cg; ++c) {
      for_each_index(kdims, [&](const Dims& k) {
        Dims xi{n, g * cg + c};
        for (size_t i = 0; i < nd; ++i) {
          int64_t pos = yi[2 + i] * p.strides[i] + k[i] * p.dilations[i] - p.pads_begin[i];
          if (pos < 0 || pos >= xd[2 + i]) return;
          xi.push_back(pos);
        }
        Dims wi{m, c};
        wi.insert(wi.end(), k.begin(), k.end());
        acc += x[static_cast<size_t>(offset_of(xd, xi))] * w[static_cast<size_t>(offset_of(wd, wi))];
      });
    }
    y[static_cast<size_t>(offset_of(yd, yi))] = acc;
  });
  return y;
}

// Direct transposed convolution: x (N, C, in...), w (C, M/group, k...): every input scatters
// x * w into the output at in * stride + k * dilation - pad_begin.
inline std::vector<double> ref_conv_transpose(const std::vector<double>& x, const Dims& xd,
                                              const std::vector<double>& w, const Dims& wd,
                                              const std::vector<double>* bias, const ConvParams& p,
                                              const Dims& yd) {
  const size_t nd = xd.size() - 2;
  const int64_t cg = xd[1] / p.group, mg = wd[1];
  std::vector<double> y(static_cast<size_t>(numel_of(yd)), 0.0);
  if (bias)
    for_each_index(yd, [&](const Dims& yi) { y[static_cast<size_t>(offset_of(yd, yi))] = (*bias)[static_cast<size_t>(yi[1])]; });
  Dims kdims(wd.begin() + 2, wd.end());
  for_each_index(xd, [&](const Dims& xi) {
    const int64_t n = xi[0], c = xi[1], g = c / cg;
    double xv = x[static_cast<size_t>(offset_of(xd, xi))];
    for (int64_t m = 0; m < mg; ++m) {
      for_each_index(kdims, [&](const Dims& k) {
        Dims yi{n, g * mg + m};
        for (size_t i = 0; i < nd; ++i) {
          int64_t pos = xi[2 + i] * p.strides[i] + k[i] * p.dilations[i] - p.pads_begin[i];
          if (pos < 0 || pos >= yd[2 + i]) return;
          yi.push_back(pos);
        }
        Dims wi{c, m};
        wi.insert(wi.end(), k.begin(), k.end());
        y[static_cast<size_t>(offset_of(yd, yi))] += xv * w[static_cast<size_t>(offset_of(wd, wi))];
      });
    }
  });
  return y;
}

inline Tensor to_tensor(DType dtype, const Dims& dims, const std::vector<double>& v) {
  return Tensor::from_vector<double>(dims, v).cast(dtype);
}

}  // namespace kiln::test
