// kiln.FusedConv and kiln.NHWC on the CPU: the references for the CUDA layers and for checking
// the fusion and layout passes. kiln.NHWC runs the wrapped op's kernel on an NCHW copy.
// kiln.FusedConv Runs the ONNX Conv kernel in float32 on NCHW copies, then adds Z and applies the
// activation in float32 (as cuDNN's fused call does), rounding once to the output dtype; a head
// (inputs 4, 5) reads that rounded Y in float32 and is rounded once more.
#include <algorithm>

#include "backends/cpu/copy_util.hpp"
#include "ops/fused_conv.hpp"
#include "ops/op_registry.hpp"

namespace kiln {
namespace {

// y = Transpose(x, perm), contiguous.
Tensor permute(const Tensor& x, const std::vector<int64_t>& perm) {
  const std::vector<int64_t> strides = contiguous_strides(x.dims());
  Dims dims;
  std::vector<int64_t> src_strides;
  for (int64_t p : perm) {
    dims.push_back(x.dim(static_cast<int>(p)));
    src_strides.push_back(strides[static_cast<size_t>(p)]);
  }
  Tensor y(x.dtype(), dims);
  if (y.numel() > 0) strided_copy(y.raw_data(), x.raw_data(), dims, src_strides, dtype_size(x.dtype()));
  return y;
}

// The head: H (N, K, spatial...) = HW (K, 1.., M) . Y (N, M, spatial...) + HB (K), all float32.
Tensor apply_head(const Tensor& y, const Tensor& hw, const Tensor& hb) {
  const int64_t n = y.dim(0), m = y.dim(1), k = hw.dim(0), plane = y.numel() / std::max<int64_t>(1, n * m);
  Dims dims = y.dims();
  dims[1] = k;
  Tensor h(DType::kFloat32, dims);
  const float *yd = y.data<float>(), *wd = hw.data<float>(), *bd = hb.numel() ? hb.data<float>() : nullptr;
  float* hd = h.data<float>();
  for (int64_t b = 0; b < n; ++b)
    for (int64_t o = 0; o < k; ++o) {
      float* out = hd + (b * k + o) * plane;
      for (int64_t i = 0; i < plane; ++i) out[i] = bd ? bd[o] : 0.f;
      for (int64_t c = 0; c < m; ++c) {
        const float wv = wd[o * m + c];
        const float* in = yd + (b * m + c) * plane;
        for (int64_t i = 0; i < plane; ++i) out[i] += wv * in[i];
      }
    }
  return h;
}

Status fused_conv_kernel(KernelContext& ctx) {
  const DType dtype = ctx.input(0).dtype();
  if (dtype != DType::kFloat32 && dtype != DType::kFloat16 && dtype != DType::kBFloat16)
    return ctx.unsupported_dtype(dtype, 0);
  const bool nhwc = ctx.attrs().s("layout", "NCHW") == "NHWC";
  const size_t rank = static_cast<size_t>(ctx.input(0).rank());
  auto to_nchw = [&](const Tensor& t) {
    Tensor f = t.cast(DType::kFloat32);
    return nhwc ? permute(f, nhwc_to_nchw_perm(rank)) : f;
  };
  Tensor x = to_nchw(ctx.input(0)), w = to_nchw(ctx.input(1));
  Tensor b = ctx.has_input(2) ? ctx.input(2).cast(DType::kFloat32) : Tensor();
  Dims y_dims = *ctx.output_type(0).shape.to_dims();
  if (nhwc) {
    Dims d;
    for (int64_t p : nhwc_to_nchw_perm(rank)) d.push_back(y_dims[static_cast<size_t>(p)]);
    y_dims = d;
  }
  if (ctx.has_input(4)) y_dims[1] = w.dim(0);  // the conv's own output, before the head
  CpuKernelFn conv = OpRegistry::instance().cpu_kernel("", "Conv");
  if (!conv) return ctx.error("the CPU Conv kernel is not registered");
  KernelContext conv_ctx(ctx.node(), {&x, &w, ctx.has_input(2) ? &b : nullptr},
                         {TensorType{DType::kFloat32, Shape::from_dims(y_dims)}}, nullptr);
  KILN_RETURN_IF_ERROR(conv(conv_ctx));
  Tensor y = conv_ctx.output(0);
  float* yd = y.data<float>();
  if (ctx.has_input(3)) {
    Tensor z = to_nchw(ctx.input(3));
    if (z.numel() != y.numel()) return ctx.error("Z {} does not have Y's size", ctx.input(3).describe());
    const float* zd = z.data<float>();
    for (int64_t i = 0; i < y.numel(); ++i) yd[i] += zd[i];
  }
  const std::string act = ctx.attrs().s("activation", "");
  if (act == "Relu") {
    for (int64_t i = 0; i < y.numel(); ++i) yd[i] = yd[i] > 0.f ? yd[i] : 0.f;
  } else if (!act.empty()) {
    return ctx.error("activation '{}' must be empty or Relu", act);
  }
  if (ctx.has_input(4)) {
    if (!nhwc) return ctx.error("a head (input 4) needs layout NHWC");
    y = apply_head(y.cast(dtype).cast(DType::kFloat32), ctx.input(4).cast(DType::kFloat32),
                   ctx.has_input(5) ? ctx.input(5).cast(DType::kFloat32) : Tensor());
  }
  if (nhwc) y = permute(y, nchw_to_nhwc_perm(rank));
  ctx.set_output(0, y.cast(dtype));
  return Status::Ok();
}

Status nhwc_kernel(KernelContext& ctx) {
  const std::string op = ctx.attrs().s("op", "");
  CpuKernelFn inner = nhwc_wrappable(op) ? OpRegistry::instance().cpu_kernel("", op) : nullptr;
  if (!inner) return ctx.error("op '{}' cannot run in NHWC layout", op);
  // X (and a ConvTranspose's W) to NCHW; B as it is.
  std::vector<Tensor> nchw(ctx.num_inputs());
  std::vector<const Tensor*> inputs;
  for (size_t i = 0; i < ctx.num_inputs(); ++i) {
    if (!ctx.has_input(i)) {
      inputs.push_back(nullptr);
      continue;
    }
    if (i < 2) {
      if (ctx.input(i).rank() != 4) return ctx.error("input {} must be 4-D NHWC, got {}", i, ctx.input(i).describe());
      nchw[i] = permute(ctx.input(i), nhwc_to_nchw_perm(4));
      inputs.push_back(&nchw[i]);
    } else {
      inputs.push_back(&ctx.input(i));
    }
  }
  Dims y_dims;
  for (int64_t p : nhwc_to_nchw_perm(4)) y_dims.push_back((*ctx.output_type(0).shape.to_dims())[static_cast<size_t>(p)]);
  KernelContext inner_ctx(ctx.node(), inputs, {TensorType{ctx.output_type(0).dtype, Shape::from_dims(y_dims)}}, nullptr);
  KILN_RETURN_IF_ERROR(inner(inner_ctx));
  ctx.set_output(0, permute(inner_ctx.output(0), nchw_to_nhwc_perm(4)));
  return Status::Ok();
}

}  // namespace
}  // namespace kiln

KILN_REGISTER_CPU_KERNEL_DOMAIN("kiln", "FusedConv", kiln::fused_conv_kernel);
KILN_REGISTER_CPU_KERNEL_DOMAIN("kiln", "NHWC", kiln::nhwc_kernel);
