// FLOAT8E4M3FN (ONNX, OCP "E4M3"): 1 sign, 4 exponent (bias 7) and 3 mantissa bits; no
// infinities, NaN is S.1111.111, the largest finite value is 448. Arithmetic is done in float.
#pragma once

#include <cstdint>

#include "ir/half.hpp"

namespace kiln {

inline constexpr float kFloat8E4M3Max = 448.f;

// float -> e4m3fn, rounding to nearest even. Out of range (|x| rounding above 448, or infinite):
// +-448 with `saturate` (ONNX QuantizeLinear/Cast saturate=1), else NaN. NaN stays NaN.
inline uint8_t float_to_e4m3fn_bits(float f, bool saturate = true) {
  const uint32_t x = float_bits(f);
  const uint8_t sign = static_cast<uint8_t>((x >> 24) & 0x80u);
  const uint32_t abs = x & 0x7fffffffu;
  if (abs > 0x7f800000u) return sign | 0x7f;  // NaN
  const uint8_t overflow = saturate ? 0x7e : 0x7f;
  if (abs == 0x7f800000u) return sign | overflow;
  if (abs >= 0x3c800000u) {  // >= 2^-6: a normal e4m3 number (or overflow)
    // Round the 23-bit mantissa to 3 bits (ties to even); a carry moves into the exponent.
    const uint32_t r = (abs + 0x7ffffu + ((abs >> 20) & 1u)) >> 20;
    const uint32_t code = r - (120u << 3);  // rebias the exponent: 127 -> 7
    return sign | static_cast<uint8_t>(code > 0x7eu ? overflow : code);
  }
  // Subnormal e4m3 (multiples of 2^-9) or zero: round |x| * 2^9 to an integer, ties to even.
  const int e = static_cast<int>(abs >> 23) - 127;
  if (e < -11) return sign;  // |x| < 2^-10 (half the smallest subnormal), float subnormals too
  const uint32_t sig = (abs & 0x7fffffu) | 0x800000u;
  const int s = 14 - e;  // |x| * 2^9 = sig * 2^-s, s in 21..25
  uint32_t q = sig >> s;
  const uint32_t rem = sig & ((1u << s) - 1u), half = 1u << (s - 1);
  if (rem > half || (rem == half && (q & 1u))) ++q;
  return sign | static_cast<uint8_t>(q);  // q == 8 is the smallest normal, 2^-6
}

inline float e4m3fn_bits_to_float(uint8_t b) {
  const uint32_t sign = static_cast<uint32_t>(b & 0x80u) << 24;
  const uint32_t exp = (b >> 3) & 0xfu, mant = b & 0x7u;
  if ((b & 0x7fu) == 0x7fu) return bits_float(sign | 0x7fc00000u);
  if (exp == 0) {
    const float v = static_cast<float>(mant) * (1.0f / 512.0f);  // mant * 2^-9
    return sign ? -v : v;
  }
  return bits_float(sign | ((exp + 120u) << 23) | (mant << 20));
}

struct Float8E4M3FN {
  uint8_t bits = 0;
  Float8E4M3FN() = default;
  explicit Float8E4M3FN(float f, bool saturate = true) : bits(float_to_e4m3fn_bits(f, saturate)) {}
  static Float8E4M3FN from_bits(uint8_t b) {
    Float8E4M3FN v;
    v.bits = b;
    return v;
  }
  operator float() const { return e4m3fn_bits_to_float(bits); }  // NOLINT(implicit)
};

}  // namespace kiln
