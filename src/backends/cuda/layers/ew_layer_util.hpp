// Small helpers shared by the elementwise, softmax, normalization and reduction layers' host code.
#pragma once

#include <optional>

#include "backends/cuda/cuda_layer.hpp"

namespace kiln::cuda {

// The value's concrete dims (constants: the tensor's), or nothing when not static.
inline std::optional<Dims> static_dims(const Value* v) {
  if (!v) return std::nullopt;
  if (v->constant) return v->constant->dims();
  return v->type.shape.to_dims();
}

inline DType value_dtype(const Value* v) { return v ? v->type.dtype : DType::kUndefined; }

inline bool is_float_dtype(DType t) {
  return t == DType::kFloat32 || t == DType::kFloat16 || t == DType::kBFloat16;
}

// A layer factory with one default kernel.
template <typename Supports, typename Create>
CudaLayerFactory simple_factory(Supports supports, Create create) {
  return CudaLayerFactory{.supports = std::move(supports), .tactics = nullptr, .create = std::move(create)};
}

}  // namespace kiln::cuda
