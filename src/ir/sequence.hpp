// Runtime values that are not plain tensors: ONNX sequences of tensors and optionals.
//
// A graph value's kind (TensorType::kind) says which it is; at run time the CPU executor stores a
// RuntimeValue: a Tensor, a TensorSequence, or EmptyOptional (an optional holding nothing). An
// optional that holds an element is stored as that element.
#pragma once

#include <variant>
#include <vector>

#include "ir/tensor.hpp"

namespace kiln {

struct TensorSequence {
  DType dtype = DType::kUndefined;  // the element type, known even when the sequence is empty
  std::vector<Tensor> tensors;
};

struct EmptyOptional {};

using RuntimeValue = std::variant<Tensor, TensorSequence, EmptyOptional>;

inline const Tensor* as_tensor(const RuntimeValue& v) { return std::get_if<Tensor>(&v); }
inline const TensorSequence* as_sequence(const RuntimeValue& v) { return std::get_if<TensorSequence>(&v); }
inline bool is_empty_optional(const RuntimeValue& v) { return std::holds_alternative<EmptyOptional>(v); }

}  // namespace kiln
