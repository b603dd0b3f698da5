// Cast between float32, float16, bfloat16, int8, uint8, int32, int64 and bool, with the CPU
// reference's conversions: float -> integer truncates toward zero and saturates (NaN -> 0),
// integer -> integer wraps, anything -> bool is "!= 0", and every conversion to float16/bfloat16
// rounds once (to nearest even).
#include <limits>

#include "backends/cuda/layers/ew_device.cuh"

namespace kiln::cuda::ew {
namespace {

constexpr unsigned kCastTypes = kFloats | kInts | kI8 | kU8 | kBool;

// Operates on the source's compute type (float for float16/bfloat16) and returns the
// destination's storage type, so nothing is rounded twice.
template <typename D>
struct CastTo {
  template <typename S>
  __device__ D operator()(S v) const {
    if constexpr (std::is_same_v<D, bool>) {
      return v != S(0);
    } else if constexpr (std::is_same_v<D, __half>) {
      if constexpr (std::is_same_v<S, int64_t>) return __ll2half_rn(v);
      else if constexpr (std::is_same_v<S, int32_t>) return __int2half_rn(v);
      else return __float2half_rn(static_cast<float>(v));  // float, or exact in float
    } else if constexpr (std::is_same_v<D, __nv_bfloat16>) {
      if constexpr (std::is_same_v<S, int64_t>) return __ll2bfloat16_rn(v);
      else if constexpr (std::is_same_v<S, int32_t>) return __int2bfloat16_rn(v);
      else return __float2bfloat16_rn(static_cast<float>(v));
    } else if constexpr (std::is_floating_point_v<S> && std::is_integral_v<D>) {
      if (isnan(v)) return D(0);
      // The limits as S: max() may round up (2^63 for int64), so ">=" saturates exactly.
      if (v >= static_cast<S>(std::numeric_limits<D>::max())) return std::numeric_limits<D>::max();
      if (v <= static_cast<S>(std::numeric_limits<D>::lowest())) return std::numeric_limits<D>::lowest();
      return static_cast<D>(v);
    } else {
      return static_cast<D>(v);
    }
  }
};

}  // namespace
}  // namespace kiln::cuda::ew

namespace kiln::cuda {

bool cast_supported(DType from, DType to) {
  return ew::dispatch<ew::kCastTypes>(from, [](auto) {}) && ew::dispatch<ew::kCastTypes>(to, [](auto) {});
}

cudaError_t launch_cast(DType from, DType to, const void* x, void* y, int64_t n, cudaStream_t stream) {
  if (!cast_supported(from, to)) return cudaErrorNotSupported;
  if (n <= 0) return cudaSuccess;
  if (from == to) {
    if (x == y) return cudaSuccess;
    return cudaMemcpyAsync(y, x, static_cast<size_t>(n) * dtype_size(from), cudaMemcpyDeviceToDevice, stream);
  }
  cudaError_t err = cudaSuccess;
  ew::dispatch<ew::kCastTypes>(from, [&](auto stag) {
    using S = typename decltype(stag)::type;
    ew::dispatch<ew::kCastTypes>(to, [&](auto dtag) {
      using D = typename decltype(dtag)::type;
      if constexpr (!std::is_same_v<S, D>) err = ew::launch_map<S, D>(x, y, n, ew::CastTo<D>{}, stream);
    });
  });
  return err;
}

}  // namespace kiln::cuda
