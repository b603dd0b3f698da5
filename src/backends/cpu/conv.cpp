// Conv and ConvTranspose on the CPU: im2col + GEMM (OpenBLAS) per (image, group); 1x1 stride-1
// convolutions skip im2col, 2-D depthwise ones are direct. float16/bfloat16 are computed in float.
#include <algorithm>
#include <memory>

#include "backends/cpu/blas.hpp"
#include "backends/cpu/im2col.hpp"
#include "ops/op_registry.hpp"

namespace kiln {
namespace {

using cpu::gemm;

Dims spatial(const Dims& d) { return Dims(d.begin() + 2, d.end()); }
int64_t product(const Dims& d) {
  int64_t p = 1;
  for (int64_t v : d) p *= v;
  return p;
}

template <typename T>
void add_bias(T* y, const T* bias, int64_t channels, int64_t size) {
  for (int64_t c = 0; c < channels; ++c) {
    T b = bias[c];
    T* row = y + c * size;
    for (int64_t i = 0; i < size; ++i) row[i] += b;
  }
}

// Direct 2-D convolution of one input plane with one filter, added to `y` (depthwise layers: a
// GEMM with one output row would mostly pay for im2col). Each (row, tap) pair runs over the
// output columns whose input column is inside the image.
template <typename T>
void depthwise_plane_2d(const T* x, const T* w, T* y, const Window& win) {
  const int64_t ih_n = win.in[0], iw_n = win.in[1], oh_n = win.out[0], ow_n = win.out[1];
  const int64_t sh = win.strides[0], sw = win.strides[1], dh = win.dilations[0], dw = win.dilations[1];
  for (int64_t oh = 0; oh < oh_n; ++oh) {
    T* yrow = y + oh * ow_n;
    for (int64_t kh = 0; kh < win.kernel[0]; ++kh) {
      const int64_t ih = oh * sh + kh * dh - win.pads_begin[0];
      if (ih < 0 || ih >= ih_n) continue;
      const T* xrow = x + ih * iw_n;
      for (int64_t kw = 0; kw < win.kernel[1]; ++kw) {
        const T wv = w[kh * win.kernel[1] + kw];
        const int64_t start = kw * dw - win.pads_begin[1];  // input column of output column 0
        const int64_t lo = start >= 0 ? 0 : (-start + sw - 1) / sw;
        const int64_t hi = start >= iw_n ? 0 : std::min(ow_n, (iw_n - start + sw - 1) / sw);
        if (sw == 1) {
          for (int64_t ow = lo; ow < hi; ++ow) yrow[ow] += wv * xrow[ow + start];
        } else {
          for (int64_t ow = lo; ow < hi; ++ow) yrow[ow] += wv * xrow[ow * sw + start];
        }
      }
    }
  }
}

// Y[n, g] = W[g] (Mg x Cg*k) * im2col(X[n, g]) (Cg*k x out).
template <typename T>
void conv_compute(const Tensor& x, const Tensor& w, const Tensor* b, Tensor& y, const Window& win, int64_t group) {
  const int64_t n_images = x.dim(0), c = x.dim(1), m = w.dim(0);
  const int64_t cg = c / group, mg = m / group;
  const int64_t in_size = product(win.in), out_size = product(win.out), ksize = product(win.kernel);
  const int64_t k = cg * ksize;
  if (cg == 1 && win.rank() == 2) {
    // One input channel per group: each output channel is a direct 2-D convolution.
    T* yd = y.data<T>();
    std::fill(yd, yd + y.numel(), T(0));
    for (int64_t n = 0; n < n_images; ++n) {
      for (int64_t oc = 0; oc < m; ++oc)
        depthwise_plane_2d(x.data<T>() + (n * c + oc / mg) * in_size, w.data<T>() + oc * ksize,
                           yd + (n * m + oc) * out_size, win);
      if (b) add_bias(yd + n * m * out_size, b->data<T>(), m, out_size);
    }
    return;
  }
  bool pointwise = true;
  for (size_t i = 0; i < win.rank(); ++i)
    pointwise &= win.kernel[i] == 1 && win.strides[i] == 1 && win.pads_begin[i] == 0 && win.pads_end[i] == 0;
  // Not value-initialised: im2col writes every element.
  std::unique_ptr<T[]> col(pointwise ? nullptr : new T[static_cast<size_t>(k * out_size)]);
  const T* xd = x.data<T>();
  const T* wd = w.data<T>();
  T* yd = y.data<T>();
  for (int64_t n = 0; n < n_images; ++n) {
    for (int64_t g = 0; g < group; ++g) {
      const T* xg = xd + (n * c + g * cg) * in_size;
      const T* cols = xg;
      if (!pointwise) {
        cpu::im2col(xg, cg, win, col.get());
        cols = col.get();
      }
      T* yg = yd + (n * m + g * mg) * out_size;
      gemm(false, false, mg, out_size, k, T(1), wd + g * mg * k, k, cols, out_size, T(0), yg, out_size);
    }
    if (b) add_bias(yd + n * m * out_size, b->data<T>(), m, out_size);
  }
}

// Y[n, g] = col2im(W[g]^T (Mg*k x Cg) * X[n, g] (Cg x in)); the forward window maps Y onto X.
template <typename T>
void conv_transpose_compute(const Tensor& x, const Tensor& w, const Tensor* b, Tensor& y, const Window& win,
                            int64_t group) {
  const int64_t n_images = x.dim(0), c = x.dim(1);
  const int64_t cg = c / group, mg = w.dim(1), m = mg * group;
  const int64_t in_size = product(win.in), out_size = product(win.out), ksize = product(win.kernel);
  Window fwd = win;  // in conv terms: the image is Y (win.out), the output positions are X (win.in)
  std::swap(fwd.in, fwd.out);
  std::unique_ptr<T[]> col(new T[static_cast<size_t>(mg * ksize * in_size)]);  // the GEMM writes it all
  const T* xd = x.data<T>();
  const T* wd = w.data<T>();
  T* yd = y.data<T>();
  std::fill(yd, yd + y.numel(), T(0));
  for (int64_t n = 0; n < n_images; ++n) {
    for (int64_t g = 0; g < group; ++g) {
      const T* xg = xd + (n * c + g * cg) * in_size;
      const T* wg = wd + g * cg * mg * ksize;
      gemm(true, false, mg * ksize, in_size, cg, T(1), wg, mg * ksize, xg, in_size, T(0), col.get(), in_size);
      cpu::col2im_add(col.get(), mg, fwd, yd + (n * m + g * mg) * out_size);
    }
    if (b) add_bias(yd + n * m * out_size, b->data<T>(), m, out_size);
  }
}

template <bool kTranspose>
Status conv_kernel(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  const Tensor& w = ctx.input(1);
  const Tensor* b = ctx.has_input(2) ? &ctx.input(2) : nullptr;
  const int64_t group = ctx.attrs().i("group", 1);
  Tensor& y = ctx.output(0);
  Window win;
  if constexpr (kTranspose) {
    KILN_ASSIGN_OR_RETURN(win, resolve_transposed_window(ctx.node(), spatial(x.dims()), spatial(w.dims())));
  } else {
    Dims kernel = spatial(w.dims());
    KILN_ASSIGN_OR_RETURN(win, resolve_window(ctx.node(), spatial(x.dims()), &kernel, false));
  }
  if (y.numel() == 0) return Status::Ok();
  const int64_t gemm_k = kTranspose ? x.dim(1) / group : w.dim(1) * product(win.kernel);
  if (!cpu::blas_sizes_ok(product(win.out) * product(win.kernel), product(win.in) * product(win.kernel), gemm_k))
    return ctx.error("tensor sizes exceed the 32-bit limits of the BLAS library");
  auto run = [&](auto tag, const Tensor& xx, const Tensor& ww, const Tensor* bb, Tensor& yy) {
    using T = typename decltype(tag)::type;
    if constexpr (kTranspose) conv_transpose_compute<T>(xx, ww, bb, yy, win, group);
    else conv_compute<T>(xx, ww, bb, yy, win, group);
  };
  switch (x.dtype()) {
    case DType::kFloat32: run(TypeTag<float>{}, x, w, b, y); return Status::Ok();
    case DType::kFloat64: run(TypeTag<double>{}, x, w, b, y); return Status::Ok();
    case DType::kFloat16:
    case DType::kBFloat16: {
      Tensor xf = x.cast(DType::kFloat32), wf = w.cast(DType::kFloat32);
      Tensor bf = b ? b->cast(DType::kFloat32) : Tensor();
      Tensor yf(DType::kFloat32, y.dims());
      run(TypeTag<float>{}, xf, wf, b ? &bf : nullptr, yf);
      ctx.set_output(0, yf.cast(x.dtype()));
      return Status::Ok();
    }
    default: return ctx.unsupported_dtype(x.dtype(), 0);
  }
}

}  // namespace
}  // namespace kiln

KILN_REGISTER_CPU_KERNEL("Conv", kiln::conv_kernel<false>);
KILN_REGISTER_CPU_KERNEL("ConvTranspose", kiln::conv_kernel<true>);
