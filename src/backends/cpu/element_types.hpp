// Element-type helpers for CPU kernels: dispatch over a set of dtypes, load/store through the
// compute type (float for Half/BFloat16), and well-defined conversions between element types.
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>
#include <type_traits>

#include "ir/dtype.hpp"

namespace kiln::cpu {

template <typename T>
inline constexpr bool is_float_v = std::is_floating_point_v<T> || std::is_same_v<T, Half> ||
                                   std::is_same_v<T, BFloat16>;
template <typename T>
inline constexpr bool is_int_v = std::is_integral_v<T> && !std::is_same_v<T, bool>;

// Which dtypes a kernel accepts, as a bit set.
enum TypeSet : unsigned {
  kFloatTypes = 1u << 0,     // float32, float16, bfloat16, float64
  kSignedInts = 1u << 1,     // int8 .. int64
  kUnsignedInts = 1u << 2,   // uint8 .. uint64
  kBoolType = 1u << 3,
  kIntTypes = kSignedInts | kUnsignedInts,
  kSignedTypes = kFloatTypes | kSignedInts,
  kNumericTypes = kFloatTypes | kIntTypes,
  kAllTypes = kNumericTypes | kBoolType,
};

template <typename T>
constexpr bool in_type_set(unsigned set) {
  if constexpr (is_float_v<T>) return (set & kFloatTypes) != 0;
  else if constexpr (std::is_same_v<T, bool>) return (set & kBoolType) != 0;
  else if constexpr (std::is_signed_v<T>) return (set & kSignedInts) != 0;
  else return (set & kUnsignedInts) != 0;
}

// Like dispatch_dtype, but only for the dtypes in `Set` (fn is instantiated only for those);
// returns false for any other dtype, so the caller can report it unsupported.
template <unsigned Set, typename Fn>
bool dispatch_types(DType t, Fn&& fn) {
  bool ok = false;
  dispatch_dtype(t, [&](auto tag) {
    using T = typename decltype(tag)::type;
    if constexpr (in_type_set<T>(Set)) {
      fn(tag);
      ok = true;
    }
  });
  return ok;
}

// Loads an element in its compute type (Half/BFloat16 -> float).
template <typename T>
inline compute_t<T> load(T v) {
  return static_cast<compute_t<T>>(v);
}

// Converts a value to element type D without undefined behaviour: float -> integer truncates
// toward zero and saturates (NaN -> 0); integer -> integer wraps; anything -> bool is "!= 0".
template <typename D, typename S>
inline D convert(S v) {
  if constexpr (std::is_same_v<S, Half> || std::is_same_v<S, BFloat16>) {
    return convert<D>(static_cast<float>(v));
  } else if constexpr (std::is_same_v<D, bool>) {
    return v != S(0);
  } else if constexpr (std::is_same_v<D, Half> || std::is_same_v<D, BFloat16>) {
    if constexpr (std::is_same_v<S, float> || (std::is_integral_v<S> && sizeof(S) <= 2)) {
      return D(static_cast<float>(v));  // exact in float: one rounding
    } else {
      // Going through float rounds twice. Rounding to float "to odd" (an inexact result gets an
      // odd last bit) keeps the information the second rounding needs, so the result is as if
      // rounded once. (int64 beyond 2^53 still rounds to double first.)
      const double d = static_cast<double>(v);
      float f = static_cast<float>(d);
      if (static_cast<double>(f) != d && std::isfinite(f) && (float_bits(f) & 1u) == 0)
        f = std::nextafter(f, d > f ? INFINITY : -INFINITY);
      return D(f);
    }
  } else if constexpr (std::is_floating_point_v<S> && std::is_integral_v<D>) {
    if (std::isnan(v)) return D(0);
    // The limits as S: max() may round up (2^63 for int64), so ">=" saturates exactly.
    if (v >= static_cast<S>(std::numeric_limits<D>::max())) return std::numeric_limits<D>::max();
    if (v <= static_cast<S>(std::numeric_limits<D>::lowest())) return std::numeric_limits<D>::lowest();
    return static_cast<D>(v);
  } else {
    return static_cast<D>(v);
  }
}

// Stores a compute-type value as element type T.
template <typename T, typename C>
inline T store(C v) {
  if constexpr (std::is_same_v<T, C>) return v;
  else return convert<T>(v);
}

// Integer arithmetic that wraps on overflow (signed overflow is undefined in C++).
template <typename T>
inline T wrap_add(T a, T b) {
  using U = std::make_unsigned_t<T>;
  return static_cast<T>(static_cast<U>(static_cast<U>(a) + static_cast<U>(b)));
}
template <typename T>
inline T wrap_sub(T a, T b) {
  using U = std::make_unsigned_t<T>;
  return static_cast<T>(static_cast<U>(static_cast<U>(a) - static_cast<U>(b)));
}
template <typename T>
inline T wrap_mul(T a, T b) {
  using U = std::make_unsigned_t<T>;
  // uint16 * uint16 promotes to (signed) int and can overflow: multiply in at least unsigned int.
  using W = std::conditional_t<(sizeof(U) < sizeof(unsigned)), unsigned, U>;
  return static_cast<T>(static_cast<U>(static_cast<W>(static_cast<U>(a)) * static_cast<W>(static_cast<U>(b))));
}
template <typename T>
inline T wrap_neg(T a) {
  return wrap_sub(T(0), a);
}

}  // namespace kiln::cpu
