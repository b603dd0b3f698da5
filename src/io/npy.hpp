// NumPy .npy files: load and save host tensors.
//
//   KILN_ASSIGN_OR_RETURN(Tensor t, load_npy("input.npy"));
//   KILN_RETURN_IF_ERROR(save_npy("output_0.npy", t));
//
// Reads format versions 1.0, 2.0 and 3.0, C order, little- or big-endian (converted), dtypes
// f2 f4 f8 i1 i2 i4 i8 u1 u2 u4 u8 b1, any rank including 0-d scalars. Fortran-order arrays,
// structured/object/string dtypes and bfloat16 (numpy has no such dtype) are clear errors.
// Saving writes version 1.0 (2.0 when the header needs it) and replaces the file atomically.
#pragma once

#include <string>
#include <string_view>

#include "ir/tensor.hpp"

namespace kiln {

Expected<Tensor> load_npy(const std::string& path);
// Same from bytes in memory; `name` is the file name used in errors.
Expected<Tensor> parse_npy(std::string_view bytes, const std::string& name);

Status save_npy(const std::string& path, const Tensor& t);
// The file's bytes (what save_npy writes).
Expected<std::string> encode_npy(const Tensor& t);

// True when `bytes` start with the .npy magic string.
bool looks_like_npy(std::string_view bytes);

}  // namespace kiln
