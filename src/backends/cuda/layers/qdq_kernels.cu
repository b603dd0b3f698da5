// Kernels of the INT8 layers (qdq_kernels.hpp). All grid-stride loops with 64-bit indices.
#include <type_traits>

#include "backends/cuda/layers/device_types.cuh"
#include "backends/cuda/layers/qdq_kernels.hpp"

namespace kiln::cuda::kernels {
namespace {

template <typename Q> struct QRange;
template <> struct QRange<int8_t> { static constexpr float lo = -128.f, hi = 127.f; };
template <> struct QRange<uint8_t> { static constexpr float lo = 0.f, hi = 255.f; };

template <typename Q>
__device__ __forceinline__ Q saturate_round(float v, float zp) {
  // rintf rounds half to even (the default rounding mode); NaN goes to the zero point.
  float r = isnan(v) ? 0.f : rintf(v);
  r = fminf(fmaxf(r + zp, QRange<Q>::lo), QRange<Q>::hi);
  return static_cast<Q>(r);
}

__device__ __forceinline__ int64_t param_index(int64_t i, int64_t axis_len, int64_t inner) {
  return axis_len == 1 ? 0 : (i / inner) % axis_len;
}

template <typename X, typename S, typename Q>
__global__ void quantize_kernel(const X* __restrict__ x, const S* __restrict__ scale, const Q* __restrict__ zp,
                                Q* __restrict__ y, int64_t n, int64_t axis_len, int64_t inner) {
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t p = param_index(i, axis_len, inner);
    const float z = zp ? static_cast<float>(zp[p]) : 0.f;
    y[i] = saturate_round<Q>(to_f(x[i]) / to_f(scale[p]), z);
  }
}

// Per tensor (one scale and zero point), 8 elements per thread and step with vector loads and
// stores (x 16-byte and y 8-byte aligned), the n % 8 tail after: the same arithmetic as
// quantize_kernel (a division, not a reciprocal multiply), so the same bits.
template <typename X, typename S, typename Q>
__global__ void quantize_per_tensor_x8_kernel(const X* __restrict__ x, const S* __restrict__ scale,
                                              const Q* __restrict__ zp, Q* __restrict__ y, int64_t n) {
  const float s = to_f(scale[0]);
  const float z = zp ? static_cast<float>(zp[0]) : 0.f;
  const int64_t groups = n / 8, stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  const int64_t first = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  constexpr int kVecs = static_cast<int>(sizeof(X) * 8 / 16);  // int4 loads per 8 elements
  for (int64_t gi = first; gi < groups; gi += stride) {
    alignas(16) X xv[8];
#pragma unroll
    for (int v = 0; v < kVecs; ++v) reinterpret_cast<int4*>(xv)[v] = reinterpret_cast<const int4*>(x + gi * 8)[v];
    alignas(8) Q out[8];
#pragma unroll
    for (int e = 0; e < 8; ++e) out[e] = saturate_round<Q>(to_f(xv[e]) / s, z);
    *reinterpret_cast<uint2*>(y + gi * 8) = *reinterpret_cast<const uint2*>(out);
  }
  for (int64_t i = groups * 8 + first; i < n; i += stride) y[i] = saturate_round<Q>(to_f(x[i]) / s, z);
}

template <typename Q, typename S>
__global__ void dequantize_kernel(const Q* __restrict__ x, const S* __restrict__ scale, const Q* __restrict__ zp,
                                  S* __restrict__ y, int64_t n, int64_t axis_len, int64_t inner) {
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t p = param_index(i, axis_len, inner);
    const int z = zp ? static_cast<int>(zp[p]) : 0;
    y[i] = from_f<S>(static_cast<float>(static_cast<int>(x[i]) - z) * to_f(scale[p]));
  }
}

template <typename Fn>
bool dispatch_q(DType t, Fn&& fn) {
  if (t == DType::kInt8) fn(int8_t{});
  else if (t == DType::kUInt8) fn(uint8_t{});
  else return false;
  return true;
}

// A 32 (spatial) x 32 (channel) tile per block through shared memory: reads coalesce along the
// spatial dim of x, writes along the channels of y; channels c..cp-1 are written as zeros.
__global__ void nchw_to_nhwc_kernel(const int8_t* __restrict__ x, int8_t* __restrict__ y, int64_t c, int64_t hw,
                                    int64_t cp) {
  __shared__ int8_t tile[32][33];
  const int64_t s0 = static_cast<int64_t>(blockIdx.x) * 32, c0 = static_cast<int64_t>(blockIdx.y) * 32;
  const int64_t img = blockIdx.z;
  for (int j = threadIdx.y; j < 32; j += blockDim.y) {
    const int64_t ch = c0 + j, s = s0 + threadIdx.x;
    if (s < hw) tile[j][threadIdx.x] = ch < c ? x[(img * c + ch) * hw + s] : int8_t{0};
  }
  __syncthreads();
  for (int j = threadIdx.y; j < 32; j += blockDim.y) {
    const int64_t s = s0 + j, ch = c0 + threadIdx.x;
    if (s < hw && ch < cp) y[(img * hw + s) * cp + ch] = tile[threadIdx.x][j];
  }
}

// One thread per output (img, oy, ox, m): m fastest, so neighbouring threads share the x window.
__global__ void qconv_direct_kernel(const int8_t* __restrict__ x, const int8_t* __restrict__ w,
                                    int32_t* __restrict__ acc, QConvShape s) {
  const int64_t total = s.n * s.oh * s.ow * s.mp;
  const int64_t words = s.cp / 4;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t m = i % s.mp, ox = (i / s.mp) % s.ow, oy = (i / (s.mp * s.ow)) % s.oh;
    const int64_t img = i / (s.mp * s.ow * s.oh);
    int sum = 0;
    for (int64_t ky = 0; ky < s.kh; ++ky) {
      const int64_t iy = oy * s.stride_h - s.pad_h + ky;
      if (iy < 0 || iy >= s.h) continue;
      for (int64_t kx = 0; kx < s.kw; ++kx) {
        const int64_t ix = ox * s.stride_w - s.pad_w + kx;
        if (ix < 0 || ix >= s.w) continue;
        // cp is a multiple of 4 and the buffers 256-byte aligned: 4-byte loads are aligned.
        const int* xp = reinterpret_cast<const int*>(x + ((img * s.h + iy) * s.w + ix) * s.cp);
        const int* wp = reinterpret_cast<const int*>(w + ((m * s.kh + ky) * s.kw + kx) * s.cp);
        for (int64_t c = 0; c < words; ++c) sum = __dp4a(xp[c], wp[c], sum);
      }
    }
    acc[i] = sum;
  }
}

// One thread per 4-byte word of col (cp is a multiple of 4; buffers 256-byte aligned).
__global__ void im2col_nhwc_kernel(const int* __restrict__ x, int* __restrict__ col, QConvShape s) {
  const int64_t wc = s.cp / 4;
  const int64_t total = s.n * s.oh * s.ow * s.kh * s.kw * wc;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    int64_t t = i / wc;
    const int64_t c = i % wc;
    const int64_t kx = t % s.kw;
    t /= s.kw;
    const int64_t ky = t % s.kh;
    t /= s.kh;
    const int64_t ox = t % s.ow;
    t /= s.ow;
    const int64_t oy = t % s.oh;
    const int64_t img = t / s.oh;
    const int64_t iy = oy * s.stride_h - s.pad_h + ky, ix = ox * s.stride_w - s.pad_w + kx;
    col[i] = iy >= 0 && iy < s.h && ix >= 0 && ix < s.w ? x[((img * s.h + iy) * s.w + ix) * wc + c] : 0;
  }
}

__global__ void qmatmul_direct_kernel(const int8_t* __restrict__ x, const int8_t* __restrict__ w,
                                     int32_t* __restrict__ acc, int64_t rows, int64_t n, int64_t k) {
  const int64_t total = rows * n, words = k / 4;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int* xp = reinterpret_cast<const int*>(x + (i / n) * k);
    const int* wp = reinterpret_cast<const int*>(w + (i % n) * k);
    int sum = 0;
    for (int64_t c = 0; c < words; ++c) sum = __dp4a(xp[c], wp[c], sum);
    acc[i] = sum;
  }
}

__device__ __forceinline__ float acc_at(const QEpilogueParams& p, int64_t i) {
  return p.acc_f32 ? p.acc_f32[i] : static_cast<float>(p.acc[i]);
}

template <typename Y, typename Z>
__global__ void q_epilogue_kernel(QEpilogueParams p) {
  const int64_t total = p.images * p.spatial * p.channels;
  const Z* z = static_cast<const Z*>(p.z);
  Y* y = static_cast<Y*>(p.y);
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    // i walks y's order.
    int64_t c, s, img;
    if (p.nchw) {
      s = i % p.spatial;
      c = (i / p.spatial) % p.channels;
      img = i / (p.spatial * p.channels);
    } else {
      c = i % p.channels;
      s = (i / p.channels) % p.spatial;
      img = i / (p.channels * p.spatial);
    }
    float v = acc_at(p, (img * p.spatial + s) * p.acc_stride + c) * p.alpha[c];
    if (p.bias) v += p.bias[c];
    if (z) v += to_f(z[i]) * p.z_scale;
    if (p.relu) v = fmaxf(v, 0.f);
    if constexpr (std::is_same_v<Y, int8_t>) y[i] = saturate_round<int8_t>(v / p.y_scale, 0.f);
    else y[i] = from_f<Y>(v);
  }
}

// NCHW output: a 32 (spatial) x 32 (channel) tile per block goes through shared memory, so the
// int32 sums (channels innermost) are read and Z / Y (spatial innermost) written coalesced.
template <typename Y, typename Z>
__global__ void q_epilogue_nchw_kernel(QEpilogueParams p) {
  __shared__ float tile[32][33];
  const int64_t s0 = static_cast<int64_t>(blockIdx.x) * 32, c0 = static_cast<int64_t>(blockIdx.y) * 32;
  const int64_t img = blockIdx.z;
  for (int j = threadIdx.y; j < 32; j += blockDim.y) {
    const int64_t s = s0 + j, c = c0 + threadIdx.x;
    if (s < p.spatial && c < p.channels) {
      float v = acc_at(p, (img * p.spatial + s) * p.acc_stride + c) * p.alpha[c];
      if (p.bias) v += p.bias[c];
      tile[j][threadIdx.x] = v;
    }
  }
  __syncthreads();
  const Z* z = static_cast<const Z*>(p.z);
  Y* y = static_cast<Y*>(p.y);
  for (int j = threadIdx.y; j < 32; j += blockDim.y) {
    const int64_t c = c0 + j, s = s0 + threadIdx.x;
    if (c < p.channels && s < p.spatial) {
      const int64_t i = (img * p.channels + c) * p.spatial + s;
      float v = tile[threadIdx.x][j];
      if (z) v += to_f(z[i]) * p.z_scale;
      if (p.relu) v = fmaxf(v, 0.f);
      if constexpr (std::is_same_v<Y, int8_t>) y[i] = saturate_round<int8_t>(v / p.y_scale, 0.f);
      else y[i] = from_f<Y>(v);
    }
  }
}

template <typename Y, typename Z>
void launch_epilogue_as(const QEpilogueParams& p, cudaStream_t stream) {
  const int64_t sx = (p.spatial + 31) / 32, cy = (p.channels + 31) / 32;
  if (p.nchw && sx <= INT32_MAX && cy <= 65535 && p.images <= 65535) {
    const dim3 grid(static_cast<unsigned>(sx), static_cast<unsigned>(cy), static_cast<unsigned>(p.images));
    q_epilogue_nchw_kernel<Y, Z><<<grid, dim3(32, 8), 0, stream>>>(p);
  } else {
    q_epilogue_kernel<Y, Z><<<grid_for(p.images * p.spatial * p.channels), 256, 0, stream>>>(p);
  }
}

template <typename Y>
bool launch_epilogue(const QEpilogueParams& p, cudaStream_t stream) {
  if (!p.z) {
    launch_epilogue_as<Y, float>(p, stream);
    return true;
  }
  if (p.z_dtype == DType::kInt8) {
    launch_epilogue_as<Y, int8_t>(p, stream);
    return true;
  }
  return dispatch_gpu_float(p.z_dtype, [&](auto ztag) { launch_epilogue_as<Y, decltype(ztag)>(p, stream); });
}

}  // namespace

cudaError_t quantize_linear(DType xt, const void* x, DType st, const void* scale, DType yt, const void* zp, void* y,
                            int64_t n, int64_t axis_len, int64_t inner, cudaStream_t stream) {
  if (n == 0) return cudaSuccess;
  bool ok = false;
  dispatch_gpu_float(xt, [&](auto xtag) {
    using X = decltype(xtag);
    dispatch_gpu_float(st, [&](auto stag) {
      using S = decltype(stag);
      ok = dispatch_q(yt, [&](auto qtag) {
        using Q = decltype(qtag);
        const bool aligned = reinterpret_cast<uintptr_t>(x) % 16 == 0 && reinterpret_cast<uintptr_t>(y) % 8 == 0;
        if (axis_len == 1 && aligned) {
          quantize_per_tensor_x8_kernel<X, S, Q><<<grid_for((n + 7) / 8), 256, 0, stream>>>(
              static_cast<const X*>(x), static_cast<const S*>(scale), static_cast<const Q*>(zp), static_cast<Q*>(y), n);
          return;
        }
        quantize_kernel<X, S, Q><<<grid_for(n), 256, 0, stream>>>(static_cast<const X*>(x), static_cast<const S*>(scale),
                                                                   static_cast<const Q*>(zp), static_cast<Q*>(y), n,
                                                                   axis_len, inner);
      });
    });
  });
  return ok ? cudaGetLastError() : cudaErrorInvalidValue;
}

cudaError_t dequantize_linear(DType xt, const void* x, DType st, const void* scale, const void* zp, void* y,
                              int64_t n, int64_t axis_len, int64_t inner, cudaStream_t stream) {
  if (n == 0) return cudaSuccess;
  bool ok = false;
  dispatch_q(xt, [&](auto qtag) {
    using Q = decltype(qtag);
    ok = dispatch_gpu_float(st, [&](auto stag) {
      using S = decltype(stag);
      dequantize_kernel<Q, S><<<grid_for(n), 256, 0, stream>>>(static_cast<const Q*>(x), static_cast<const S*>(scale),
                                                               static_cast<const Q*>(zp), static_cast<S*>(y), n,
                                                               axis_len, inner);
    });
  });
  return ok ? cudaGetLastError() : cudaErrorInvalidValue;
}

cudaError_t nchw_to_nhwc_int8(const int8_t* x, int8_t* y, int64_t n, int64_t c, int64_t hw, int64_t cp,
                              cudaStream_t stream) {
  if (n * hw * cp == 0) return cudaSuccess;
  const int64_t sx = (hw + 31) / 32, cy = (cp + 31) / 32;
  if (sx > INT32_MAX || cy > 65535 || n > 65535) return cudaErrorInvalidValue;
  const dim3 grid(static_cast<unsigned>(sx), static_cast<unsigned>(cy), static_cast<unsigned>(n));
  nchw_to_nhwc_kernel<<<grid, dim3(32, 8), 0, stream>>>(x, y, c, hw, cp);
  return cudaGetLastError();
}

cudaError_t qconv_direct(const int8_t* x, const int8_t* w, int32_t* acc, const QConvShape& s, cudaStream_t stream) {
  const int64_t total = s.n * s.oh * s.ow * s.mp;
  if (total == 0) return cudaSuccess;
  qconv_direct_kernel<<<grid_for(total), 256, 0, stream>>>(x, w, acc, s);
  return cudaGetLastError();
}

cudaError_t im2col_nhwc_int8(const int8_t* x, int8_t* col, const QConvShape& s, cudaStream_t stream) {
  const int64_t total = s.n * s.oh * s.ow * s.kh * s.kw * (s.cp / 4);
  if (total == 0) return cudaSuccess;
  if (s.cp % 4 != 0) return cudaErrorInvalidValue;
  im2col_nhwc_kernel<<<grid_for(total), 256, 0, stream>>>(reinterpret_cast<const int*>(x), reinterpret_cast<int*>(col),
                                                          s);
  return cudaGetLastError();
}

cudaError_t qmatmul_direct(const int8_t* x, const int8_t* w, int32_t* acc, int64_t rows, int64_t n, int64_t k,
                           cudaStream_t stream) {
  if (rows * n == 0) return cudaSuccess;
  if (k % 4 != 0) return cudaErrorInvalidValue;
  qmatmul_direct_kernel<<<grid_for(rows * n), 256, 0, stream>>>(x, w, acc, rows, n, k);
  return cudaGetLastError();
}

cudaError_t q_epilogue(const QEpilogueParams& p, cudaStream_t stream) {
  if (p.images * p.spatial * p.channels == 0) return cudaSuccess;
  bool ok = false;
  if (p.y_dtype == DType::kInt8) ok = launch_epilogue<int8_t>(p, stream);
  else dispatch_gpu_float(p.y_dtype, [&](auto ytag) { ok = launch_epilogue<decltype(ytag)>(p, stream); });
  return ok ? cudaGetLastError() : cudaErrorInvalidValue;
}

}  // namespace kiln::cuda::kernels
