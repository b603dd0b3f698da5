#include "onnx/proto_tensor.hpp"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>

#include "util/error.hpp"

namespace kiln::onnx_import {

namespace fs = std::filesystem;
using onnx::TensorProto;

std::string onnx_dtype_name(int32_t t) {
  // Numbers 17.. are newer than the proto kiln builds against (float8 in IR 9, int4 in IR 10).
  static const char* const kNames[] = {
      "UNDEFINED", "FLOAT",     "UINT8",        "INT8",          "UINT16",     "INT16",
      "INT32",     "INT64",     "STRING",       "BOOL",          "FLOAT16",    "DOUBLE",
      "UINT32",    "UINT64",    "COMPLEX64",    "COMPLEX128",    "BFLOAT16",   "FLOAT8E4M3FN",
      "FLOAT8E4M3FNUZ", "FLOAT8E5M2", "FLOAT8E5M2FNUZ", "UINT4", "INT4", "FLOAT4E2M1"};
  if (t >= 0 && t < static_cast<int32_t>(std::size(kNames))) return kNames[t];
  return "type " + std::to_string(t);
}

// FLOAT8E4M3FN's TensorProto code: the libonnx proto kiln builds against (1.12) predates it, and
// data_type / elem_type are plain int32 fields, so the number is read as such.
constexpr int32_t kOnnxFloat8E4M3FN = 17;

Expected<DType> dtype_from_onnx(int32_t t, const std::string& what) {
  if (t == kOnnxFloat8E4M3FN) return DType::kFloat8E4M3FN;
  switch (t) {
    case TensorProto::FLOAT: return DType::kFloat32;
    case TensorProto::UINT8: return DType::kUInt8;
    case TensorProto::INT8: return DType::kInt8;
    case TensorProto::UINT16: return DType::kUInt16;
    case TensorProto::INT16: return DType::kInt16;
    case TensorProto::INT32: return DType::kInt32;
    case TensorProto::INT64: return DType::kInt64;
    case TensorProto::STRING: return DType::kString;
    case TensorProto::BOOL: return DType::kBool;
    case TensorProto::FLOAT16: return DType::kFloat16;
    case TensorProto::DOUBLE: return DType::kFloat64;
    case TensorProto::UINT32: return DType::kUInt32;
    case TensorProto::UINT64: return DType::kUInt64;
    case TensorProto::BFLOAT16: return DType::kBFloat16;
    default: break;
  }
  return unsupported("{}: element type {} is not supported by kiln", what, onnx_dtype_name(t));
}

namespace {

// numel of `dims`, refusing negative sizes and counts that overflow.
Expected<int64_t> checked_numel(const Dims& dims, const std::string& what) {
  int64_t n = 1;
  for (int64_t d : dims) {
    if (d < 0) return invalid_model("{}: negative dimension in shape {}", what, dims_to_string(dims));
    if (d != 0 && n > std::numeric_limits<int64_t>::max() / 16 / d)
      return invalid_model("{}: shape {} is too large", what, dims_to_string(dims));
    n *= d;
  }
  return n;
}

// Resolves an external-data location inside `base_dir`; paths leaving the folder are refused.
Expected<fs::path> resolve_external(const std::string& base_dir, const std::string& location,
                                    const std::string& what) {
  if (location.empty()) return invalid_model("{}: external data has no location", what);
  fs::path rel(location);
  if (rel.is_absolute())
    return invalid_model("{}: external data location '{}' is an absolute path", what, location);
  std::error_code ec;
  fs::path base = fs::weakly_canonical(fs::path(base_dir.empty() ? "." : base_dir), ec);
  if (ec) return io_error("{}: cannot resolve model folder '{}': {}", what, base_dir, ec.message());
  fs::path full = fs::weakly_canonical(base / rel, ec);
  if (ec) return io_error("{}: cannot resolve external data '{}': {}", what, location, ec.message());
  // `full` must lie under `base` (symlinks resolved): compare path components.
  auto b = base.begin(), f = full.begin();
  for (; b != base.end(); ++b, ++f) {
    if (b->empty()) continue;  // a trailing separator
    if (f == full.end() || *b != *f)
      return invalid_model("{}: external data location '{}' escapes the model folder", what, location);
  }
  return full;
}

Expected<int64_t> parse_int_field(const std::string& key, const std::string& value, const std::string& what) {
  size_t used = 0;
  long long v = 0;
  try {
    v = std::stoll(value, &used);
  } catch (...) {
    used = 0;
  }
  if (used != value.size() || value.empty() || v < 0)
    return invalid_model("{}: external data {} '{}' is not a non-negative integer", what, key, value);
  return static_cast<int64_t>(v);
}

// Reads the tensor's bytes from its external file; sizes are checked before allocating.
Expected<Tensor> read_external(const TensorProto& proto, const TensorSource& src, DType dtype, const Dims& dims) {
  if (src.base_dir.empty())
    return invalid_argument("{}: tensor data is stored in an external file, and no model folder is known",
                            src.what);
  std::string location;
  int64_t offset = 0, length = -1;
  for (const auto& kv : proto.external_data()) {
    if (kv.key() == "location") {
      location = kv.value();
    } else if (kv.key() == "offset") {
      KILN_ASSIGN_OR_RETURN(offset, parse_int_field("offset", kv.value(), src.what));
    } else if (kv.key() == "length") {
      KILN_ASSIGN_OR_RETURN(length, parse_int_field("length", kv.value(), src.what));
    }
  }
  KILN_ASSIGN_OR_RETURN(fs::path path, resolve_external(src.base_dir, location, src.what));
  std::error_code ec;
  auto size = fs::file_size(path, ec);
  if (ec) return io_error("{}: cannot open external data file '{}': {}", src.what, path.string(), ec.message());
  const auto need = static_cast<int64_t>(dims_numel(dims) * static_cast<int64_t>(dtype_size(dtype)));
  const std::string desc = fmt::format("{}[{}]", dtype_name(dtype), dims_to_string(dims));
  if (offset > static_cast<int64_t>(size))
    return invalid_model("{}: external data offset {} is past the end of '{}' ({} bytes)", src.what, offset,
                         path.string(), size);
  if (length < 0) length = static_cast<int64_t>(size) - offset;
  if (length != need)
    return invalid_model("{}: external data in '{}' has {} bytes, the tensor {} needs {}", src.what,
                         path.string(), length, desc, need);
  if (offset + length > static_cast<int64_t>(size))
    return invalid_model("{}: external data '{}' is truncated: {} bytes at offset {} but the file has {}",
                         src.what, path.string(), length, offset, size);
  Tensor out(dtype, dims);
  std::ifstream in(path, std::ios::binary);
  in.seekg(offset);
  if (need > 0) in.read(static_cast<char*>(out.raw_data()), need);
  if (!in) return io_error("{}: reading external data '{}' failed", src.what, path.string());
  return out;
}

// Copies a typed repeated field into `out`, converting each element with `conv`.
template <typename T, typename Field, typename Conv>
Status copy_field(const Field& field, Tensor& out, const std::string& what, const char* field_name,
                  Conv conv) {
  if (static_cast<int64_t>(field.size()) != out.numel())
    return invalid_model("{}: {} has {} elements, the tensor {} needs {}", what, field_name, field.size(),
                         out.describe(), out.numel());
  T* p = out.data<T>();
  for (int i = 0; i < field.size(); ++i) p[i] = conv(field.Get(i));
  return Status::Ok();
}

Status read_typed(const TensorProto& proto, Tensor& out, const std::string& what) {
  auto same = [](auto v) { return v; };
  switch (proto.data_type()) {
    case TensorProto::FLOAT:
      return copy_field<float>(proto.float_data(), out, what, "float_data", same);
    case TensorProto::DOUBLE:
      return copy_field<double>(proto.double_data(), out, what, "double_data", same);
    case TensorProto::INT64:
      return copy_field<int64_t>(proto.int64_data(), out, what, "int64_data", same);
    case TensorProto::UINT32:
      return copy_field<uint32_t>(proto.uint64_data(), out, what, "uint64_data",
                                  [](uint64_t v) { return static_cast<uint32_t>(v); });
    case TensorProto::UINT64:
      return copy_field<uint64_t>(proto.uint64_data(), out, what, "uint64_data", same);
    case TensorProto::INT32:
      return copy_field<int32_t>(proto.int32_data(), out, what, "int32_data", same);
    case TensorProto::INT16:
      return copy_field<int16_t>(proto.int32_data(), out, what, "int32_data",
                                 [](int32_t v) { return static_cast<int16_t>(v); });
    case TensorProto::UINT16:
      return copy_field<uint16_t>(proto.int32_data(), out, what, "int32_data",
                                  [](int32_t v) { return static_cast<uint16_t>(v); });
    case TensorProto::INT8:
      return copy_field<int8_t>(proto.int32_data(), out, what, "int32_data",
                                [](int32_t v) { return static_cast<int8_t>(v); });
    case TensorProto::UINT8:
      return copy_field<uint8_t>(proto.int32_data(), out, what, "int32_data",
                                 [](int32_t v) { return static_cast<uint8_t>(v); });
    case TensorProto::BOOL:
      return copy_field<bool>(proto.int32_data(), out, what, "int32_data", [](int32_t v) { return v != 0; });
    case TensorProto::FLOAT16:  // the 16 bits of each value are stored in an int32
      return copy_field<Half>(proto.int32_data(), out, what, "int32_data",
                              [](int32_t v) { return Half::from_bits(static_cast<uint16_t>(v)); });
    case TensorProto::BFLOAT16:
      return copy_field<BFloat16>(proto.int32_data(), out, what, "int32_data",
                                  [](int32_t v) { return BFloat16::from_bits(static_cast<uint16_t>(v)); });
    case kOnnxFloat8E4M3FN:  // one code per int32, in its low 8 bits
      return copy_field<Float8E4M3FN>(proto.int32_data(), out, what, "int32_data", [](int32_t v) {
        return Float8E4M3FN::from_bits(static_cast<uint8_t>(v));
      });
    default:
      return internal_error("{}: unhandled element type {}", what, onnx_dtype_name(proto.data_type()));
  }
}

}  // namespace

Expected<Tensor> tensor_from_proto(const TensorProto& proto, const TensorSource& src) {
  const std::string what = src.what;
  if (!proto.has_data_type() || proto.data_type() == TensorProto::UNDEFINED)
    return invalid_model("{}: tensor has no element type", what);
  KILN_ASSIGN_OR_RETURN(DType dtype, dtype_from_onnx(proto.data_type(), what));
  if (proto.has_segment()) return unsupported("{}: segmented tensors are not supported", what);
  Dims dims(proto.dims().begin(), proto.dims().end());
  KILN_ASSIGN_OR_RETURN(int64_t numel, checked_numel(dims, what));
  if (dtype == DType::kString) {
    // Strings live only in string_data (raw_data and external data cannot hold them).
    if (proto.data_location() == TensorProto::EXTERNAL || proto.has_raw_data())
      return invalid_model("{}: a string tensor must store its values in string_data", what);
    if (proto.string_data_size() != numel)
      return invalid_model("{}: string tensor of shape {} has {} values, needs {}", what, dims_to_string(dims),
                           proto.string_data_size(), numel);
    Tensor out(dtype, dims);
    std::copy(proto.string_data().begin(), proto.string_data().end(), out.data<std::string>());
    return out;
  }
  const size_t nbytes = static_cast<size_t>(numel) * dtype_size(dtype);

  if (proto.data_location() == TensorProto::EXTERNAL) {
    // Check the size claim before allocating: a corrupt shape must not allocate terabytes.
    for (const auto& kv : proto.external_data())
      if (kv.key() == "length" && kv.value() != std::to_string(nbytes))
        return invalid_model("{}: external data length {} does not match {} ({} bytes)", what, kv.value(),
                             dims_to_string(dims), nbytes);
    KILN_ASSIGN_OR_RETURN(Tensor out, read_external(proto, src, dtype, dims));
    if (dtype == DType::kBool)  // any non-zero byte is true; kiln bools are 0/1
      for (int64_t i = 0; i < numel; ++i) out.data<uint8_t>()[i] = out.data<uint8_t>()[i] != 0;
    return out;
  }
  if (proto.has_raw_data()) {
    const std::string& raw = proto.raw_data();
    if (raw.size() != nbytes)
      return invalid_model("{}: raw_data has {} bytes, a {} tensor of shape {} needs {}", what, raw.size(),
                           dtype_name(dtype), dims_to_string(dims), nbytes);
    // raw_data is little-endian, as is every host kiln supports.
    Tensor out(dtype, dims);
    if (nbytes) std::memcpy(out.raw_data(), raw.data(), nbytes);
    if (dtype == DType::kBool)
      for (int64_t i = 0; i < numel; ++i) out.data<uint8_t>()[i] = out.data<uint8_t>()[i] != 0;
    return out;
  }
  // Typed fields: check the count before allocating.
  int64_t have = 0;
  switch (proto.data_type()) {
    case TensorProto::FLOAT: have = proto.float_data_size(); break;
    case TensorProto::DOUBLE: have = proto.double_data_size(); break;
    case TensorProto::INT64: have = proto.int64_data_size(); break;
    case TensorProto::UINT32:
    case TensorProto::UINT64: have = proto.uint64_data_size(); break;
    default: have = proto.int32_data_size(); break;
  }
  if (have != numel)
    return invalid_model("{}: tensor of shape {} has {} values, needs {}", what, dims_to_string(dims), have,
                         numel);
  Tensor out(dtype, dims);
  KILN_RETURN_IF_ERROR(read_typed(proto, out, what));
  return out;
}

Expected<TensorType> type_from_proto(const onnx::TypeProto& type, const std::string& what) {
  switch (type.value_case()) {
    case onnx::TypeProto::VALUE_NOT_SET: return TensorType{};
    case onnx::TypeProto::kTensorType: break;
    case onnx::TypeProto::kSequenceType: {
      // Sequences of tensors only (no sequences of maps or of sequences).
      const auto& elem = type.sequence_type().elem_type();
      if (elem.value_case() != onnx::TypeProto::kTensorType && elem.value_case() != onnx::TypeProto::VALUE_NOT_SET)
        return unsupported("{} is a sequence of non-tensors; kiln supports sequences of tensors only", what);
      KILN_ASSIGN_OR_RETURN(TensorType t, type_from_proto(elem, what));
      t.kind = ValueKind::kSequence;
      return t;
    }
    case onnx::TypeProto::kMapType: return unsupported("{} is a map; kiln supports tensor values only", what);
    case onnx::TypeProto::kOptionalType: {
      const auto& elem = type.optional_type().elem_type();
      auto ec = elem.value_case();
      if (ec != onnx::TypeProto::kTensorType && ec != onnx::TypeProto::kSequenceType)
        return unsupported("{} is an optional of neither a tensor nor a sequence", what);
      KILN_ASSIGN_OR_RETURN(TensorType t, type_from_proto(elem, what));
      t.kind = t.kind == ValueKind::kSequence ? ValueKind::kOptionalSequence : ValueKind::kOptionalTensor;
      return t;
    }
    case onnx::TypeProto::kSparseTensorType:
      return unsupported("{} is a sparse tensor; kiln supports dense tensors only", what);
    default: return unsupported("{} has a type kiln does not know", what);
  }
  const auto& tt = type.tensor_type();
  TensorType out;
  if (tt.has_elem_type() && tt.elem_type() != TensorProto::UNDEFINED) {
    KILN_ASSIGN_OR_RETURN(out.dtype, dtype_from_onnx(tt.elem_type(), what));
  }
  if (tt.has_shape()) {
    std::vector<Dim> dims;
    for (const auto& d : tt.shape().dim()) {
      if (d.has_dim_value()) {
        // paddle2onnx and other exporters write -1 for a dynamic dim: read it as unknown.
        if (d.dim_value() == -1) dims.emplace_back();
        else if (d.dim_value() < 0)
          return invalid_model("{} has a negative dimension {}", what, d.dim_value());
        else dims.emplace_back(d.dim_value());
      } else if (d.has_dim_param() && !d.dim_param().empty()) {
        dims.push_back(Dim::symbolic(d.dim_param()));
      } else {
        dims.emplace_back();
      }
    }
    out.shape = Shape(std::move(dims));
  }
  return out;
}

}  // namespace kiln::onnx_import
