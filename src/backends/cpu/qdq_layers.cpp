// kiln.QConv and kiln.QMatMul on the CPU (ops/qdq_layers.hpp): exact int32 sums (im2col + integer
// GEMM, wrapping like 32-bit accumulation), then the epilogue in double. This is the reference the
// CUDA INT8 layers are tested against.
#include <memory>
#include <vector>

#include "backends/cpu/im2col.hpp"
#include "backends/cpu/quant_util.hpp"
#include "ops/op_registry.hpp"

namespace kiln {
namespace {

Tensor as_int32(const Tensor& t) { return t.cast(DType::kInt32); }

// v = acc * x_scale * w_scale[c] + B[c] + Z, Relu, then stored as Y's dtype (float, or int8 at
// y_scale). acc and Y are walked as (outer, channels, inner).
Status epilogue(KernelContext& ctx, const Tensor& acc, int64_t channels, int64_t inner) {
  Tensor& y = ctx.output(0);
  const double xs = ctx.input(1).scalar_as_double();
  std::vector<double> ws = ctx.input(3).to_double_vector();
  if (ws.size() != 1 && static_cast<int64_t>(ws.size()) != channels)
    return ctx.error("w_scale has {} values for {} channels", ws.size(), channels);
  std::vector<double> bias = ctx.has_input(4) ? ctx.input(4).to_double_vector() : std::vector<double>();
  std::vector<double> z;
  if (ctx.has_input(5)) {
    z = ctx.input(5).to_double_vector();
    if (ctx.input(5).dtype() == DType::kInt8) {
      const double zs = ctx.input(6).scalar_as_double();
      for (double& v : z) v *= zs;
    }
  }
  const bool relu = ctx.attrs().s("activation", "") == "Relu";
  const bool quantized = ctx.has_input(7);
  const double ys = quantized ? ctx.input(7).scalar_as_double() : 1.0;
  const int32_t* a = acc.data<int32_t>();
  std::vector<double> v(static_cast<size_t>(y.numel()));
  for (int64_t i = 0; i < y.numel(); ++i) {
    const size_t c = static_cast<size_t>((i / inner) % channels);
    double r = static_cast<double>(a[i]) * (xs * ws[ws.size() == 1 ? 0 : c]);
    if (!bias.empty()) r += bias[c];
    if (!z.empty()) r += z[static_cast<size_t>(i)];
    if (relu && r < 0) r = 0;
    v[static_cast<size_t>(i)] = r;
  }
  if (quantized) {
    int8_t* yd = y.data<int8_t>();
    for (int64_t i = 0; i < y.numel(); ++i) yd[i] = cpu::quantize_value<int8_t>(v[static_cast<size_t>(i)] / ys, 0);
    return Status::Ok();
  }
  Tensor f(DType::kFloat64, y.dims());
  std::copy(v.begin(), v.end(), f.data<double>());
  y = f.cast(y.dtype());
  return Status::Ok();
}

Status qconv_kernel(KernelContext& ctx) {
  Tensor& y = ctx.output(0);
  const Tensor x = as_int32(ctx.input(0)), w = as_int32(ctx.input(2));
  if (x.rank() < 3 || w.rank() != x.rank()) return ctx.error("X and W must have one rank >= 3");
  const Dims kernel(w.dims().begin() + 2, w.dims().end());
  KILN_ASSIGN_OR_RETURN(Window win, resolve_window(ctx.node(), Dims(x.dims().begin() + 2, x.dims().end()), &kernel,
                                                   false));
  const int64_t group = ctx.attrs().i("group", 1);
  const int64_t n_images = x.dim(0), c = x.dim(1), m = w.dim(0);
  const int64_t cg = c / group, mg = m / group;
  const int64_t in_size = dims_numel(win.in), out_size = dims_numel(win.out), k = cg * dims_numel(win.kernel);
  Tensor acc(DType::kInt32, y.dims());
  if (acc.numel() > 0) {
    std::unique_ptr<int32_t[]> col(new int32_t[static_cast<size_t>(std::max<int64_t>(1, k * out_size))]);
    for (int64_t n = 0; n < n_images; ++n)
      for (int64_t g = 0; g < group; ++g) {
        cpu::im2col(x.data<int32_t>() + (n * c + g * cg) * in_size, cg, win, col.get());
        cpu::gemm_int32(mg, out_size, k, w.data<int32_t>() + g * mg * k, col.get(),
                        acc.data<int32_t>() + (n * m + g * mg) * out_size);
      }
  }
  return epilogue(ctx, acc, m, out_size);
}

// acc[r, j] = sum_k X[r, k] * W[j, k].
Status qmatmul_kernel(KernelContext& ctx) {
  Tensor& y = ctx.output(0);
  const Tensor x = as_int32(ctx.input(0)), w = as_int32(ctx.input(2));
  const int64_t n = w.dim(0), k = w.dim(1), rows = k > 0 ? x.numel() / k : 0;
  Tensor acc(DType::kInt32, y.dims());
  const int32_t *xd = x.data<int32_t>(), *wd = w.data<int32_t>();
  int32_t* ad = acc.data<int32_t>();
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t j = 0; j < n; ++j) {
      int64_t s = 0;
      for (int64_t p = 0; p < k; ++p) s += static_cast<int64_t>(xd[r * k + p]) * wd[j * k + p];
      ad[r * n + j] = static_cast<int32_t>(s);
    }
  if (k == 0) std::fill(ad, ad + acc.numel(), 0);
  return epilogue(ctx, acc, n, 1);
}

}  // namespace
}  // namespace kiln

KILN_REGISTER_CPU_KERNEL_DOMAIN("kiln", "QConv", kiln::qconv_kernel);
KILN_REGISTER_CPU_KERNEL_DOMAIN("kiln", "QMatMul", kiln::qmatmul_kernel);
