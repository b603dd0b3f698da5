// ReduceSum/Mean/Max/Min of the middle dim of (outer, len, inner): a warp or block per
// contiguous row when inner == 1, else a thread per (outer, inner) column (coalesced across
// threads). Floats accumulate in float, int32/int64 in int64 (wrapping, as the CPU reference).
// An empty reduction gives 0 (Sum), NaN (Mean), -inf/+inf or the type's limits (Max/Min).
#include <limits>

#include "backends/cuda/layers/norm_kernels.hpp"
#include "backends/cuda/layers/row_reduce.cuh"

namespace kiln::cuda::ew {
namespace {

template <typename T>
using acc_t = std::conditional_t<std::is_integral_v<T>, int64_t, float>;

template <ReduceKind K, typename T>
struct Reducer {
  using A = acc_t<T>;
  __device__ static A init() {
    if constexpr (K == ReduceKind::kSum || K == ReduceKind::kMean) return A(0);
    else if constexpr (std::is_integral_v<T>)
      return K == ReduceKind::kMax ? A(std::numeric_limits<T>::lowest()) : A(std::numeric_limits<T>::max());
    else return K == ReduceKind::kMax ? -INFINITY : INFINITY;
  }
  // Folds x (an element or another partial result) into a; Max/Min propagate NaN.
  __device__ static A step(A a, A x) {
    if constexpr (K == ReduceKind::kSum || K == ReduceKind::kMean) {
      if constexpr (std::is_integral_v<A>) return wrap_add(a, x);
      else return a + x;
    } else if constexpr (std::is_integral_v<A>) {
      return K == ReduceKind::kMax ? (x > a ? x : a) : (x < a ? x : a);
    } else {
      const bool better = K == ReduceKind::kMax ? x > a : x < a;
      return (better || isnan(x)) && !isnan(a) ? x : a;
    }
  }
  __device__ static T finish(A a, int64_t n) {
    if constexpr (K == ReduceKind::kMean) return store_c<T>(a / static_cast<float>(n));
    else return store_c<T>(a);
  }
};

template <int G, ReduceKind K, typename T>
__global__ void __launch_bounds__(G == 32 ? 256 : G) reduce_rows(const T* x, T* y, int64_t rows, int64_t len) {
  using R = Reducer<K, T>;
  using A = typename R::A;
  __shared__ A smem[G / 32];
  const RowGroup<G> rg;
  for (int64_t row = rg.first; row < rows; row += rg.step) {
    const T* xr = x + row * len;
    A acc = R::init();
    for (int64_t k = rg.lane; k < len; k += G) acc = R::step(acc, static_cast<A>(load_c(xr[k])));
    acc = group_reduce<G>(acc, [](A a, A b) { return R::step(a, b); }, smem);
    if (rg.lane == 0) y[row] = R::finish(acc, len);
  }
}

template <ReduceKind K, typename T>
__global__ void __launch_bounds__(kThreads) reduce_cols(const T* x, T* y, int64_t outer, int64_t len, int64_t inner) {
  using R = Reducer<K, T>;
  using A = typename R::A;
  const int64_t cols = outer * inner;
  const int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t c = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; c < cols; c += step) {
    const T* xc = x + (c / inner) * len * inner + c % inner;
    A acc = R::init();
    for (int64_t k = 0; k < len; ++k) acc = R::step(acc, static_cast<A>(load_c(xc[k * inner])));
    y[c] = R::finish(acc, len);
  }
}

template <ReduceKind K, typename T>
cudaError_t launch(const void* xv, void* yv, int64_t outer, int64_t len, int64_t inner, cudaStream_t s) {
  const auto* x = static_cast<const T*>(xv);
  auto* y = static_cast<T*>(yv);
  if (inner > 1)
    reduce_cols<K><<<grid_for(outer * inner), kThreads, 0, s>>>(x, y, outer, len, inner);
  else if (len <= 1024)
    reduce_rows<32, K><<<row_grid(outer, 32, 256), 256, 0, s>>>(x, y, outer, len);
  else
    reduce_rows<512, K><<<row_grid(outer, 512, 512), 512, 0, s>>>(x, y, outer, len);
  return cudaGetLastError();
}

constexpr unsigned types_of(ReduceKind k) { return k == ReduceKind::kMean ? kFloats : kFloats | kInts; }

}  // namespace
}  // namespace kiln::cuda::ew

namespace kiln::cuda {

bool reduce_supported(ReduceKind kind, DType t) {
  return kind == ReduceKind::kMean ? ew::dispatch<ew::types_of(ReduceKind::kMean)>(t, [](auto) {})
                                   : ew::dispatch<ew::types_of(ReduceKind::kSum)>(t, [](auto) {});
}

cudaError_t launch_reduce(ReduceKind kind, DType t, const void* x, void* y, int64_t outer, int64_t len,
                          int64_t inner, cudaStream_t stream) {
  if (!reduce_supported(kind, t)) return cudaErrorNotSupported;
  if (outer * inner <= 0) return cudaSuccess;  // len may be 0: the outputs get the empty-set value
  cudaError_t err = cudaSuccess;
  auto run = [&](auto kind_tag, auto tag) {
    constexpr ReduceKind K = decltype(kind_tag)::value;
    err = ew::launch<K, typename decltype(tag)::type>(x, y, outer, len, inner, stream);
  };
  using Sum = std::integral_constant<ReduceKind, ReduceKind::kSum>;
  using Mean = std::integral_constant<ReduceKind, ReduceKind::kMean>;
  using Max = std::integral_constant<ReduceKind, ReduceKind::kMax>;
  using Min = std::integral_constant<ReduceKind, ReduceKind::kMin>;
  switch (kind) {
    case ReduceKind::kSum: ew::dispatch<ew::types_of(ReduceKind::kSum)>(t, [&](auto tag) { run(Sum{}, tag); }); break;
    case ReduceKind::kMean: ew::dispatch<ew::types_of(ReduceKind::kMean)>(t, [&](auto tag) { run(Mean{}, tag); }); break;
    case ReduceKind::kMax: ew::dispatch<ew::types_of(ReduceKind::kMax)>(t, [&](auto tag) { run(Max{}, tag); }); break;
    case ReduceKind::kMin: ew::dispatch<ew::types_of(ReduceKind::kMin)>(t, [&](auto tag) { run(Min{}, tag); }); break;
  }
  return err;
}

}  // namespace kiln::cuda
