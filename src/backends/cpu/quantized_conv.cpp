// ConvInteger and QLinearConv on the CPU: x and w minus their zero points as int32, im2col (the
// padding then reads 0, i.e. x's zero point) and an integer GEMM per (image, group); QLinearConv
// adds the int32 bias and requantizes per output channel.
#include <memory>
#include <vector>

#include "backends/cpu/im2col.hpp"
#include "backends/cpu/quant_util.hpp"
#include "ops/op_registry.hpp"

namespace kiln {
namespace {

// data - zero_point as int32. The zero point is one value, or one per output channel of w (each
// covering a consecutive block of numel / zp.size() elements).
template <typename T>
Tensor centered_as(const Tensor& data, const std::vector<int64_t>& zp) {
  Tensor out(DType::kInt32, data.dims());
  const T* d = data.data<T>();
  int32_t* o = out.data<int32_t>();
  const int64_t n = data.numel();
  const int64_t block = zp.size() > 1 ? n / static_cast<int64_t>(zp.size()) : n;
  for (int64_t i = 0; i < n; ++i)
    o[i] = static_cast<int32_t>(d[i]) - static_cast<int32_t>(zp[zp.size() > 1 ? static_cast<size_t>(i / block) : 0]);
  return out;
}

Expected<Tensor> centered(const KernelContext& ctx, size_t input, const Tensor* zp) {
  const Tensor& data = ctx.input(input);
  switch (data.dtype()) {
    case DType::kInt8: return centered_as<int8_t>(data, cpu::zero_points(zp));
    case DType::kUInt8: return centered_as<uint8_t>(data, cpu::zero_points(zp));
    default: return ctx.unsupported_dtype(data.dtype(), input);
  }
}

Dims spatial(const Dims& d) { return Dims(d.begin() + 2, d.end()); }

// acc (int32, the output's dims) = Conv(x - x_zero_point, w - w_zero_point), wrapping like
// 32-bit accumulation.
Status conv_int32(const KernelContext& ctx, size_t x_in, const Tensor* x_zp, size_t w_in, const Tensor* w_zp,
                  Tensor& acc) {
  KILN_ASSIGN_OR_RETURN(Tensor x, centered(ctx, x_in, x_zp));
  KILN_ASSIGN_OR_RETURN(Tensor w, centered(ctx, w_in, w_zp));
  const Dims kernel = spatial(w.dims());
  KILN_ASSIGN_OR_RETURN(Window win, resolve_window(ctx.node(), spatial(x.dims()), &kernel, false));
  const int64_t group = ctx.attrs().i("group", 1);
  const int64_t n_images = x.dim(0), c = x.dim(1), m = w.dim(0);
  const int64_t cg = c / group, mg = m / group;
  const int64_t in_size = dims_numel(win.in), out_size = dims_numel(win.out), k = cg * dims_numel(win.kernel);
  if (acc.numel() == 0) return Status::Ok();
  std::unique_ptr<int32_t[]> col(new int32_t[static_cast<size_t>(k * out_size)]);  // im2col writes it all
  for (int64_t n = 0; n < n_images; ++n) {
    for (int64_t g = 0; g < group; ++g) {
      cpu::im2col(x.data<int32_t>() + (n * c + g * cg) * in_size, cg, win, col.get());
      cpu::gemm_int32(mg, out_size, k, w.data<int32_t>() + g * mg * k, col.get(),
                      acc.data<int32_t>() + (n * m + g * mg) * out_size);
    }
  }
  return Status::Ok();
}

Status conv_integer_kernel(KernelContext& ctx) {
  return conv_int32(ctx, 0, ctx.has_input(2) ? &ctx.input(2) : nullptr, 1, ctx.has_input(3) ? &ctx.input(3) : nullptr,
                    ctx.output(0));
}

// y[n, m] = saturate(round((acc + B[m]) * (x_scale * w_scale[m] / y_scale)) + y_zero_point); the
// multiplier is formed in float32 as in the ONNX reference, the product in double.
template <typename Y>
void requantize_conv(const Tensor& acc, const std::vector<int32_t>& bias, const std::vector<float>& mult,
                     int64_t y_zp, Tensor& y) {
  const int64_t n_images = y.dim(0), m = y.dim(1), size = y.numel() / std::max<int64_t>(1, n_images * m);
  const int32_t* a = acc.data<int32_t>();
  Y* yd = y.data<Y>();
  for (int64_t n = 0; n < n_images; ++n) {
    for (int64_t oc = 0; oc < m; ++oc) {
      const size_t ci = static_cast<size_t>(oc);
      const int64_t b = bias.empty() ? 0 : bias[ci];
      const double f = mult[mult.size() > 1 ? ci : 0];
      const int64_t base = (n * m + oc) * size;
      for (int64_t i = 0; i < size; ++i)
        yd[base + i] = cpu::quantize_value<Y>(static_cast<double>(a[base + i] + b) * f, y_zp);
    }
  }
}

std::vector<float> float_values(const Tensor& t) {
  const Tensor f = t.cast(DType::kFloat32);
  return std::vector<float>(f.data<float>(), f.data<float>() + f.numel());
}

// Inputs: x, x_scale, x_zero_point, w, w_scale, w_zero_point, y_scale, y_zero_point, B.
Status qlinear_conv_kernel(KernelContext& ctx) {
  Tensor& y = ctx.output(0);
  Tensor acc(DType::kInt32, y.dims());
  KILN_RETURN_IF_ERROR(conv_int32(ctx, 0, &ctx.input(2), 3, &ctx.input(5), acc));
  const float x_scale = static_cast<float>(ctx.input(1).scalar_as_double());
  const float y_scale = static_cast<float>(ctx.input(6).scalar_as_double());
  std::vector<float> mult = float_values(ctx.input(4));
  for (float& v : mult) v = x_scale * v / y_scale;
  std::vector<int32_t> bias;
  if (ctx.has_input(8)) bias.assign(ctx.input(8).data<int32_t>(), ctx.input(8).data<int32_t>() + ctx.input(8).numel());
  const int64_t y_zp = cpu::zero_points(&ctx.input(7))[0];
  switch (y.dtype()) {
    case DType::kInt8: requantize_conv<int8_t>(acc, bias, mult, y_zp, y); break;
    case DType::kUInt8: requantize_conv<uint8_t>(acc, bias, mult, y_zp, y); break;
    default: return ctx.unsupported_dtype(y.dtype(), 7);
  }
  return Status::Ok();
}

}  // namespace
}  // namespace kiln

KILN_REGISTER_CPU_KERNEL("ConvInteger", kiln::conv_integer_kernel);
KILN_REGISTER_CPU_KERNEL("QLinearConv", kiln::qlinear_conv_kernel);
