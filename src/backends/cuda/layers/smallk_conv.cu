// The tensor-core small-reduction convolution (smallk_conv_kernels.hpp): a grayscale stem's 3x3
// window (9 products per output) is one k16 slice of an m16n8k16 tensor-core product.
//
// A 512x512 grayscale stem with 64 outputs computes little (0.3 GFLOP) and writes 32 MiB: the
// write is its time. The CUDA-core kernels (small_channel_conv.cu) spend theirs on issue (each
// output's 9 FMAs, the window's loads and index math per thread): 39-90 us on an H200, cuDNN 27.
// Here a warp takes 16 consecutive output pixels (rows of the product) at a time:
//  - lane (g = lane / 4, t = lane % 4) loads reduction indices 2t, 2t+1, 2t+8, 2t+9 of pixels g
//    and g + 8 (zeros past kh*kw*C and outside the image): the A fragment, 8 loads;
//  - the weights are the B fragments of M / 8 products, in registers for the kernel's life;
//  - the bias seeds the float accumulators; ReLU and rounding follow the products;
//  - the 16 x M tile goes through shared memory (16-byte chunks XOR-swizzled by pixel, so both
//    the fragment writes and the row reads are free of bank conflicts) and out as whole 16-byte
//    chunks: consecutive pixels are consecutive memory in NHWC, so each store instruction writes
//    512 contiguous bytes.
#include <algorithm>

#include "backends/cuda/layers/device_types.cuh"
#include "backends/cuda/layers/mma_sync.cuh"
#include "backends/cuda/layers/smallk_conv_kernels.hpp"

namespace kiln::cuda::kernels {
namespace {

constexpr int kThreads = 256, kWarps = kThreads / 32;

// Two floats rounded to a packed pair of T (one 32-bit fragment register).
template <typename T> struct PairPack;
template <> struct PairPack<__half> {
  static __device__ __forceinline__ uint32_t pack(float lo, float hi) {
    __half2 h = __floats2half2_rn(lo, hi);
    return *reinterpret_cast<uint32_t*>(&h);
  }
};
template <> struct PairPack<__nv_bfloat16> {
  static __device__ __forceinline__ uint32_t pack(float lo, float hi) {
    __nv_bfloat162 h = __floats2bfloat162_rn(lo, hi);
    return *reinterpret_cast<uint32_t*>(&h);
  }
};

template <typename T>
__device__ __forceinline__ uint16_t bits(T v) {
  return *reinterpret_cast<uint16_t*>(&v);
}

// NT products of 8 output channels: M = 8 * NT. A pixel's row in the staging tile is NT 16-byte
// chunks; chunk j of pixel r sits at position j ^ (r % NT) (NT is 2, 4 or 8).
template <typename T, int NT>
__global__ void __launch_bounds__(kThreads, 3) smallk_conv_kernel(const T* __restrict__ x, const T* __restrict__ w,
                                                              const T* __restrict__ b, T* __restrict__ y,
                                                              SmallkConvParams p, int pixels) {
  constexpr int M = 8 * NT, kRow = 16 * NT;  // bytes per pixel row
  __shared__ __align__(16) unsigned char tiles[kWarps][16 * kRow];
  __shared__ __align__(8) float bias[M];
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
  unsigned char* tile = tiles[warp];
  const int K = p.kh * p.kw * p.c;
  // This lane's reduction indices (A columns, B rows): 2t, 2t+1, 2t+8, 2t+9.
  int kdy[4], kdx[4], kc[4];
  bool kin[4];
#pragma unroll
  for (int q = 0; q < 4; ++q) {
    // k = (i * kw + j) * C + c, W's (M, kh, kw, C) order. (Computed, not read from a table in the
    // kernel's parameters: indexing one with k made every thread copy it to local memory first,
    // which cost more than the whole convolution.)
    const int k = 2 * t + (q & 1) + 8 * (q >> 1);
    kin[q] = k < K;
    kc[q] = k % p.c;
    kdx[q] = (k / p.c) % p.kw * p.dw;
    kdy[q] = k / (p.c * p.kw) * p.dh;
  }
  // B fragments (column g of product j is output channel 8j + g); the bias in shared memory (a
  // lane's accumulator columns are channels 8j + 2t, 8j + 2t + 1).
  uint32_t bf[NT][2];
  for (int i = threadIdx.x; i < M; i += kThreads) bias[i] = b ? to_f(b[i]) : 0.f;
#pragma unroll
  for (int j = 0; j < NT; ++j) {
    const T* wm = w + static_cast<int64_t>(8 * j + g) * K;
    uint16_t v[4];
#pragma unroll
    for (int q = 0; q < 4; ++q) v[q] = kin[q] ? bits(wm[2 * t + (q & 1) + 8 * (q >> 1)]) : uint16_t{0};
    bf[j][0] = v[0] | (static_cast<uint32_t>(v[1]) << 16);
    bf[j][1] = v[2] | (static_cast<uint32_t>(v[3]) << 16);
  }
  __syncthreads();  // the bias is staged

  // A: rows g and g + 8 (pixels pix0 + g (+8)), columns this lane's reduction indices.
  auto load_a = [&](int pix0, uint32_t (&a)[4]) {
    uint16_t av[2][4];
#pragma unroll
    for (int half = 0; half < 2; ++half) {
      const int pix = pix0 + g + 8 * half;
      const int ow = pix % p.ow, rest = pix / p.ow, oh = rest % p.oh, n = rest / p.oh;
      const int h0 = oh * p.sh - p.ph, w0 = ow * p.sw - p.pw;
      const T* xn = x + static_cast<int64_t>(n) * p.h * p.w * p.c;
#pragma unroll
      for (int q = 0; q < 4; ++q) {
        const int hh = h0 + kdy[q], ww = w0 + kdx[q];
        const bool in = pix < pixels && kin[q] && hh >= 0 && hh < p.h && ww >= 0 && ww < p.w;
        av[half][q] = in ? bits(xn[(static_cast<int64_t>(hh) * p.w + ww) * p.c + kc[q]]) : uint16_t{0};
      }
    }
    a[0] = av[0][0] | (static_cast<uint32_t>(av[0][1]) << 16);
    a[1] = av[1][0] | (static_cast<uint32_t>(av[1][1]) << 16);
    a[2] = av[0][2] | (static_cast<uint32_t>(av[0][3]) << 16);
    a[3] = av[1][2] | (static_cast<uint32_t>(av[1][3]) << 16);
  };

  // Each warp walks groups of 16 pixels, loading the next group's window while it finishes this one.
  const int warps = gridDim.x * kWarps;
  int group = blockIdx.x * kWarps + warp;
  uint32_t next[4] = {0, 0, 0, 0};
  if (group * 16 < pixels) load_a(group * 16, next);
  for (; group * 16 < pixels; group += warps) {
    const int pix0 = group * 16;
    const uint32_t a[4] = {next[0], next[1], next[2], next[3]};
    if ((group + warps) * 16 < pixels) load_a((group + warps) * 16, next);
#pragma unroll
    for (int j = 0; j < NT; ++j) {
      const float2 bj = *reinterpret_cast<const float2*>(bias + 8 * j + 2 * t);
      float d[4] = {bj.x, bj.y, bj.x, bj.y};
      mma_m16n8k16<T>(d, a, bf[j]);
      if (p.relu)
#pragma unroll
        for (int e = 0; e < 4; ++e) d[e] = d[e] > 0.f || d[e] != d[e] ? d[e] : 0.f;  // NaN stays NaN
      // d[0..1]: pixel g, channels 8j + 2t (+1); d[2..3]: pixel g + 8.
      *reinterpret_cast<uint32_t*>(tile + g * kRow + ((j ^ (g % NT)) << 4) + 4 * t) = PairPack<T>::pack(d[0], d[1]);
      *reinterpret_cast<uint32_t*>(tile + (g + 8) * kRow + ((j ^ ((g + 8) % NT)) << 4) + 4 * t) =
          PairPack<T>::pack(d[2], d[3]);
    }
    __syncwarp();
#pragma unroll
    for (int q = lane; q < 16 * NT; q += 32) {
      const int r = q / NT, j = q % NT;
      if (pix0 + r < pixels)
        *reinterpret_cast<uint4*>(y + static_cast<int64_t>(pix0 + r) * M + 8 * j) =
            *reinterpret_cast<const uint4*>(tile + r * kRow + ((j ^ (r % NT)) << 4));
    }
    __syncwarp();  // the tile is read before the next group's writes
  }
}

template <typename T>
void* kernel_for(int m) {
  switch (m) {
    case 16: return reinterpret_cast<void*>(smallk_conv_kernel<T, 2>);
    case 32: return reinterpret_cast<void*>(smallk_conv_kernel<T, 4>);
    case 64: return reinterpret_cast<void*>(smallk_conv_kernel<T, 8>);
    default: return nullptr;
  }
}

void* kernel_for(DType t, int m) {
  if (t == DType::kFloat16) return kernel_for<__half>(m);
  if (t == DType::kBFloat16) return kernel_for<__nv_bfloat16>(m);
  return nullptr;
}

bool valid(const SmallkConvParams& p) {
  const int64_t pixels = static_cast<int64_t>(p.n) * p.oh * p.ow;
  return p.kh * p.kw * p.c <= kSmallkMaxReduction && p.c >= 1 && pixels >= 1 && pixels <= INT32_MAX / 2;
}

}  // namespace

cudaError_t smallk_conv_setup(DType t, const SmallkConvParams& p, SmallkConvLaunch* launch) {
  void* kernel = kernel_for(t, p.m);
  if (!kernel || !valid(p)) return cudaErrorInvalidValue;
  int device = 0, sms = 0, per_sm = 0;
  cudaError_t e = cudaGetDevice(&device);
  if (e == cudaSuccess) e = cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device);
  if (e == cudaSuccess) e = cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, kThreads, 0);
  if (e != cudaSuccess) return e;
  // A resident grid: each warp loads its weights once and walks groups of 16 pixels.
  const int64_t groups = (static_cast<int64_t>(p.n) * p.oh * p.ow + 15) / 16;
  launch->grid = static_cast<unsigned>(
      std::max<int64_t>(1, std::min<int64_t>((groups + kWarps - 1) / kWarps, static_cast<int64_t>(sms) * std::max(per_sm, 1))));
  return cudaSuccess;
}

cudaError_t smallk_conv(DType t, const void* x, const void* w, const void* b, void* y, const SmallkConvParams& p,
                        const SmallkConvLaunch& launch, cudaStream_t stream) {
  void* kernel = kernel_for(t, p.m);
  if (!kernel || !valid(p) || launch.grid == 0) return cudaErrorInvalidValue;
  if (reinterpret_cast<uintptr_t>(y) % 16 != 0) return cudaErrorMisalignedAddress;
  const int pixels = p.n * p.oh * p.ow;
  void* args[] = {const_cast<void**>(&x), const_cast<void**>(&w), const_cast<void**>(&b), &y,
                  const_cast<SmallkConvParams*>(&p), const_cast<int*>(&pixels)};
  return cudaLaunchKernel(kernel, launch.grid, kThreads, args, 0, stream);
}

}  // namespace kiln::cuda::kernels
