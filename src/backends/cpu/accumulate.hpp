// Accumulator types and conversions shared by the CPU reduction-style kernels (Reduce*, CumSum,
// Einsum, ...): float16/bfloat16 accumulate in float, float32 in double (the reference backend is
// the oracle other backends are checked against, so its long sums should not drift), integers in
// 64 bits with wrap-around (two's complement, as a fixed-width sum would). Results are stored
// back into T.
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>
#include <type_traits>

#include "ir/dtype.hpp"

namespace kiln::cpu {

template <typename T> struct AccOf { using type = compute_t<T>; };
template <> struct AccOf<float> { using type = double; };
template <> struct AccOf<int8_t> { using type = int64_t; };
template <> struct AccOf<int16_t> { using type = int64_t; };
template <> struct AccOf<int32_t> { using type = int64_t; };
template <> struct AccOf<uint8_t> { using type = uint64_t; };
template <> struct AccOf<uint16_t> { using type = uint64_t; };
template <> struct AccOf<uint32_t> { using type = uint64_t; };
template <typename T> using acc_t = typename AccOf<T>::type;

template <typename T> inline constexpr bool is_float_like_v =
    std::is_floating_point_v<T> || std::is_same_v<T, Half> || std::is_same_v<T, BFloat16>;

template <typename A, typename T> inline A load_acc(T x) {
  return static_cast<A>(static_cast<compute_t<T>>(x));
}

// Integer + and * wrap (computed unsigned: signed overflow would be undefined behaviour).
template <typename A> inline A acc_add(A a, A b) {
  if constexpr (std::is_integral_v<A> && !std::is_same_v<A, bool>)
    return static_cast<A>(static_cast<uint64_t>(a) + static_cast<uint64_t>(b));
  else
    return a + b;
}
template <typename A> inline A acc_mul(A a, A b) {
  if constexpr (std::is_integral_v<A> && !std::is_same_v<A, bool>)
    return static_cast<A>(static_cast<uint64_t>(a) * static_cast<uint64_t>(b));
  else
    return a * b;
}
template <typename A> inline A acc_abs(A a) {
  if constexpr (std::is_unsigned_v<A>) return a;
  else if constexpr (std::is_integral_v<A>) return a < 0 ? static_cast<A>(0 - static_cast<uint64_t>(a)) : a;
  else return std::abs(a);
}

// double -> integer T, saturating; NaN gives 0 (the value is undefined by the spec there).
template <typename T> inline T saturate_from_double(double v) {
  if (std::isnan(v)) return T(0);
  if (v <= static_cast<double>(std::numeric_limits<T>::lowest())) return std::numeric_limits<T>::lowest();
  // (double)max may round up to 2^bits, which is out of range: compare with >=.
  if (v >= static_cast<double>(std::numeric_limits<T>::max())) return std::numeric_limits<T>::max();
  return static_cast<T>(v);
}

// Stores an accumulator (or a double result) into the storage type T.
template <typename T, typename V> inline T store_as(V v) {
  if constexpr (std::is_same_v<T, Half> || std::is_same_v<T, BFloat16>)
    return T(static_cast<float>(v));
  else if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool> && std::is_floating_point_v<V>)
    return saturate_from_double<T>(static_cast<double>(v));
  else
    return static_cast<T>(v);  // integer narrowing is modular (C++20)
}

}  // namespace kiln::cpu
