#include "ops/onnx_dtype.hpp"

#include <iterator>

namespace kiln {
namespace {

struct OnnxDType {
  const char* name;
  DType dtype;  // kUndefined: no kiln equivalent
};
// Indexed by code.
constexpr OnnxDType kOnnxDTypes[] = {
    {"UNDEFINED", DType::kUndefined}, {"FLOAT", DType::kFloat32},   {"UINT8", DType::kUInt8},
    {"INT8", DType::kInt8},           {"UINT16", DType::kUInt16},   {"INT16", DType::kInt16},
    {"INT32", DType::kInt32},         {"INT64", DType::kInt64},     {"STRING", DType::kUndefined},
    {"BOOL", DType::kBool},           {"FLOAT16", DType::kFloat16}, {"DOUBLE", DType::kFloat64},
    {"UINT32", DType::kUInt32},       {"UINT64", DType::kUInt64},   {"COMPLEX64", DType::kUndefined},
    {"COMPLEX128", DType::kUndefined}, {"BFLOAT16", DType::kBFloat16},
    {"FLOAT8E4M3FN", DType::kUndefined}, {"FLOAT8E4M3FNUZ", DType::kUndefined},
    {"FLOAT8E5M2", DType::kUndefined}, {"FLOAT8E5M2FNUZ", DType::kUndefined},
    {"UINT4", DType::kUndefined},     {"INT4", DType::kUndefined},  {"FLOAT4E2M1", DType::kUndefined},
};

}  // namespace

Expected<DType> dtype_from_onnx_code(const InferContext& ctx, const char* attr, int64_t code) {
  constexpr int64_t n = static_cast<int64_t>(std::size(kOnnxDTypes));
  if (code <= 0 || code >= n) return ctx.error("attribute {}={} is not an ONNX data type", attr, code);
  const OnnxDType& t = kOnnxDTypes[code];
  if (t.dtype == DType::kUndefined) return ctx.unsupported("attribute {}={} ({}) is not supported", attr, code, t.name);
  return t.dtype;
}

}  // namespace kiln
