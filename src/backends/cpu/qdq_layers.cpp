// kiln.QConv and kiln.QMatMul on the CPU (ops/qdq_layers.hpp): exact int32 sums (im2col + integer
// GEMM, wrapping like 32-bit accumulation), then the epilogue in double. This is the reference the
// CUDA INT8 layers are tested against.
#include <array>
#include <cstring>
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

Status qconv_nchw(KernelContext& ctx) {
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

// y = Transpose(x, perm) of a 4-D x, contiguous.
Tensor permute4(const Tensor& x, const std::array<int, 4>& perm) {
  Dims dims;
  for (int p : perm) dims.push_back(x.dim(p));
  Tensor y(x.dtype(), dims);
  const size_t es = dtype_size(x.dtype());
  const auto* src = static_cast<const char*>(x.raw_data());
  auto* dst = static_cast<char*>(y.raw_data());
  const Dims& xd = x.dims();
  const int64_t xs[4] = {xd[1] * xd[2] * xd[3], xd[2] * xd[3], xd[3], 1};
  int64_t i = 0;
  for (int64_t a = 0; a < dims[0]; ++a)
    for (int64_t b = 0; b < dims[1]; ++b)
      for (int64_t c = 0; c < dims[2]; ++c)
        for (int64_t d = 0; d < dims[3]; ++d, ++i) {
          const int64_t off = a * xs[perm[0]] + b * xs[perm[1]] + c * xs[perm[2]] + d * xs[perm[3]];
          std::memcpy(dst + i * es, src + off * es, es);
        }
  return y;
}

// NHWC layout: the NCHW kernel on NCHW copies of X (unless x_layout is NCHW) and Z, its Y
// transposed back.
Status qconv_kernel(KernelContext& ctx) {
  const std::string layout = ctx.attrs().s("layout", "NCHW");
  const std::string x_layout = ctx.attrs().s("x_layout", layout);
  if (layout == "NCHW" && x_layout == "NCHW") return qconv_nchw(ctx);
  if (layout != "NHWC" || (x_layout != "NCHW" && x_layout != "NHWC"))
    return ctx.error("layout '{}' with x_layout '{}': NCHW, NHWC, or NHWC with an NCHW X", layout, x_layout);
  constexpr std::array<int, 4> to_nchw{0, 3, 1, 2}, to_nhwc{0, 2, 3, 1};
  std::vector<Tensor> nchw(ctx.num_inputs());
  std::vector<const Tensor*> inputs;
  for (size_t i = 0; i < ctx.num_inputs(); ++i) {
    if (!ctx.has_input(i)) {
      inputs.push_back(nullptr);
      continue;
    }
    if ((i == 0 && x_layout == "NHWC") || i == 5) {
      if (ctx.input(i).rank() != 4) return ctx.error("input {} must be 4-D NHWC, got {}", i, ctx.input(i).describe());
      nchw[i] = permute4(ctx.input(i), to_nchw);
      inputs.push_back(&nchw[i]);
    } else {
      inputs.push_back(&ctx.input(i));
    }
  }
  auto yd = ctx.output_type(0).shape.to_dims();
  if (!yd || yd->size() != 4) return ctx.error("NHWC layout needs a 4-D Y");
  const Dims y_nchw{(*yd)[0], (*yd)[3], (*yd)[1], (*yd)[2]};
  KernelContext inner(ctx.node(), inputs, {TensorType{ctx.output_type(0).dtype, Shape::from_dims(y_nchw)}}, nullptr);
  KILN_RETURN_IF_ERROR(qconv_nchw(inner));
  ctx.set_output(0, permute4(inner.output(0), to_nhwc));
  return Status::Ok();
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
