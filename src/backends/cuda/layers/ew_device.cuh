// Device side of the elementwise kernels: storage <-> compute type conversion, 16-byte vectors,
// and the generic kernels (one per arity) that apply a functor:
//   map_kernel     1 input, contiguous (unary ops, Cast)
//   bcast2_kernel  2 inputs with numpy broadcasting (binary ops, comparisons)
//   bcast3_kernel  3 inputs with numpy broadcasting (Where)
// Functors take and return compute-type values (float for half/bfloat16). Only .cu files include
// this header.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>
#include <type_traits>

#include "backends/cuda/layers/ew_kernels.hpp"

namespace kiln::cuda::ew {

template <typename T> struct Compute { using type = T; };
template <> struct Compute<__half> { using type = float; };
template <> struct Compute<__nv_bfloat16> { using type = float; };
template <typename T> using compute_t = typename Compute<T>::type;

template <typename T>
inline constexpr bool is_float_v = std::is_same_v<T, float> || std::is_same_v<T, __half> ||
                                   std::is_same_v<T, __nv_bfloat16> || std::is_same_v<T, double>;

template <typename T>
__device__ __forceinline__ compute_t<T> load_c(T v) {
  if constexpr (std::is_same_v<T, __half>) return __half2float(v);
  else if constexpr (std::is_same_v<T, __nv_bfloat16>) return __bfloat162float(v);
  else return v;
}

template <typename T, typename C>
__device__ __forceinline__ T store_c(C v) {
  if constexpr (std::is_same_v<T, __half>) return __float2half_rn(static_cast<float>(v));
  else if constexpr (std::is_same_v<T, __nv_bfloat16>) return __float2bfloat16_rn(static_cast<float>(v));
  else return static_cast<T>(v);
}

// V elements moved by one load/store instruction (16 bytes at most).
template <typename T, int V>
struct alignas(sizeof(T) * V) Vec {
  T v[V];
};

constexpr int kThreads = 256;

inline unsigned grid_for(int64_t items) {
  int64_t b = (items + kThreads - 1) / kThreads;
  // Beyond ~1M blocks the grid-stride loops take over (grid.x could go higher, but no faster).
  return static_cast<unsigned>(b < 1 ? 1 : (b > (1 << 20) ? (1 << 20) : b));
}

inline bool aligned(const void* p, size_t bytes) { return reinterpret_cast<uintptr_t>(p) % bytes == 0; }

template <typename... T>
constexpr int vec_width() {
  size_t largest = 1;
  ((largest = sizeof(T) > largest ? sizeof(T) : largest), ...);
  return static_cast<int>(16 / largest);
}

// ---------------------------------------------------------------- unary, contiguous

template <int V, typename In, typename Out, typename Op>
__global__ void __launch_bounds__(kThreads) map_kernel(const In* __restrict__ x, Out* __restrict__ y, int64_t n, Op op) {
  const int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
  const int64_t first = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const int64_t nv = n / V;
  for (int64_t i = first; i < nv; i += step) {
    const Vec<In, V> a = reinterpret_cast<const Vec<In, V>*>(x)[i];
    Vec<Out, V> r;
#pragma unroll
    for (int k = 0; k < V; ++k) r.v[k] = store_c<Out>(op(load_c(a.v[k])));
    reinterpret_cast<Vec<Out, V>*>(y)[i] = r;
  }
  if constexpr (V > 1)
    for (int64_t i = nv * V + first; i < n; i += step) y[i] = store_c<Out>(op(load_c(x[i])));
}

template <typename In, typename Out, typename Op>
cudaError_t launch_map(const void* x, void* y, int64_t n, Op op, cudaStream_t stream) {
  if (n <= 0) return cudaSuccess;
  constexpr int V = vec_width<In, Out>();
  const auto* in = static_cast<const In*>(x);
  auto* out = static_cast<Out*>(y);
  if (V > 1 && n >= V && aligned(x, sizeof(In) * V) && aligned(y, sizeof(Out) * V))
    map_kernel<V><<<grid_for(n / V), kThreads, 0, stream>>>(in, out, n, op);
  else
    map_kernel<1><<<grid_for(n), kThreads, 0, stream>>>(in, out, n, op);
  return cudaGetLastError();
}

// ---------------------------------------------------------------- broadcasting, 2 and 3 inputs

// BroadcastGeometry with the innermost dim counted in groups of V elements. An input whose
// innermost stride is 1 is read as a V-vector; one whose stride is 0 gives one value for all V.
template <int N>
struct BcastArgs {
  int rank;
  int64_t dims[kMaxBroadcastRank];
  int64_t strides[N][kMaxBroadcastRank];
  bool vec[N];
  int64_t groups;
};

template <int N>
BcastArgs<N> make_bcast_args(const BroadcastGeometry& g, int v) {
  BcastArgs<N> a{};
  a.rank = g.rank;
  for (int d = 0; d < g.rank; ++d) a.dims[d] = g.dims[d];
  a.dims[g.rank - 1] /= v;
  for (int k = 0; k < N; ++k) {
    for (int d = 0; d < g.rank; ++d) a.strides[k][d] = g.strides[k][d];
    a.vec[k] = g.strides[k][g.rank - 1] != 0;
    a.strides[k][g.rank - 1] *= v;
  }
  a.groups = g.numel / v;
  return a;
}

// Element offsets of each input for output group i.
template <int N, typename Index>
__device__ __forceinline__ void bcast_offsets(const BcastArgs<N>& g, Index i, Index (&off)[N]) {
#pragma unroll
  for (int k = 0; k < N; ++k) off[k] = 0;
  Index rem = i;
  for (int d = g.rank - 1; d > 0; --d) {
    const Index dim = static_cast<Index>(g.dims[d]);
    const Index c = rem % dim;
    rem /= dim;
#pragma unroll
    for (int k = 0; k < N; ++k) off[k] += c * static_cast<Index>(g.strides[k][d]);
  }
#pragma unroll
  for (int k = 0; k < N; ++k) off[k] += rem * static_cast<Index>(g.strides[k][0]);
}

template <int V, typename T>
__device__ __forceinline__ Vec<compute_t<T>, V> load_group(const T* p, bool vec) {
  Vec<compute_t<T>, V> r;
  if (V > 1 && vec) {
    const Vec<T, V> x = *reinterpret_cast<const Vec<T, V>*>(p);
#pragma unroll
    for (int k = 0; k < V; ++k) r.v[k] = load_c(x.v[k]);
  } else {
    const compute_t<T> x = load_c(*p);
#pragma unroll
    for (int k = 0; k < V; ++k) r.v[k] = x;
  }
  return r;
}

// No __restrict__: variadic ops accumulate into the output (out == a).
template <int V, typename Index, typename A, typename B, typename Out, typename Op>
__global__ void __launch_bounds__(kThreads) bcast2_kernel(BcastArgs<2> g, const A* a, const B* b, Out* out, Op op) {
  const Index step = static_cast<Index>(gridDim.x) * blockDim.x;
  for (Index i = static_cast<Index>(blockIdx.x) * blockDim.x + threadIdx.x; i < static_cast<Index>(g.groups);
       i += step) {
    Index off[2];
    bcast_offsets<2, Index>(g, i, off);
    const auto va = load_group<V>(a + off[0], g.vec[0]);
    const auto vb = load_group<V>(b + off[1], g.vec[1]);
    Vec<Out, V> r;
#pragma unroll
    for (int k = 0; k < V; ++k) r.v[k] = store_c<Out>(op(va.v[k], vb.v[k]));
    *reinterpret_cast<Vec<Out, V>*>(out + i * V) = r;
  }
}

template <int V, typename Index, typename A, typename B, typename C, typename Out, typename Op>
__global__ void __launch_bounds__(kThreads) bcast3_kernel(BcastArgs<3> g, const A* a, const B* b, const C* c,
                                                          Out* out, Op op) {
  const Index step = static_cast<Index>(gridDim.x) * blockDim.x;
  for (Index i = static_cast<Index>(blockIdx.x) * blockDim.x + threadIdx.x; i < static_cast<Index>(g.groups);
       i += step) {
    Index off[3];
    bcast_offsets<3, Index>(g, i, off);
    const auto va = load_group<V>(a + off[0], g.vec[0]);
    const auto vb = load_group<V>(b + off[1], g.vec[1]);
    const auto vc = load_group<V>(c + off[2], g.vec[2]);
    Vec<Out, V> r;
#pragma unroll
    for (int k = 0; k < V; ++k) r.v[k] = store_c<Out>(op(va.v[k], vb.v[k], vc.v[k]));
    *reinterpret_cast<Vec<Out, V>*>(out + i * V) = r;
  }
}

// Whether V-wide groups work: the innermost dim divides into them and every pointer read or
// written as a vector is aligned for it.
template <int N>
bool can_vectorize(const BroadcastGeometry& g, int v, const void* const (&ptrs)[N], const size_t (&sizes)[N],
                   const void* out, size_t out_size) {
  if (v <= 1 || g.dims[g.rank - 1] % v != 0 || !aligned(out, out_size * v)) return false;
  for (int k = 0; k < N; ++k)
    if (g.strides[k][g.rank - 1] != 0 && !aligned(ptrs[k], sizes[k] * v)) return false;
  return true;
}

// 32-bit index math (much cheaper divisions) whenever every offset fits.
inline bool small_index(const BroadcastGeometry& g) { return g.numel < (int64_t{1} << 31); }

template <typename A, typename B, typename Out, typename Op>
cudaError_t launch_bcast2(const BroadcastGeometry& g, const void* a, const void* b, void* out, Op op,
                          cudaStream_t stream) {
  if (g.numel <= 0) return cudaSuccess;
  constexpr int V = vec_width<A, B, Out>();
  const auto* pa = static_cast<const A*>(a);
  const auto* pb = static_cast<const B*>(b);
  auto* po = static_cast<Out*>(out);
  const void* const ptrs[2] = {a, b};
  const size_t sizes[2] = {sizeof(A), sizeof(B)};
  const bool vec = can_vectorize<2>(g, V, ptrs, sizes, out, sizeof(Out));
  const int v = vec ? V : 1;
  const BcastArgs<2> args = make_bcast_args<2>(g, v);
  const unsigned grid = grid_for(args.groups);
  if (small_index(g)) {
    if (vec) bcast2_kernel<V, uint32_t><<<grid, kThreads, 0, stream>>>(args, pa, pb, po, op);
    else bcast2_kernel<1, uint32_t><<<grid, kThreads, 0, stream>>>(args, pa, pb, po, op);
  } else {
    if (vec) bcast2_kernel<V, int64_t><<<grid, kThreads, 0, stream>>>(args, pa, pb, po, op);
    else bcast2_kernel<1, int64_t><<<grid, kThreads, 0, stream>>>(args, pa, pb, po, op);
  }
  return cudaGetLastError();
}

template <typename A, typename B, typename C, typename Out, typename Op>
cudaError_t launch_bcast3(const BroadcastGeometry& g, const void* a, const void* b, const void* c, void* out, Op op,
                          cudaStream_t stream) {
  if (g.numel <= 0) return cudaSuccess;
  constexpr int V = vec_width<A, B, C, Out>();
  const auto* pa = static_cast<const A*>(a);
  const auto* pb = static_cast<const B*>(b);
  const auto* pc = static_cast<const C*>(c);
  auto* po = static_cast<Out*>(out);
  const void* const ptrs[3] = {a, b, c};
  const size_t sizes[3] = {sizeof(A), sizeof(B), sizeof(C)};
  const bool vec = can_vectorize<3>(g, V, ptrs, sizes, out, sizeof(Out));
  const int v = vec ? V : 1;
  const BcastArgs<3> args = make_bcast_args<3>(g, v);
  const unsigned grid = grid_for(args.groups);
  if (small_index(g)) {
    if (vec) bcast3_kernel<V, uint32_t><<<grid, kThreads, 0, stream>>>(args, pa, pb, pc, po, op);
    else bcast3_kernel<1, uint32_t><<<grid, kThreads, 0, stream>>>(args, pa, pb, pc, po, op);
  } else {
    if (vec) bcast3_kernel<V, int64_t><<<grid, kThreads, 0, stream>>>(args, pa, pb, pc, po, op);
    else bcast3_kernel<1, int64_t><<<grid, kThreads, 0, stream>>>(args, pa, pb, pc, po, op);
  }
  return cudaGetLastError();
}

// ---------------------------------------------------------------- dtype dispatch (host)

template <typename T> struct Tag { using type = T; };

// Which storage types a functor accepts, as a bit set.
enum TypeBits : unsigned {
  kF32 = 1u << 0, kF16 = 1u << 1, kBF16 = 1u << 2, kI32 = 1u << 3, kI64 = 1u << 4,
  kI8 = 1u << 5, kU8 = 1u << 6, kBool = 1u << 7,
  kFloats = kF32 | kF16 | kBF16,
  kInts = kI32 | kI64,
};

// Calls fn(Tag<T>{}) for dtype t if it is in `bits` (fn is instantiated only for those types);
// returns false otherwise.
template <unsigned Bits, typename Fn>
bool dispatch(DType t, Fn&& fn) {
  switch (t) {
    case DType::kFloat32: if constexpr ((Bits & kF32) != 0) { fn(Tag<float>{}); return true; } break;
    case DType::kFloat16: if constexpr ((Bits & kF16) != 0) { fn(Tag<__half>{}); return true; } break;
    case DType::kBFloat16: if constexpr ((Bits & kBF16) != 0) { fn(Tag<__nv_bfloat16>{}); return true; } break;
    case DType::kInt32: if constexpr ((Bits & kI32) != 0) { fn(Tag<int32_t>{}); return true; } break;
    case DType::kInt64: if constexpr ((Bits & kI64) != 0) { fn(Tag<int64_t>{}); return true; } break;
    case DType::kInt8: if constexpr ((Bits & kI8) != 0) { fn(Tag<int8_t>{}); return true; } break;
    case DType::kUInt8: if constexpr ((Bits & kU8) != 0) { fn(Tag<uint8_t>{}); return true; } break;
    case DType::kBool: if constexpr ((Bits & kBool) != 0) { fn(Tag<bool>{}); return true; } break;
    default: break;
  }
  return false;
}

// Integer arithmetic that wraps (signed overflow is undefined in C++, CUDA included).
template <typename T>
__device__ __forceinline__ T wrap_add(T a, T b) {
  using U = std::make_unsigned_t<T>;
  return static_cast<T>(static_cast<U>(a) + static_cast<U>(b));
}
template <typename T>
__device__ __forceinline__ T wrap_sub(T a, T b) {
  using U = std::make_unsigned_t<T>;
  return static_cast<T>(static_cast<U>(a) - static_cast<U>(b));
}
template <typename T>
__device__ __forceinline__ T wrap_mul(T a, T b) {
  using U = std::make_unsigned_t<T>;
  using W = std::conditional_t<(sizeof(U) < sizeof(unsigned)), unsigned, U>;
  return static_cast<T>(static_cast<U>(static_cast<W>(static_cast<U>(a)) * static_cast<W>(static_cast<U>(b))));
}

}  // namespace kiln::cuda::ew
