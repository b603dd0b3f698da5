// BatchNormalization, InstanceNormalization, GroupNormalization and LayerNormalization on the CPU.
// Statistics are accumulated in double; float16/bfloat16 are read and written through float.
#include <cmath>
#include <vector>

#include "backends/cpu/float_dispatch.hpp"
#include "ops/infer_util.hpp"

namespace kiln {
namespace {

using cpu::dispatch_floating;

// Mean and 1 / sqrt(var + eps) of each of `rows` contiguous runs of `cols` values (two passes:
// no cancellation for large means).
template <typename T>
void row_stats(const T* x, int64_t rows, int64_t cols, double eps, std::vector<double>& mean, std::vector<double>& inv) {
  mean.resize(static_cast<size_t>(rows));
  inv.resize(static_cast<size_t>(rows));
  for (int64_t r = 0; r < rows; ++r) {
    const T* row = x + r * cols;
    double sum = 0;
    for (int64_t i = 0; i < cols; ++i) sum += static_cast<double>(static_cast<compute_t<T>>(row[i]));
    const double m = cols > 0 ? sum / static_cast<double>(cols) : 0.0;
    double sq = 0;
    for (int64_t i = 0; i < cols; ++i) {
      double d = static_cast<double>(static_cast<compute_t<T>>(row[i])) - m;
      sq += d * d;
    }
    mean[static_cast<size_t>(r)] = m;
    inv[static_cast<size_t>(r)] = 1.0 / std::sqrt((cols > 0 ? sq / static_cast<double>(cols) : 0.0) + eps);
  }
}

// y = x * a[c] + b[c] over (outer, C, inner) with per-channel coefficients.
template <typename T>
void apply_affine(const T* x, T* y, int64_t outer, int64_t channels, int64_t inner, const std::vector<double>& a,
                  const std::vector<double>& b) {
  using C = compute_t<T>;
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t c = 0; c < channels; ++c) {
      const C ac = static_cast<C>(a[static_cast<size_t>(c)]), bc = static_cast<C>(b[static_cast<size_t>(c)]);
      const int64_t base = (o * channels + c) * inner;
      for (int64_t i = 0; i < inner; ++i) y[base + i] = static_cast<T>(static_cast<C>(x[base + i]) * ac + bc);
    }
}

Status batch_norm_kernel(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  const double eps = ctx.attrs().f("epsilon", 1e-5f);
  const double momentum = ctx.attrs().f("momentum", 0.9f);
  const bool training = ctx.attrs().i("training_mode", 0) != 0;
  const int64_t n = x.dim(0), channels = x.rank() > 1 ? x.dim(1) : 1;
  const int64_t inner = n * channels > 0 ? x.numel() / (n * channels) : 0;
  auto scale = ctx.input(1).to_double_vector(), bias = ctx.input(2).to_double_vector();
  auto mean = ctx.input(3).to_double_vector(), var = ctx.input(4).to_double_vector();
  if (static_cast<int64_t>(scale.size()) != channels)
    return ctx.error("scale has {} values for {} channels", scale.size(), channels);
  return dispatch_floating(ctx, x.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* xd = x.data<T>();
    std::vector<double> use_mean = mean, use_var = var;
    if (training) {
      // Batch statistics over N and the spatial dims (population variance).
      for (int64_t c = 0; c < channels; ++c) {
        double sum = 0, sq = 0;
        for (int64_t i = 0; i < n; ++i)
          for (int64_t j = 0; j < inner; ++j) sum += static_cast<double>(static_cast<compute_t<T>>(xd[(i * channels + c) * inner + j]));
        const double count = static_cast<double>(n * inner), m = count > 0 ? sum / count : 0.0;
        for (int64_t i = 0; i < n; ++i)
          for (int64_t j = 0; j < inner; ++j) {
            double d = static_cast<double>(static_cast<compute_t<T>>(xd[(i * channels + c) * inner + j])) - m;
            sq += d * d;
          }
        use_mean[static_cast<size_t>(c)] = m;
        use_var[static_cast<size_t>(c)] = count > 0 ? sq / count : 0.0;
      }
    }
    std::vector<double> a(static_cast<size_t>(channels)), b(static_cast<size_t>(channels));
    for (size_t c = 0; c < a.size(); ++c) {
      a[c] = scale[c] / std::sqrt(use_var[c] + eps);
      b[c] = bias[c] - use_mean[c] * a[c];
    }
    apply_affine(xd, ctx.output(0).data<T>(), n, channels, inner, a, b);
    if (training) {
      for (size_t out = 1; out < 3; ++out) {
        if (!ctx.node().has_output(out)) continue;
        std::vector<double> running(a.size());
        const auto& prev = out == 1 ? mean : var;
        const auto& cur = out == 1 ? use_mean : use_var;
        for (size_t c = 0; c < running.size(); ++c) running[c] = prev[c] * momentum + cur[c] * (1.0 - momentum);
        ctx.set_output(out, Tensor::from_vector<double>({channels}, running).cast(ctx.output_type(out).dtype));
      }
    }
  });
}

// InstanceNormalization: statistics per (n, c); GroupNormalization: per (n, group), with scale and
// bias per channel (opset 21).
template <bool kGroups>
Status instance_group_norm_kernel(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  const double eps = ctx.attrs().f("epsilon", 1e-5f);
  const int64_t n = x.dim(0), channels = x.dim(1);
  const int64_t groups = kGroups ? ctx.attrs().i("num_groups") : channels;
  const int64_t inner = n * channels > 0 ? x.numel() / (n * channels) : 0;
  auto scale = ctx.input(1).to_double_vector(), bias = ctx.input(2).to_double_vector();
  return dispatch_floating(ctx, x.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* xd = x.data<T>();
    const int64_t per_group = channels / groups;
    std::vector<double> mean, inv;
    row_stats(xd, n * groups, per_group * inner, eps, mean, inv);
    std::vector<double> a(static_cast<size_t>(channels)), b(static_cast<size_t>(channels));
    T* yd = ctx.output(0).data<T>();
    for (int64_t i = 0; i < n; ++i) {
      for (int64_t c = 0; c < channels; ++c) {
        const size_t row = static_cast<size_t>(i * groups + c / per_group);
        a[static_cast<size_t>(c)] = scale[static_cast<size_t>(c)] * inv[row];
        b[static_cast<size_t>(c)] = bias[static_cast<size_t>(c)] - mean[row] * a[static_cast<size_t>(c)];
      }
      apply_affine(xd + i * channels * inner, yd + i * channels * inner, 1, channels, inner, a, b);
    }
  });
}

// `t` broadcast (numpy rules, one way) to `target`, as doubles.
std::vector<double> expand_to(const Tensor& t, const Dims& target) {
  auto v = t.to_double_vector();
  const size_t rank = target.size();
  Dims td = t.dims();
  td.insert(td.begin(), rank - td.size(), 1);
  std::vector<int64_t> strides(rank, 0);
  for (int64_t i = static_cast<int64_t>(rank) - 1, s = 1; i >= 0; --i) {
    strides[static_cast<size_t>(i)] = td[static_cast<size_t>(i)] == 1 ? 0 : s;
    s *= td[static_cast<size_t>(i)];
  }
  std::vector<double> out(static_cast<size_t>(dims_numel(target)));
  Dims idx(rank, 0);
  for (size_t flat = 0; flat < out.size(); ++flat) {
    int64_t off = 0;
    for (size_t i = 0; i < rank; ++i) off += idx[i] * strides[i];
    out[flat] = v[static_cast<size_t>(off)];
    for (size_t i = rank; i-- > 0;) {
      if (++idx[i] < target[i]) break;
      idx[i] = 0;
    }
  }
  return out;
}

Status layer_norm_kernel(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  const double eps = ctx.attrs().f("epsilon", 1e-5f);
  int64_t axis = ctx.attrs().i("axis", -1);
  if (axis < 0) axis += x.rank();
  const Dims& xd_dims = x.dims();
  int64_t rows = 1, cols = 1;
  for (int64_t i = 0; i < x.rank(); ++i) (i < axis ? rows : cols) *= xd_dims[static_cast<size_t>(i)];
  // Scale/B usually cover only the normalized dims: expand them to those (cols values), else to X.
  auto params = [&](size_t input, bool& full) -> std::vector<double> {
    if (!ctx.has_input(input)) return {};
    const Tensor& p = ctx.input(input);
    full = p.rank() > x.rank() - axis;
    return full ? expand_to(p, xd_dims) : expand_to(p, Dims(xd_dims.begin() + axis, xd_dims.end()));
  };
  bool scale_full = false, bias_full = false;
  auto scale = params(1, scale_full), bias = params(2, bias_full);
  return dispatch_floating(ctx, x.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    using C = compute_t<T>;
    const T* xd = x.data<T>();
    T* yd = ctx.output(0).data<T>();
    std::vector<double> mean, inv;
    row_stats(xd, rows, cols, eps, mean, inv);
    for (int64_t r = 0; r < rows; ++r) {
      const C m = static_cast<C>(mean[static_cast<size_t>(r)]), s = static_cast<C>(inv[static_cast<size_t>(r)]);
      const double* sc = scale.data() + (scale_full ? r * cols : 0);
      const double* bi = bias.empty() ? nullptr : bias.data() + (bias_full ? r * cols : 0);
      for (int64_t i = 0; i < cols; ++i) {
        C v = (static_cast<C>(xd[r * cols + i]) - m) * s * static_cast<C>(sc[i]);
        if (bi) v += static_cast<C>(bi[i]);
        yd[r * cols + i] = static_cast<T>(v);
      }
    }
    for (size_t out = 1; out < 3; ++out) {
      if (!ctx.node().has_output(out)) continue;
      Dims sd(xd_dims.begin(), xd_dims.begin() + axis);
      sd.resize(xd_dims.size(), 1);
      ctx.set_output(out, Tensor::from_vector<double>(sd, out == 1 ? mean : inv).cast(ctx.output_type(out).dtype));
    }
  });
}

}  // namespace
}  // namespace kiln

KILN_REGISTER_CPU_KERNEL("BatchNormalization", kiln::batch_norm_kernel);
KILN_REGISTER_CPU_KERNEL("InstanceNormalization", kiln::instance_group_norm_kernel<false>);
KILN_REGISTER_CPU_KERNEL("GroupNormalization", kiln::instance_group_norm_kernel<true>);
KILN_REGISTER_CPU_KERNEL("LayerNormalization", kiln::layer_norm_kernel);
