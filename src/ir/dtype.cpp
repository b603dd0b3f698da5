#include "ir/dtype.hpp"

#include <array>

namespace kiln {

namespace {
struct DTypeInfo {
  DType type;
  std::string_view name;
  size_t size;
};
constexpr std::array<DTypeInfo, 16> kInfo = {{
    {DType::kUndefined, "undefined", 0}, {DType::kFloat32, "float32", 4},
    {DType::kFloat16, "float16", 2},     {DType::kBFloat16, "bfloat16", 2},
    {DType::kFloat64, "float64", 8},     {DType::kInt8, "int8", 1},
    {DType::kUInt8, "uint8", 1},         {DType::kInt16, "int16", 2},
    {DType::kUInt16, "uint16", 2},       {DType::kInt32, "int32", 4},
    {DType::kUInt32, "uint32", 4},       {DType::kInt64, "int64", 8},
    {DType::kUInt64, "uint64", 8},       {DType::kBool, "bool", 1},
    {DType::kString, "string", 0},       {DType::kFloat8E4M3FN, "float8e4m3fn", 1},
}};
}  // namespace

size_t dtype_size(DType t) { return kInfo[static_cast<size_t>(t)].size; }
std::string_view dtype_name(DType t) { return kInfo[static_cast<size_t>(t)].name; }

std::optional<DType> dtype_from_name(std::string_view name) {
  for (const auto& i : kInfo)
    if (i.name == name) return i.type;
  return std::nullopt;
}

bool is_floating(DType t) {
  return t == DType::kFloat32 || t == DType::kFloat16 || t == DType::kBFloat16 || t == DType::kFloat64;
}
bool is_float8(DType t) { return t == DType::kFloat8E4M3FN; }
bool is_signed_integer(DType t) {
  return t == DType::kInt8 || t == DType::kInt16 || t == DType::kInt32 || t == DType::kInt64;
}
bool is_integer(DType t) {
  return is_signed_integer(t) || t == DType::kUInt8 || t == DType::kUInt16 || t == DType::kUInt32 ||
         t == DType::kUInt64;
}

}  // namespace kiln
