// TensorProto / TypeProto conversion into kiln tensors and types (internal to the importer).
#pragma once

#include <onnx/onnx_pb.h>

#include <string>

#include "ir/graph.hpp"

namespace kiln::onnx_import {

// The ONNX TensorProto.DataType name ("FLOAT16", "COMPLEX64", ...) for messages.
std::string onnx_dtype_name(int32_t elem_type);
// kiln's dtype for an ONNX element type; STRING maps to DType::kString. Unsupported types
// (complex, float8, int4, ...) are an error naming `what`.
Expected<DType> dtype_from_onnx(int32_t elem_type, const std::string& what);

// Where tensor data lives: the folder external data is resolved against.
struct TensorSource {
  std::string base_dir;  // "" = external data is refused
  std::string what;      // "file.onnx: initializer 'w'" for messages
};

// Converts a TensorProto (raw_data, typed fields, or external data; string_data for STRING).
Expected<Tensor> tensor_from_proto(const onnx::TensorProto& proto, const TensorSource& src);

// The kiln type of a value's TypeProto: a tensor type with symbolic dims, or for a sequence or
// optional of tensors its element type with that ValueKind. Maps and other nestings
// are Unsupported; an absent type gives an unknown TensorType.
Expected<TensorType> type_from_proto(const onnx::TypeProto& type, const std::string& what);

}  // namespace kiln::onnx_import
