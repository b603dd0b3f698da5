// QuantizeLinear, DequantizeLinear and DynamicQuantizeLinear on the CPU.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "backends/cpu/element_types.hpp"
#include "backends/cpu/quant_util.hpp"
#include "ops/op_registry.hpp"

namespace kiln {
namespace {

using cpu::QdqLayout;

// Calls fn(TypeTag<Q>) for the integer types kiln quantizes to.
template <typename Fn>
bool dispatch_quantized(DType t, Fn&& fn) {
  switch (t) {
    case DType::kInt8: fn(TypeTag<int8_t>{}); return true;
    case DType::kUInt8: fn(TypeTag<uint8_t>{}); return true;
    case DType::kInt16: fn(TypeTag<int16_t>{}); return true;
    case DType::kUInt16: fn(TypeTag<uint16_t>{}); return true;
    default: return false;
  }
}

// Calls fn(o, k, i, flat index) for every element of x in its [outer, axis_len, inner] layout.
template <typename Fn>
void for_each_qdq_element(const QdqLayout& l, Fn&& fn) {
  int64_t idx = 0;
  for (int64_t o = 0; o < l.outer; ++o)
    for (int64_t k = 0; k < l.axis_len; ++k)
      for (int64_t i = 0; i < l.inner; ++i) fn(o, k, i, idx++);
}

// Scale and zero point have one shape (checked by inference), so `sl` locates both; a zero point
// of one element (or none) applies everywhere.

// y = saturate(round(x / scale) + zero_point). The division is done in C: float, or double when x
// is int32 or float64 or the scale is float64 (float32 data then divides exactly like the ONNX
// reference; an int32 x, with a float or int32 scale, like numpy's promotion to float64).
template <typename X, typename C, typename Q>
void quantize(const Tensor& x, const Tensor& scale, const QdqLayout& sl, const std::vector<int64_t>& zp,
              Tensor& y) {
  const Tensor s = scale.cast(dtype_of<C>);
  const C* sd = s.data<C>();
  const X* xd = x.data<X>();
  Q* yd = y.data<Q>();
  const bool zp_scalar = zp.size() == 1;
  for_each_qdq_element(sl, [&](int64_t o, int64_t k, int64_t i, int64_t idx) {
    const C v = static_cast<C>(cpu::load(xd[idx])) / sd[sl.index(o, k, i)];
    yd[idx] = cpu::quantize_value<Q>(static_cast<double>(v), zp[zp_scalar ? 0 : static_cast<size_t>(sl.index(o, k, i))]);
  });
}

// Zero-point values as float (float8 zero points; an absent zero point is one 0).
std::vector<float> float_zero_points(const Tensor* zp) {
  if (!zp) return {0.f};
  const Tensor f = zp->cast(DType::kFloat32);
  return std::vector<float>(f.data<float>(), f.data<float>() + f.numel());
}

// Float8: y = to_e4m3fn(x / scale + zero_point), rounding to nearest even; out-of-range values
// saturate to +-448 or, with saturate=0, become NaN (as do infinities).
Status quantize_float8(KernelContext& ctx, const Tensor& x, const Tensor& scale, const QdqLayout& sl,
                       const Tensor* zp_tensor, Tensor& y) {
  if (!is_floating(x.dtype())) return ctx.unsupported_dtype(x.dtype(), 0);
  if (!is_floating(scale.dtype())) return ctx.unsupported_dtype(scale.dtype(), 1);
  const bool saturate = ctx.attrs().i("saturate", 1) != 0;
  const Tensor xf = x.cast(DType::kFloat32), sf = scale.cast(DType::kFloat32);
  const std::vector<float> zp = float_zero_points(zp_tensor);
  const float *xd = xf.data<float>(), *sd = sf.data<float>();
  auto* yd = y.data<Float8E4M3FN>();
  const bool zp_scalar = zp.size() == 1;
  for_each_qdq_element(sl, [&](int64_t o, int64_t k, int64_t i, int64_t idx) {
    const int64_t p = sl.index(o, k, i);
    yd[idx] = Float8E4M3FN(xd[idx] / sd[p] + zp[zp_scalar ? 0 : static_cast<size_t>(p)], saturate);
  });
  return Status::Ok();
}

Status quantize_linear_kernel(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  const Tensor& scale = ctx.input(1);
  const Tensor* zp_tensor = ctx.has_input(2) ? &ctx.input(2) : nullptr;
  const int64_t axis = ctx.attrs().i("axis", 1), block = ctx.attrs().i("block_size", 0);
  const QdqLayout sl = cpu::qdq_layout(x.dims(), scale.dims(), axis, block);
  Tensor& y = ctx.output(0);
  if (y.dtype() == DType::kFloat8E4M3FN) return quantize_float8(ctx, x, scale, sl, zp_tensor, y);
  const std::vector<int64_t> zp = cpu::zero_points(zp_tensor);
  const DType xt = x.dtype();
  if (!is_floating(xt) && xt != DType::kInt32) return ctx.unsupported_dtype(xt, 0);
  if (!is_floating(scale.dtype()) && scale.dtype() != DType::kInt32) return ctx.unsupported_dtype(scale.dtype(), 1);
  const bool wide = xt == DType::kInt32 || xt == DType::kFloat64 || scale.dtype() == DType::kFloat64;
  const bool ok = dispatch_quantized(y.dtype(), [&](auto qtag) {
    using Q = typename decltype(qtag)::type;
    cpu::dispatch_types<cpu::kFloatTypes | cpu::kSignedInts>(xt, [&](auto xtag) {
      using X = typename decltype(xtag)::type;
      if constexpr (cpu::is_float_v<X> || std::is_same_v<X, int32_t>) {
        if (wide) quantize<X, double, Q>(x, scale, sl, zp, y);
        else quantize<X, float, Q>(x, scale, sl, zp, y);
      }
    });
  });
  if (!ok) return ctx.error("cannot quantize to {}", dtype_name(y.dtype()));
  return Status::Ok();
}

// y = (x - zero_point) * scale, of the scale's dtype; computed in float (double for float64).
template <typename X, typename S>
void dequantize(const Tensor& x, const Tensor& scale, const QdqLayout& sl, const std::vector<int64_t>& zp,
                Tensor& y) {
  using C = std::conditional_t<std::is_same_v<S, double>, double, float>;
  const Tensor s = scale.cast(dtype_of<C>);
  const C* sd = s.data<C>();
  const X* xd = x.data<X>();
  S* yd = y.data<S>();
  const bool zp_scalar = zp.size() == 1;
  for_each_qdq_element(sl, [&](int64_t o, int64_t k, int64_t i, int64_t idx) {
    const int64_t q = static_cast<int64_t>(xd[idx]) - zp[zp_scalar ? 0 : static_cast<size_t>(sl.index(o, k, i))];
    yd[idx] = cpu::store<S>(static_cast<C>(q) * sd[sl.index(o, k, i)]);
  });
}

// Float8: y = (x - zero_point) * scale in float, stored as the scale's dtype.
Status dequantize_float8(KernelContext& ctx, const Tensor& x, const Tensor& scale, const QdqLayout& sl,
                         const Tensor* zp_tensor, Tensor& y) {
  if (!is_floating(scale.dtype())) return ctx.unsupported_dtype(scale.dtype(), 1);
  const Tensor sf = scale.cast(DType::kFloat32);
  const std::vector<float> zp = float_zero_points(zp_tensor);
  const float* sd = sf.data<float>();
  const auto* xd = x.data<Float8E4M3FN>();
  Tensor yf(DType::kFloat32, x.dims());
  float* yd = yf.data<float>();
  const bool zp_scalar = zp.size() == 1;
  for_each_qdq_element(sl, [&](int64_t o, int64_t k, int64_t i, int64_t idx) {
    const int64_t p = sl.index(o, k, i);
    yd[idx] = (static_cast<float>(xd[idx]) - zp[zp_scalar ? 0 : static_cast<size_t>(p)]) * sd[p];
  });
  const Tensor out = y.dtype() == DType::kFloat32 ? yf : yf.cast(y.dtype());
  std::memcpy(y.raw_data(), out.raw_data(), y.nbytes());  // y may be preallocated: write into it
  return Status::Ok();
}

Status dequantize_linear_kernel(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  const Tensor& scale = ctx.input(1);
  const Tensor* zp_tensor = ctx.has_input(2) ? &ctx.input(2) : nullptr;
  const int64_t axis = ctx.attrs().i("axis", 1), block = ctx.attrs().i("block_size", 0);
  const QdqLayout sl = cpu::qdq_layout(x.dims(), scale.dims(), axis, block);
  Tensor& y = ctx.output(0);
  if (x.dtype() == DType::kFloat8E4M3FN) return dequantize_float8(ctx, x, scale, sl, zp_tensor, y);
  const std::vector<int64_t> zp = cpu::zero_points(zp_tensor);
  bool s_ok = false;
  const bool x_ok = cpu::dispatch_types<cpu::kIntTypes>(x.dtype(), [&](auto xtag) {
    using X = typename decltype(xtag)::type;
    if constexpr (sizeof(X) <= 2 || std::is_same_v<X, int32_t>) {
      s_ok = cpu::dispatch_types<cpu::kFloatTypes>(scale.dtype(), [&](auto stag) {
        dequantize<X, typename decltype(stag)::type>(x, scale, sl, zp, y);
      });
    }
  });
  if (!x_ok) return ctx.unsupported_dtype(x.dtype(), 0);
  if (!s_ok) return ctx.unsupported_dtype(scale.dtype(), 1);
  return Status::Ok();
}

// Quantizes float32 x to uint8 over the range [min(x, 0), max(x, 0)], as the ONNX function body:
// scale = range / 255, zero_point = saturate(round(-min / scale)), y = saturate(round(x / scale) + zp).
Status dynamic_quantize_linear_kernel(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  if (x.dtype() != DType::kFloat32) return ctx.unsupported_dtype(x.dtype(), 0);
  const float* xd = x.data<float>();
  const int64_t n = x.numel();
  float lo = 0.f, hi = 0.f;
  for (int64_t i = 0; i < n; ++i) {  // NaN compares false: it widens nothing and quantizes to zp
    lo = std::min(lo, xd[i]);
    hi = std::max(hi, xd[i]);
  }
  if (!std::isfinite(lo) || !std::isfinite(hi)) return ctx.error("x holds an infinity: no quantization range");
  // An all-zero x has an empty range: scale 1 quantizes it to zeros, as ONNX Runtime does.
  const float scale = hi == lo ? 1.f : (hi - lo) / 255.f;
  const uint8_t zp = cpu::quantize_value<uint8_t>(static_cast<double>((0.f - lo) / scale), 0);
  uint8_t* yd = ctx.output(0).data<uint8_t>();
  for (int64_t i = 0; i < n; ++i) yd[i] = cpu::quantize_value<uint8_t>(static_cast<double>(xd[i] / scale), zp);
  *ctx.output(1).data<float>() = scale;
  *ctx.output(2).data<uint8_t>() = zp;
  return Status::Ok();
}

}  // namespace
}  // namespace kiln

KILN_REGISTER_CPU_KERNEL("QuantizeLinear", kiln::quantize_linear_kernel);
KILN_REGISTER_CPU_KERNEL("DequantizeLinear", kiln::dequantize_linear_kernel);
KILN_REGISTER_CPU_KERNEL("DynamicQuantizeLinear", kiln::dynamic_quantize_linear_kernel);
