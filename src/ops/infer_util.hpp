// Helpers shared by the ops' shape inference functions.
#pragma once

#include <optional>
#include <vector>

#include "ops/op_registry.hpp"

namespace kiln {

// Numpy-style multidirectional broadcast of symbolic shapes; error when dims are incompatible.
Expected<Shape> broadcast_shapes(const std::vector<Shape>& shapes);
// Concrete broadcast (both static).
Expected<Dims> broadcast_dims(const Dims& a, const Dims& b);

// Normalizes a possibly negative axis into [0, rank); error names the node when out of range.
Expected<int64_t> normalize_axis(const InferContext& ctx, int64_t axis, int64_t rank);

// Output 0 has the type and shape of input 0 (unary elementwise ops).
Status infer_same_as_input0(InferContext& ctx);
// Output 0 is the broadcast of all inputs with the dtype of input 0 (binary/variadic elementwise).
Status infer_broadcast(InferContext& ctx);
// Same, but the output dtype is bool (comparisons and logic).
Status infer_broadcast_bool(InferContext& ctx);

// MatMul's output shape (numpy matmul: 1-D operands promoted, batch dims broadcast); unknown rank
// when either rank is unknown. Errors name the node. Used by MatMul, MatMulInteger, QLinearMatMul.
Expected<Shape> matmul_shape(const InferContext& ctx, const Shape& a, const Shape& b);

// The values of an integer input when known (a constant or at execution time).
std::optional<std::vector<int64_t>> int_values(const InferContext& ctx, size_t input);

}  // namespace kiln
