// Element types of kiln tensors, and compile-time dispatch over them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>

#include "ir/float8.hpp"
#include "ir/half.hpp"

namespace kiln {

enum class DType : uint8_t {
  kUndefined = 0,
  kFloat32,
  kFloat16,
  kBFloat16,
  kFloat64,
  kInt8,
  kUInt8,
  kInt16,
  kUInt16,
  kInt32,
  kUInt32,
  kInt64,
  kUInt64,
  kBool,
  kString,  // known to the IR so errors can name it; no kernel supports it
  kFloat8E4M3FN,  // 1 byte (ir/float8.hpp); only the quantization ops and FP8 GEMMs take it
};

size_t dtype_size(DType t);                 // bytes per element; 0 for undefined/string
std::string_view dtype_name(DType t);       // "float32", "int64", ...
std::optional<DType> dtype_from_name(std::string_view name);
bool is_floating(DType t);                  // float32/16, bfloat16, float64
bool is_integer(DType t);                   // signed or unsigned integers (not bool)
bool is_signed_integer(DType t);
bool is_float8(DType t);                    // float8e4m3fn (not is_floating: most kernels lack it)

template <typename T> struct DTypeOf;
#define KILN_DTYPE_OF(T, D) \
  template <> struct DTypeOf<T> { static constexpr DType value = D; }
KILN_DTYPE_OF(float, DType::kFloat32);
KILN_DTYPE_OF(Half, DType::kFloat16);
KILN_DTYPE_OF(BFloat16, DType::kBFloat16);
KILN_DTYPE_OF(double, DType::kFloat64);
KILN_DTYPE_OF(int8_t, DType::kInt8);
KILN_DTYPE_OF(uint8_t, DType::kUInt8);
KILN_DTYPE_OF(int16_t, DType::kInt16);
KILN_DTYPE_OF(uint16_t, DType::kUInt16);
KILN_DTYPE_OF(int32_t, DType::kInt32);
KILN_DTYPE_OF(uint32_t, DType::kUInt32);
KILN_DTYPE_OF(int64_t, DType::kInt64);
KILN_DTYPE_OF(uint64_t, DType::kUInt64);
KILN_DTYPE_OF(bool, DType::kBool);
KILN_DTYPE_OF(Float8E4M3FN, DType::kFloat8E4M3FN);
#undef KILN_DTYPE_OF
template <typename T> inline constexpr DType dtype_of = DTypeOf<T>::value;

template <typename T> struct TypeTag { using type = T; };

// Calls fn(TypeTag<T>{}) for the C++ type T of `t`; returns false when `t` is undefined, string or
// float8 (few kernels take float8: they handle it explicitly).
//   dispatch_dtype(t, [&](auto tag) { using T = typename decltype(tag)::type; ... });
template <typename Fn>
bool dispatch_dtype(DType t, Fn&& fn) {
  switch (t) {
    case DType::kFloat32: fn(TypeTag<float>{}); return true;
    case DType::kFloat16: fn(TypeTag<Half>{}); return true;
    case DType::kBFloat16: fn(TypeTag<BFloat16>{}); return true;
    case DType::kFloat64: fn(TypeTag<double>{}); return true;
    case DType::kInt8: fn(TypeTag<int8_t>{}); return true;
    case DType::kUInt8: fn(TypeTag<uint8_t>{}); return true;
    case DType::kInt16: fn(TypeTag<int16_t>{}); return true;
    case DType::kUInt16: fn(TypeTag<uint16_t>{}); return true;
    case DType::kInt32: fn(TypeTag<int32_t>{}); return true;
    case DType::kUInt32: fn(TypeTag<uint32_t>{}); return true;
    case DType::kInt64: fn(TypeTag<int64_t>{}); return true;
    case DType::kUInt64: fn(TypeTag<uint64_t>{}); return true;
    case DType::kBool: fn(TypeTag<bool>{}); return true;
    default: return false;
  }
}

// The type arithmetic is done in for storage type T: float for Half/BFloat16, T otherwise.
template <typename T> struct ComputeTypeOf { using type = T; };
template <> struct ComputeTypeOf<Half> { using type = float; };
template <> struct ComputeTypeOf<BFloat16> { using type = float; };
template <typename T> using compute_t = typename ComputeTypeOf<T>::type;

}  // namespace kiln
