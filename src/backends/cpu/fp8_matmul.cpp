// kiln.Fp8Quantize and kiln.Fp8MatMul on the CPU: the reference the CUDA layers are tested
// against. They compute what the Q/DQ graph they replaced computes: X quantized to e4m3 as
// QuantizeLinear does; then both operands dequantized, a float matmul, bias, residual and
// activation, rounded once to Y's dtype (x_scale's); with y_scale (fp8-quantize-fusion) that Y is
// then quantized to e4m3 as the kiln.Fp8Quantize it absorbed did.
#include <cmath>
#include <cstring>

#include "ops/op_registry.hpp"

namespace kiln {
namespace {

float gelu(float v, bool tanh_approx) {
  if (tanh_approx) return 0.5f * v * (1.f + std::tanh(0.7978845608028654f * (v + 0.044715f * v * v * v)));
  return 0.5f * v * (1.f + std::erf(v * 0.7071067811865476f));
}

Status fp8_quantize_kernel(KernelContext& ctx) {
  const Tensor x = ctx.input(0).cast(DType::kFloat32);
  const float s = static_cast<float>(ctx.input(1).scalar_as_double());
  auto* y = ctx.output(0).data<Float8E4M3FN>();
  for (int64_t i = 0; i < x.numel(); ++i) y[i] = Float8E4M3FN(x.data<float>()[i] / s);  // saturating
  return Status::Ok();
}

Status fp8_matmul_kernel(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  const Tensor& w = ctx.input(2);
  if (x.dtype() != DType::kFloat8E4M3FN) return ctx.unsupported_dtype(x.dtype(), 0);
  if (w.dtype() != DType::kFloat8E4M3FN) return ctx.unsupported_dtype(w.dtype(), 2);
  const float sx = static_cast<float>(ctx.input(1).scalar_as_double());
  const float sw = static_cast<float>(ctx.input(3).scalar_as_double());
  const int64_t n = w.dim(0), k = w.dim(1), m = x.numel() / k;
  std::vector<float> xq(static_cast<size_t>(m * k)), wq(static_cast<size_t>(n * k));
  for (size_t i = 0; i < xq.size(); ++i) xq[i] = static_cast<float>(x.data<Float8E4M3FN>()[i]) * sx;
  for (size_t i = 0; i < wq.size(); ++i) wq[i] = static_cast<float>(w.data<Float8E4M3FN>()[i]) * sw;
  std::vector<float> bias;
  if (ctx.has_input(4)) {
    const Tensor b = ctx.input(4).cast(DType::kFloat32);
    bias.assign(b.data<float>(), b.data<float>() + n);
  }
  Tensor rf;
  if (ctx.has_input(5)) rf = ctx.input(5).cast(DType::kFloat32);
  const std::string act = ctx.attrs().s("activation", "");
  const bool tanh_approx = ctx.attrs().s("approximate", "none") == "tanh";
  Tensor yf(DType::kFloat32, ctx.output(0).dims());
  float* y = yf.data<float>();
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      double acc = 0;
      const float *a = &xq[static_cast<size_t>(i * k)], *b = &wq[static_cast<size_t>(j * k)];
      for (int64_t p = 0; p < k; ++p) acc += static_cast<double>(a[p]) * b[p];
      float v = static_cast<float>(acc);
      if (!bias.empty()) v += bias[static_cast<size_t>(j)];
      if (rf.defined()) v += rf.data<float>()[i * n + j];
      if (act == "Relu") v = v > 0.f ? v : 0.f;
      else if (act == "Gelu") v = gelu(v, tanh_approx);
      y[i * n + j] = v;
    }
  Tensor& out = ctx.output(0);
  if (ctx.has_input(6)) {  // e4m3(round_to_x_scale_dtype(y) / y_scale)
    const Tensor yt = yf.cast(ctx.input(1).dtype()).cast(DType::kFloat32);
    const float sy = static_cast<float>(ctx.input(6).scalar_as_double());
    auto* q = out.data<Float8E4M3FN>();
    for (int64_t i = 0; i < out.numel(); ++i) q[i] = Float8E4M3FN(yt.data<float>()[i] / sy);
    return Status::Ok();
  }
  const Tensor cast = out.dtype() == DType::kFloat32 ? yf : yf.cast(out.dtype());
  std::memcpy(out.raw_data(), cast.raw_data(), out.nbytes());
  return Status::Ok();
}

}  // namespace
}  // namespace kiln

KILN_REGISTER_CPU_KERNEL_DOMAIN("kiln", "Fp8Quantize", kiln::fp8_quantize_kernel);
KILN_REGISTER_CPU_KERNEL_DOMAIN("kiln", "Fp8MatMul", kiln::fp8_matmul_kernel);
