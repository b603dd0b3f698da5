// Gemm and MatMul on the CPU: OpenBLAS for float/double (float16/bfloat16 computed in float), a
// plain loop for integers.
#include <type_traits>

#include "backends/cpu/blas.hpp"
#include "ops/infer_util.hpp"

namespace kiln {
namespace {

template <typename T>
void gemm_any(bool ta, bool tb, int64_t m, int64_t n, int64_t k, T alpha, const T* a, int64_t lda, const T* b,
              int64_t ldb, T beta, T* c, int64_t ldc) {
  if constexpr (std::is_same_v<T, float> || std::is_same_v<T, double>)
    cpu::gemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
  else
    cpu::gemm_naive(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

// Integer Gemm takes alpha and beta truncated to integers.
template <typename T>
T scalar_as(double v) {
  if constexpr (std::is_integral_v<T>) return static_cast<T>(static_cast<int64_t>(v));
  else return static_cast<T>(v);
}

// Runs fn(tag, a, b, c, y) with float inputs for float16/bfloat16 (casting the result back), or
// the native type otherwise. `inputs` may hold undefined tensors (absent C).
template <typename Fn>
Status dispatch_gemm_types(KernelContext& ctx, std::vector<Tensor> inputs, Fn&& fn) {
  const DType t = inputs[0].dtype();
  if (t == DType::kFloat16 || t == DType::kBFloat16) {
    for (Tensor& in : inputs)
      if (in.defined()) in = in.cast(DType::kFloat32);
    Tensor y(DType::kFloat32, *ctx.output_type(0).shape.to_dims());
    fn(TypeTag<float>{}, inputs, y);
    ctx.set_output(0, y.cast(t));
    return Status::Ok();
  }
  auto run = [&](auto tag) { fn(tag, inputs, ctx.output(0)); };
  switch (t) {
    case DType::kFloat32: run(TypeTag<float>{}); break;
    case DType::kFloat64: run(TypeTag<double>{}); break;
    case DType::kInt32: run(TypeTag<int32_t>{}); break;
    case DType::kInt64: run(TypeTag<int64_t>{}); break;
    case DType::kUInt32: run(TypeTag<uint32_t>{}); break;
    case DType::kUInt64: run(TypeTag<uint64_t>{}); break;
    default: return ctx.unsupported_dtype(t, 0);
  }
  return Status::Ok();
}

Status gemm_kernel(KernelContext& ctx) {
  const Tensor& a = ctx.input(0);
  const Tensor& b = ctx.input(1);
  const bool ta = ctx.attrs().i("transA", 0) != 0, tb = ctx.attrs().i("transB", 0) != 0;
  const int64_t m = a.dim(ta ? 1 : 0), k = a.dim(ta ? 0 : 1), n = b.dim(tb ? 0 : 1);
  if (!cpu::blas_sizes_ok(m, n, k)) return ctx.error("sizes exceed the 32-bit limits of the BLAS library");
  const double alpha = ctx.attrs().f("alpha", 1.f), beta = ctx.attrs().f("beta", 1.f);
  const bool use_c = ctx.has_input(2) && beta != 0.0;
  return dispatch_gemm_types(ctx, {a, b, use_c ? ctx.input(2) : Tensor()}, [&](auto tag, std::vector<Tensor>& in, Tensor& y) {
    using T = typename decltype(tag)::type;
    T* yd = y.data<T>();
    if (use_c) {
      // Y starts as C broadcast to (M, N); the GEMM then adds alpha * A * B to beta * Y.
      const Tensor& c = in[2];
      const int64_t c_rows = c.rank() >= 2 ? c.dim(c.rank() - 2) : 1, c_cols = c.rank() >= 1 ? c.dim(c.rank() - 1) : 1;
      const T* cd = c.data<T>();
      for (int64_t i = 0; i < m; ++i)
        for (int64_t j = 0; j < n; ++j) yd[i * n + j] = cd[(c_rows == 1 ? 0 : i) * c_cols + (c_cols == 1 ? 0 : j)];
    }
    gemm_any<T>(ta, tb, m, n, k, scalar_as<T>(alpha), in[0].data<T>(), in[0].dim(1), in[1].data<T>(), in[1].dim(1),
                use_c ? scalar_as<T>(beta) : T(0), yd, n);
  });
}

Status matmul_kernel(KernelContext& ctx) {
  const Tensor& a = ctx.input(0);
  const Tensor& b = ctx.input(1);
  Dims ad = a.dims(), bd = b.dims();
  if (ad.size() == 1) ad.insert(ad.begin(), 1);
  if (bd.size() == 1) bd.push_back(1);
  const int64_t m = ad[ad.size() - 2], k = ad.back(), n = bd.back();
  if (!cpu::blas_sizes_ok(m, n, k)) return ctx.error("sizes exceed the 32-bit limits of the BLAS library");
  Dims a_batch(ad.begin(), ad.end() - 2), b_batch(bd.begin(), bd.end() - 2);
  KILN_ASSIGN_OR_RETURN(Dims batch, broadcast_dims(a_batch, b_batch));
  const size_t br = batch.size();
  a_batch.insert(a_batch.begin(), br - a_batch.size(), 1);
  b_batch.insert(b_batch.begin(), br - b_batch.size(), 1);
  int64_t batch_count = 1, b_batch_count = 1;
  for (size_t i = 0; i < br; ++i) {
    batch_count *= batch[i];
    b_batch_count *= b_batch[i];
  }
  return dispatch_gemm_types(ctx, {a, b}, [&](auto tag, std::vector<Tensor>& in, Tensor& y) {
    using T = typename decltype(tag)::type;
    const T* adata = in[0].data<T>();
    const T* bdata = in[1].data<T>();
    T* ydata = y.data<T>();
    if (b_batch_count == 1 && a_batch == batch) {
      // B is shared by every batch entry and A is contiguous: one GEMM with M' = batch * M.
      gemm_any<T>(false, false, batch_count * m, n, k, T(1), adata, k, bdata, n, T(0), ydata, n);
      return;
    }
    Dims idx(br, 0);
    for (int64_t bi = 0; bi < batch_count; ++bi) {
      int64_t a_off = 0, b_off = 0;
      for (size_t i = 0; i < br; ++i) {  // broadcast dims (size 1) stay at index 0
        a_off = a_off * a_batch[i] + (a_batch[i] == 1 ? 0 : idx[i]);
        b_off = b_off * b_batch[i] + (b_batch[i] == 1 ? 0 : idx[i]);
      }
      gemm_any<T>(false, false, m, n, k, T(1), adata + a_off * m * k, k, bdata + b_off * k * n, n, T(0),
                  ydata + bi * m * n, n);
      for (size_t i = br; i-- > 0;) {
        if (++idx[i] < batch[i]) break;
        idx[i] = 0;
      }
    }
  });
}

}  // namespace
}  // namespace kiln

KILN_REGISTER_CPU_KERNEL("Gemm", kiln::gemm_kernel);
KILN_REGISTER_CPU_KERNEL("MatMul", kiln::matmul_kernel);
