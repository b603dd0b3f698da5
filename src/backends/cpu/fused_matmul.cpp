// kiln.FusedMatMul on the CPU (the reference the CUDA layer is tested against): one GEMM over
// A's rows (batch dims folded into M), then bias and activation, in float for float16/bfloat16.
#include <algorithm>

#include "backends/cpu/blas.hpp"
#include "ops/op_registry.hpp"

namespace kiln {
namespace {

template <typename C>
void matmul_bias(const C* a, const C* b, const C* bias, C* y, int64_t rows, int64_t k, int64_t n, bool relu) {
  for (int64_t r = 0; r < rows; ++r) std::copy(bias, bias + n, y + r * n);
  cpu::gemm(false, false, rows, n, k, C(1), a, k, b, n, C(1), y, n);
  if (relu)
    for (int64_t i = 0; i < rows * n; ++i) y[i] = std::max(y[i], C(0));
}

Status fused_matmul_kernel(KernelContext& ctx) {
  const Tensor &a = ctx.input(0), &b = ctx.input(1), &bias = ctx.input(2);
  if (a.rank() < 2 || b.rank() != 2 || bias.rank() != 1 || a.dim(a.rank() - 1) != b.dim(0) ||
      bias.dim(0) != b.dim(1))
    return ctx.error("shapes A {} B {} bias {} do not fit", dims_to_string(a.dims()), dims_to_string(b.dims()),
                     dims_to_string(bias.dims()));
  const int64_t k = b.dim(0), n = b.dim(1), rows = a.numel() / std::max<int64_t>(k, 1);
  if (!cpu::blas_sizes_ok(rows, n, k)) return ctx.error("sizes exceed the 32-bit limits of the BLAS library");
  const bool relu = ctx.attrs().s("activation", "") == "Relu";
  const DType t = a.dtype();
  if (t == DType::kFloat16 || t == DType::kBFloat16) {
    Tensor af = a.cast(DType::kFloat32), bf = b.cast(DType::kFloat32), cf = bias.cast(DType::kFloat32);
    Tensor y(DType::kFloat32, *ctx.output_type(0).shape.to_dims());
    matmul_bias<float>(af.data<float>(), bf.data<float>(), cf.data<float>(), y.data<float>(), rows, k, n, relu);
    ctx.set_output(0, y.cast(t));
    return Status::Ok();
  }
  if (t == DType::kFloat32) {
    matmul_bias<float>(a.data<float>(), b.data<float>(), bias.data<float>(), ctx.output(0).data<float>(), rows, k, n,
                       relu);
    return Status::Ok();
  }
  if (t == DType::kFloat64) {
    matmul_bias<double>(a.data<double>(), b.data<double>(), bias.data<double>(), ctx.output(0).data<double>(), rows,
                        k, n, relu);
    return Status::Ok();
  }
  return ctx.unsupported_dtype(t, 0);
}

}  // namespace
}  // namespace kiln

KILN_REGISTER_CPU_KERNEL_DOMAIN("kiln", "FusedMatMul", kiln::fused_matmul_kernel);
