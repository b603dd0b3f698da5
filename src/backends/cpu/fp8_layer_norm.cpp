// kiln.Fp8LayerNorm on the CPU (the reference of the CUDA layer): LayerNormalization in float
// (two passes: mean, then mean squared deviation), Y rounded to X's dtype, and Yq the saturating
// e4m3 quantization of that rounded Y, as kiln.Fp8Quantize reading Y computes it.
#include <cmath>
#include <cstring>

#include "ops/op_registry.hpp"

namespace kiln {
namespace {

Status fp8_layer_norm_kernel(KernelContext& ctx) {
  const Tensor x = ctx.input(0).cast(DType::kFloat32);
  const int64_t rank = x.rank();
  int64_t axis = ctx.attrs().i("axis", -1);
  if (axis < 0) axis += rank;
  if (axis < 0 || axis >= rank) return ctx.error("axis {} is out of range for rank {}", ctx.attrs().i("axis", -1), rank);
  int64_t cols = 1;
  for (int64_t i = axis; i < rank; ++i) cols *= x.dim(i);
  const int64_t rows = cols == 0 ? 0 : x.numel() / cols;
  const Tensor scale = ctx.input(1).cast(DType::kFloat32);
  Tensor bias;
  if (ctx.has_input(3)) bias = ctx.input(3).cast(DType::kFloat32);
  if (scale.numel() != cols || (bias.defined() && bias.numel() != cols))
    return ctx.error("Scale and B must hold the {} normalized values", cols);
  const float eps = ctx.attrs().f("epsilon", 1e-5f);
  Tensor yf(DType::kFloat32, x.dims());
  const float *xp = x.data<float>(), *g = scale.data<float>(), *b = bias.defined() ? bias.data<float>() : nullptr;
  float* yp = yf.data<float>();
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = xp + r * cols;
    double sum = 0;
    for (int64_t c = 0; c < cols; ++c) sum += xr[c];
    const double mean = sum / static_cast<double>(cols);
    double sq = 0;
    for (int64_t c = 0; c < cols; ++c) sq += (xr[c] - mean) * (xr[c] - mean);
    const double inv = 1.0 / std::sqrt(sq / static_cast<double>(cols) + eps);
    for (int64_t c = 0; c < cols; ++c)
      yp[r * cols + c] = static_cast<float>((xr[c] - mean) * inv * g[c] + (b ? b[c] : 0.f));
  }
  Tensor& y = ctx.output(0);
  const Tensor yt = yf.cast(y.dtype());
  std::memcpy(y.raw_data(), yt.raw_data(), y.nbytes());
  const Tensor rounded = yt.cast(DType::kFloat32);
  const float s = static_cast<float>(ctx.input(2).scalar_as_double());
  auto* q = ctx.output(1).data<Float8E4M3FN>();
  for (int64_t i = 0; i < rounded.numel(); ++i) q[i] = Float8E4M3FN(rounded.data<float>()[i] / s);
  return Status::Ok();
}

}  // namespace
}  // namespace kiln

KILN_REGISTER_CPU_KERNEL_DOMAIN("kiln", "Fp8LayerNorm", kiln::fp8_layer_norm_kernel);
