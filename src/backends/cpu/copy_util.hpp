// Element-moving helpers for the CPU kernels of ops that only move data (Transpose, Slice, Expand,
// Concat, Gather ...): they work on any dtype by element size.
#pragma once

#include <cstdint>
#include <cstring>
#include <vector>

#include "ir/tensor.hpp"

namespace kiln {

// Calls fn(TypeTag<U>{}) with an unsigned integer type U of `size` bytes (1, 2, 4 or 8); returns
// false for other sizes (string, undefined).
template <typename Fn>
bool dispatch_elem_size(size_t size, Fn&& fn) {
  switch (size) {
    case 1: fn(TypeTag<uint8_t>{}); return true;
    case 2: fn(TypeTag<uint16_t>{}); return true;
    case 4: fn(TypeTag<uint32_t>{}); return true;
    case 8: fn(TypeTag<uint64_t>{}); return true;
    default: return false;
  }
}

// Row-major strides (in elements) of dims.
std::vector<int64_t> contiguous_strides(const Dims& dims);

// Copies a strided view into contiguous `dst` in row-major order of `dims`:
// dst[i0..in] = src[sum_k ik * src_strides[k]] (strides in elements; 0 repeats, negative reverses).
// `elem_size` is 1, 2, 4 or 8.
void strided_copy(void* dst, const void* src, const Dims& dims, const std::vector<int64_t>& src_strides,
                  size_t elem_size);

// Advances a row-major multi-index over `dims`; returns false after the last index.
inline bool next_index(std::vector<int64_t>& idx, const Dims& dims) {
  for (size_t k = dims.size(); k-- > 0;) {
    if (++idx[k] < dims[k]) return true;
    idx[k] = 0;
  }
  return false;
}

}  // namespace kiln
