// Cast (to the ONNX dtype in attribute `to`) and CastLike (to the dtype of input 1).
#include "ops/infer_util.hpp"

namespace kiln {
namespace {

// ONNX TensorProto.DataType codes -> kiln dtypes. Codes kiln has no dtype for (string, complex,
// float8, int4, float4) are known but unsupported.
struct OnnxDType {
  const char* name;
  DType dtype;  // kUndefined: no kiln equivalent
};
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

Status infer_cast(InferContext& ctx) {
  const auto* to = ctx.attrs().get_ptr<int64_t>("to");
  if (!to) return ctx.error("attribute 'to' (an integer ONNX data type) is required");
  constexpr int64_t n = sizeof(kOnnxDTypes) / sizeof(kOnnxDTypes[0]);
  if (*to <= 0 || *to >= n) return ctx.error("attribute to={} is not an ONNX data type", *to);
  const OnnxDType& target = kOnnxDTypes[*to];
  if (target.dtype == DType::kUndefined) return ctx.unsupported("casting to {} is not supported", target.name);
  ctx.set_output(0, target.dtype, ctx.input(0).shape);
  return Status::Ok();
}

Status infer_cast_like(InferContext& ctx) {
  ctx.set_output(0, ctx.input(1).dtype, ctx.input(0).shape);
  return Status::Ok();
}

}  // namespace
}  // namespace kiln

KILN_REGISTER_OP({.name = "Cast", .min_inputs = 1, .max_inputs = 1, .infer = kiln::infer_cast})
KILN_REGISTER_OP({.name = "CastLike", .min_inputs = 2, .max_inputs = 2, .infer = kiln::infer_cast_like})
