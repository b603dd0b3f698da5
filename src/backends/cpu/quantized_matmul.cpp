// MatMulInteger and QLinearMatMul on the CPU: the operands minus their zero points as int32, a
// batched integer GEMM with numpy matmul broadcasting, then (QLinearMatMul) requantization.
#include <vector>

#include "backends/cpu/broadcast.hpp"
#include "backends/cpu/quant_util.hpp"
#include "ops/infer_util.hpp"

namespace kiln {
namespace {

// Operand dims with numpy's 1-D promotion: A (K) -> [1, K], B (K) -> [K, 1].
Dims promoted(const Dims& d, bool rows) {
  Dims p = d;
  if (p.size() == 1) {
    if (rows) p.insert(p.begin(), 1);
    else p.push_back(1);
  }
  return p;
}

// A scale / zero point of operand A (`rows`) or B as dims that broadcast against the operand:
// one element -> scalar, 1-D -> [M, 1] for A or [1, N] for B, N-D as given.
Dims param_dims(const Dims& p, bool rows) {
  if (dims_numel(p) == 1 && p.size() <= 1) return {};
  if (p.size() == 1) return rows ? Dims{p[0], 1} : Dims{1, p[0]};
  return p;
}

template <typename T>
bool subtract_zero_point(const Tensor& data, const Tensor& zp, Tensor& out) {
  return cpu::broadcast_map<int32_t, T, T>(out, {&data, &zp}, [](auto a, auto b) {
    return static_cast<int32_t>(a) - static_cast<int32_t>(b);
  });
}

// Operand `input` minus its zero point, as int32 of the promoted operand dims.
Expected<Tensor> centered(const KernelContext& ctx, size_t input, const Tensor* zp, bool rows) {
  const Tensor& data = ctx.input(input);
  if (data.dtype() != DType::kInt8 && data.dtype() != DType::kUInt8) return ctx.unsupported_dtype(data.dtype(), input);
  Tensor out(DType::kInt32, promoted(data.dims(), rows));
  const Tensor d = data.reshaped(out.dims());
  const Tensor z = zp ? zp->reshaped(param_dims(zp->dims(), rows)) : Tensor::zeros(data.dtype(), {});
  const bool fits = data.dtype() == DType::kInt8 ? subtract_zero_point<int8_t>(d, z, out)
                                                 : subtract_zero_point<uint8_t>(d, z, out);
  if (!fits) return ctx.error("zero point {} does not broadcast to input {} {}", zp->describe(), input, data.describe());
  return out;
}

// The broadcast of the batch dims of two operands [batch..., M, K] and [batch..., K, N].
struct MatmulBatches {
  Dims batch, a_batch, b_batch;  // a_batch and b_batch padded with leading 1s to batch's rank
  int64_t count = 1;
  // Calls fn(output batch index, A batch index, B batch index) for every output batch entry.
  template <typename Fn>
  void for_each(Fn&& fn) const {
    Dims idx(batch.size(), 0);
    for (int64_t bi = 0; bi < count; ++bi) {
      int64_t a_off = 0, b_off = 0;
      for (size_t i = 0; i < batch.size(); ++i) {  // broadcast dims (size 1) stay at index 0
        a_off = a_off * a_batch[i] + (a_batch[i] == 1 ? 0 : idx[i]);
        b_off = b_off * b_batch[i] + (b_batch[i] == 1 ? 0 : idx[i]);
      }
      fn(bi, a_off, b_off);
      for (size_t i = batch.size(); i-- > 0;) {
        if (++idx[i] < batch[i]) break;
        idx[i] = 0;
      }
    }
  }
};

Expected<MatmulBatches> matmul_batches(const Dims& a, const Dims& b) {
  MatmulBatches mb;
  mb.a_batch.assign(a.begin(), a.end() - 2);
  mb.b_batch.assign(b.begin(), b.end() - 2);
  KILN_ASSIGN_OR_RETURN(mb.batch, broadcast_dims(mb.a_batch, mb.b_batch));
  mb.a_batch.insert(mb.a_batch.begin(), mb.batch.size() - mb.a_batch.size(), 1);
  mb.b_batch.insert(mb.b_batch.begin(), mb.batch.size() - mb.b_batch.size(), 1);
  mb.count = dims_numel(mb.batch);
  return mb;
}

// acc = A x B (int32, wrapping) for centered operands; acc has the output's element count.
void matmul_int32(const Tensor& a, const Tensor& b, const MatmulBatches& mb, Tensor& acc) {
  const int64_t m = a.dim(a.rank() - 2), k = a.dim(a.rank() - 1), n = b.dim(b.rank() - 1);
  mb.for_each([&](int64_t bi, int64_t ai, int64_t bj) {
    cpu::gemm_int32(m, n, k, a.data<int32_t>() + ai * m * k, b.data<int32_t>() + bj * k * n,
                    acc.data<int32_t>() + bi * m * n);
  });
}

Status matmul_integer_kernel(KernelContext& ctx) {
  KILN_ASSIGN_OR_RETURN(Tensor a, centered(ctx, 0, ctx.has_input(2) ? &ctx.input(2) : nullptr, true));
  KILN_ASSIGN_OR_RETURN(Tensor b, centered(ctx, 1, ctx.has_input(3) ? &ctx.input(3) : nullptr, false));
  KILN_ASSIGN_OR_RETURN(MatmulBatches mb, matmul_batches(a.dims(), b.dims()));
  matmul_int32(a, b, mb, ctx.output(0));
  return Status::Ok();
}

// A scale of operand A (`rows`) or B as float32 values of dims [batch..., M, 1] or [batch..., 1, N]
// (`operand` holds the promoted operand dims).
Expected<Tensor> scales_for(const KernelContext& ctx, const Tensor& scale, const Dims& operand, bool rows,
                            const char* what) {
  Dims target = operand;
  target[target.size() - (rows ? 1 : 2)] = 1;
  Tensor out(DType::kFloat32, target);
  const Tensor s = scale.cast(DType::kFloat32).reshaped(param_dims(scale.dims(), rows));
  if (!cpu::broadcast_map<float, float>(out, {&s}, [](float v) { return v; }))
    return ctx.error("{} {} does not broadcast to {}", what, scale.describe(), dims_to_string(target));
  return out;
}

// y = saturate(round(acc * (a_scale * b_scale / y_scale)) + y_zero_point). As in the ONNX reference,
// the multiplier is formed in float32 and applied to the exact accumulator in double.
template <typename Y>
void requantize_matmul(const Tensor& acc, const Tensor& as, const Tensor& bs, float y_scale, int64_t y_zp,
                       const MatmulBatches& mb, int64_t m, int64_t n, Tensor& y) {
  const int32_t* accd = acc.data<int32_t>();
  const float* asd = as.data<float>();
  const float* bsd = bs.data<float>();
  Y* yd = y.data<Y>();
  mb.for_each([&](int64_t bi, int64_t ai, int64_t bj) {
    for (int64_t i = 0; i < m; ++i) {
      const float a_scale = asd[ai * m + i];
      for (int64_t j = 0; j < n; ++j) {
        const float mult = a_scale * bsd[bj * n + j] / y_scale;
        const int64_t o = (bi * m + i) * n + j;
        yd[o] = cpu::quantize_value<Y>(static_cast<double>(accd[o]) * static_cast<double>(mult), y_zp);
      }
    }
  });
}

Status qlinear_matmul_kernel(KernelContext& ctx) {
  KILN_ASSIGN_OR_RETURN(Tensor a, centered(ctx, 0, &ctx.input(2), true));
  KILN_ASSIGN_OR_RETURN(Tensor b, centered(ctx, 3, &ctx.input(5), false));
  KILN_ASSIGN_OR_RETURN(MatmulBatches mb, matmul_batches(a.dims(), b.dims()));
  KILN_ASSIGN_OR_RETURN(Tensor as, scales_for(ctx, ctx.input(1), a.dims(), true, "a_scale"));
  KILN_ASSIGN_OR_RETURN(Tensor bs, scales_for(ctx, ctx.input(4), b.dims(), false, "b_scale"));
  const int64_t m = a.dim(a.rank() - 2), n = b.dim(b.rank() - 1);
  Tensor& y = ctx.output(0);
  Tensor acc(DType::kInt32, y.dims());
  matmul_int32(a, b, mb, acc);
  const float y_scale = static_cast<float>(ctx.input(6).scalar_as_double());
  const int64_t y_zp = cpu::zero_points(&ctx.input(7))[0];
  switch (y.dtype()) {
    case DType::kInt8: requantize_matmul<int8_t>(acc, as, bs, y_scale, y_zp, mb, m, n, y); break;
    case DType::kUInt8: requantize_matmul<uint8_t>(acc, as, bs, y_scale, y_zp, mb, m, n, y); break;
    default: return ctx.unsupported_dtype(y.dtype(), 7);
  }
  return Status::Ok();
}

}  // namespace
}  // namespace kiln

KILN_REGISTER_CPU_KERNEL("MatMulInteger", kiln::matmul_integer_kernel);
KILN_REGISTER_CPU_KERNEL("QLinearMatMul", kiln::qlinear_matmul_kernel);
