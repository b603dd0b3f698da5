// kiln.FusedMatMul on the CPU (the reference the CUDA layer is tested against): one GEMM over
// A's rows (batch dims folded into M) onto bias (+ residual), then the activation; in float for
// float16/bfloat16.
#include <algorithm>
#include <cmath>

#include "backends/cpu/blas.hpp"
#include "ops/op_registry.hpp"

namespace kiln {
namespace {

// y starts as bias (+ residual); the GEMM adds A·B to it.
enum class Activation { kNone, kRelu, kGeluTanh };

template <typename C>
void matmul_bias(const C* a, const C* b, const C* bias, const C* residual, C* y, int64_t rows, int64_t k, int64_t n,
                 Activation act) {
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t j = 0; j < n; ++j) y[r * n + j] = bias[j] + (residual ? residual[r * n + j] : C(0));
  cpu::gemm(false, false, rows, n, k, C(1), a, k, b, n, C(1), y, n);
  if (act == Activation::kRelu)
    for (int64_t i = 0; i < rows * n; ++i) y[i] = std::max(y[i], C(0));
  if (act == Activation::kGeluTanh) {
    const C c = C(0.7978845608028654);  // sqrt(2/pi)
    for (int64_t i = 0; i < rows * n; ++i) {
      const C x = y[i];
      y[i] = C(0.5) * x * (C(1) + std::tanh(c * (x + C(0.044715) * x * x * x)));
    }
  }
}

Status fused_matmul_kernel(KernelContext& ctx) {
  const Tensor &a = ctx.input(0), &b = ctx.input(1), &bias = ctx.input(2);
  if (a.rank() < 2 || b.rank() != 2 || bias.rank() != 1 || a.dim(a.rank() - 1) != b.dim(0) ||
      bias.dim(0) != b.dim(1))
    return ctx.error("shapes A {} B {} bias {} do not fit", dims_to_string(a.dims()), dims_to_string(b.dims()),
                     dims_to_string(bias.dims()));
  const int64_t k = b.dim(0), n = b.dim(1), rows = a.numel() / std::max<int64_t>(k, 1);
  if (!cpu::blas_sizes_ok(rows, n, k)) return ctx.error("sizes exceed the 32-bit limits of the BLAS library");
  const std::string act_name = ctx.attrs().s("activation", "");
  const Activation act = act_name == "Relu"       ? Activation::kRelu
                          : act_name == "GeluTanh" ? Activation::kGeluTanh
                                                   : Activation::kNone;
  const Tensor* res = ctx.has_input(3) ? &ctx.input(3) : nullptr;
  if (res && (res->numel() != rows * n || res->dtype() != a.dtype()))
    return ctx.error("residual {} does not fit the output", dims_to_string(res->dims()));
  const DType t = a.dtype();
  if (t == DType::kFloat16 || t == DType::kBFloat16) {
    Tensor af = a.cast(DType::kFloat32), bf = b.cast(DType::kFloat32), cf = bias.cast(DType::kFloat32);
    Tensor rf = res ? res->cast(DType::kFloat32) : Tensor();
    Tensor y(DType::kFloat32, *ctx.output_type(0).shape.to_dims());
    matmul_bias<float>(af.data<float>(), bf.data<float>(), cf.data<float>(), res ? rf.data<float>() : nullptr,
                       y.data<float>(), rows, k, n, act);
    ctx.set_output(0, y.cast(t));
    return Status::Ok();
  }
  if (t == DType::kFloat32) {
    matmul_bias<float>(a.data<float>(), b.data<float>(), bias.data<float>(), res ? res->data<float>() : nullptr,
                       ctx.output(0).data<float>(), rows, k, n, act);
    return Status::Ok();
  }
  if (t == DType::kFloat64) {
    matmul_bias<double>(a.data<double>(), b.data<double>(), bias.data<double>(), res ? res->data<double>() : nullptr,
                        ctx.output(0).data<double>(), rows, k, n, act);
    return Status::Ok();
  }
  return ctx.unsupported_dtype(t, 0);
}

}  // namespace
}  // namespace kiln

KILN_REGISTER_CPU_KERNEL_DOMAIN("kiln", "FusedMatMul", kiln::fused_matmul_kernel);
