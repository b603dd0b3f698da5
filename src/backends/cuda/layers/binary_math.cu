// Binary arithmetic with numpy broadcasting: Add, Sub, Mul, Div, Mod (floats), Pow, Max, Min, PRelu, and the
// last step of Mean. Integers wrap on overflow (as the CPU reference); integer Div/Mod are left to
// the CPU, which reports a zero divisor as an error (a kernel cannot).
#include <cmath>

#include "backends/cuda/layers/ew_device.cuh"

namespace kiln::cuda::ew {
namespace {

struct Add {
  static constexpr unsigned kTypes = kFloats | kInts;
  float alpha;
  template <typename C>
  __device__ C operator()(C a, C b) const {
    if constexpr (std::is_integral_v<C>) return wrap_add(a, b);
    else return a + b;
  }
};
struct Sub {
  static constexpr unsigned kTypes = kFloats | kInts;
  float alpha;
  template <typename C>
  __device__ C operator()(C a, C b) const {
    if constexpr (std::is_integral_v<C>) return wrap_sub(a, b);
    else return a - b;
  }
};
struct Mul {
  static constexpr unsigned kTypes = kFloats | kInts;
  float alpha;
  template <typename C>
  __device__ C operator()(C a, C b) const {
    if constexpr (std::is_integral_v<C>) return wrap_mul(a, b);
    else return a * b;
  }
};
struct Div {
  static constexpr unsigned kTypes = kFloats;
  float alpha;
  __device__ float operator()(float a, float b) const { return a / b; }
};
// Float Mod (fmod=1, required for floats): the result has the dividend's sign.
struct Mod {
  static constexpr unsigned kTypes = kFloats;
  float alpha;
  __device__ float operator()(float a, float b) const { return fmodf(a, b); }
};
// Max/Min propagate NaN (like numpy.maximum and the CPU reference).
struct Max {
  static constexpr unsigned kTypes = kFloats | kInts;
  float alpha;
  template <typename C>
  __device__ C operator()(C a, C b) const {
    if constexpr (!std::is_integral_v<C>)
      if (isnan(a) || isnan(b)) return isnan(a) ? a : b;
    return b > a ? b : a;
  }
};
struct Min {
  static constexpr unsigned kTypes = kFloats | kInts;
  float alpha;
  template <typename C>
  __device__ C operator()(C a, C b) const {
    if constexpr (!std::is_integral_v<C>)
      if (isnan(a) || isnan(b)) return isnan(a) ? a : b;
    return b < a ? b : a;
  }
};
struct PRelu {
  static constexpr unsigned kTypes = kFloats;
  float alpha;
  __device__ float operator()(float x, float slope) const { return x < 0.f ? slope * x : x; }
};
// Mean's last accumulation step: (sum so far + last input) / number of inputs.
struct MeanFinish {
  static constexpr unsigned kTypes = kFloats;
  float alpha;
  __device__ float operator()(float a, float b) const { return (a + b) / alpha; }
};
// Pow of a float base; the exponent may be any of the float or int32/int64 types.
struct Pow {
  __device__ float operator()(float b, float e) const { return powf(b, e); }
  template <typename E>
  __device__ float operator()(float b, E e) const { return powf(b, static_cast<float>(e)); }
};
constexpr unsigned kPowExponentTypes = kFloats | kInts;

template <typename Fn>
bool with_op(BinaryOp op, float alpha, Fn&& fn) {
  switch (op) {
    case BinaryOp::kAdd: fn(Add{alpha}); return true;
    case BinaryOp::kSub: fn(Sub{alpha}); return true;
    case BinaryOp::kMul: fn(Mul{alpha}); return true;
    case BinaryOp::kDiv: fn(Div{alpha}); return true;
    case BinaryOp::kMod: fn(Mod{alpha}); return true;
    case BinaryOp::kMax: fn(Max{alpha}); return true;
    case BinaryOp::kMin: fn(Min{alpha}); return true;
    case BinaryOp::kPRelu: fn(PRelu{alpha}); return true;
    case BinaryOp::kMeanFinish: fn(MeanFinish{alpha}); return true;
    default: return false;
  }
}

}  // namespace
}  // namespace kiln::cuda::ew

namespace kiln::cuda {

bool binary_math_supported(BinaryOp op, DType a, DType b) {
  if (op == BinaryOp::kPow)
    return ew::dispatch<ew::kFloats>(a, [](auto) {}) && ew::dispatch<ew::kPowExponentTypes>(b, [](auto) {});
  if (a != b) return false;
  bool ok = false;
  ew::with_op(op, 0.f, [&](auto f) { ok = ew::dispatch<decltype(f)::kTypes>(a, [](auto) {}); });
  return ok;
}

cudaError_t launch_binary_math(BinaryOp op, float alpha, DType a, DType b, const BroadcastGeometry& g,
                               const void* x, const void* y, void* out, cudaStream_t stream) {
  if (!binary_math_supported(op, a, b)) return cudaErrorNotSupported;
  cudaError_t err = cudaSuccess;
  if (op == BinaryOp::kPow) {
    ew::dispatch<ew::kFloats>(a, [&](auto btag) {
      using B = typename decltype(btag)::type;
      ew::dispatch<ew::kPowExponentTypes>(b, [&](auto etag) {
        using E = typename decltype(etag)::type;
        err = ew::launch_bcast2<B, E, B>(g, x, y, out, ew::Pow{}, stream);
      });
    });
    return err;
  }
  ew::with_op(op, alpha, [&](auto f) {
    ew::dispatch<decltype(f)::kTypes>(a, [&](auto tag) {
      using T = typename decltype(tag)::type;
      err = ew::launch_bcast2<T, T, T>(g, x, y, out, f, stream);
    });
  });
  return err;
}

}  // namespace kiln::cuda
