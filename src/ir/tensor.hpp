// Tensor: a dense, contiguous, row-major host tensor with shared storage.
// Copies share the buffer (like a shared_ptr); use clone() for a deep copy.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "ir/dtype.hpp"
#include "ir/shape.hpp"
#include "kiln/status.hpp"

namespace kiln {

class Tensor {
 public:
  Tensor() = default;
  // Allocates an uninitialised tensor (64-byte aligned).
  Tensor(DType dtype, Dims dims);

  static Tensor zeros(DType dtype, Dims dims);
  static Tensor from_bytes(DType dtype, Dims dims, const void* data);  // copies numel*size bytes
  template <typename T>
  static Tensor from_vector(Dims dims, const std::vector<T>& v) {
    Tensor t(dtype_of<T>, std::move(dims));
    T* p = t.data<T>();
    for (size_t i = 0; i < v.size() && i < static_cast<size_t>(t.numel()); ++i) p[i] = v[i];
    return t;
  }
  template <typename T>
  static Tensor scalar(T v) {
    Tensor t(dtype_of<T>, {});
    *t.data<T>() = v;
    return t;
  }
  // Wraps memory owned elsewhere (e.g. an mmapped file); `keepalive` holds the owner.
  static Tensor wrap(DType dtype, Dims dims, void* data, std::shared_ptr<void> keepalive);

  bool defined() const { return dtype_ != DType::kUndefined; }
  DType dtype() const { return dtype_; }
  const Dims& dims() const { return dims_; }
  int64_t dim(int i) const { return dims_[static_cast<size_t>(i)]; }
  int rank() const { return static_cast<int>(dims_.size()); }
  int64_t numel() const { return dims_numel(dims_); }
  size_t nbytes() const { return static_cast<size_t>(numel()) * dtype_size(dtype_); }

  void* raw_data() { return data_; }
  const void* raw_data() const { return data_; }
  template <typename T> T* data() { return static_cast<T*>(data_); }
  template <typename T> const T* data() const { return static_cast<const T*>(data_); }

  // Same storage, new dims (numel must match: checked by the caller).
  Tensor reshaped(Dims dims) const;
  Tensor clone() const;
  // Element conversion (float <-> int <-> bool ...), following C++ static_cast semantics.
  Tensor cast(DType to) const;

  // Integer tensor (any integer dtype, any rank) as int64 values; error for other dtypes.
  Expected<std::vector<int64_t>> to_int64_vector() const;
  // Numeric tensor as doubles (for comparisons and summaries).
  std::vector<double> to_double_vector() const;
  double scalar_as_double() const;

  std::string describe() const;  // "float32[1x3x224x224]"

 private:
  DType dtype_ = DType::kUndefined;
  Dims dims_;
  std::shared_ptr<void> storage_;
  void* data_ = nullptr;
};

}  // namespace kiln
