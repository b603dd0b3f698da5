// ONNX TensorProto.DataType codes held in attributes (Cast 'to', RandomNormal 'dtype',
// QuantizeLinear 'output_dtype', ...): kiln stores them as the model gives them.
#pragma once

#include "ops/op_registry.hpp"

namespace kiln {

// The kiln dtype for code `code` of attribute `attr`. A code kiln has no dtype for (string,
// complex, float8, int4, float4) is Unsupported; anything else that is not an ONNX code is an
// error. Both name the node.
Expected<DType> dtype_from_onnx_code(const InferContext& ctx, const char* attr, int64_t code);

}  // namespace kiln
