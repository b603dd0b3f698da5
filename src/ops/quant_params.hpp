// Shape checks of the scale and zero-point inputs of the quantized ops (inference side).
#pragma once

#include "ops/op_registry.hpp"

namespace kiln {

// QuantizeLinear / DequantizeLinear: `param` (a scale or zero point named `what`) must be per
// tensor (one element: a scalar or a 1-D tensor of size 1), per axis (1-D, x.shape[axis] values),
// or, when block_size > 0, blocked (x's rank, x's dims except ceil(x.shape[axis] / block_size)
// along axis). Unknown dims pass. Errors name the node.
Status check_qdq_param(const InferContext& ctx, const char* what, const Shape& x, const Shape& param,
                       int64_t axis, int64_t block_size);

// A scale and its zero point must have the same shape (a scalar and a 1-element 1-D tensor count
// as the same).
Status check_same_param_shape(const InferContext& ctx, const char* zp_name, const Shape& zp, const char* scale_name,
                              const Shape& scale);

// MatMulInteger / QLinearMatMul: a parameter of operand A (`rows`: per tensor, per row of A = a
// 1-D tensor of M values or A's batch dims with [M, 1]) or of operand B (per tensor, per column =
// N values or [1, N] after B's batch dims). Errors name the node.
Status check_matmul_param(const InferContext& ctx, const char* what, const Shape& operand, const Shape& param,
                          bool rows);

// Per tensor (one element) or, when `channels` is known, one value per channel (1-D).
Status check_per_channel_param(const InferContext& ctx, const char* what, const Shape& param, Dim channels);

// A parameter that must hold exactly one element (a scalar or a 1-D tensor of size 1).
Status check_scalar_param(const InferContext& ctx, const char* what, const Shape& param);

// The dtype of a zero point must be that of its data input.
Status check_same_dtype(const InferContext& ctx, const char* what, DType got, const char* of, DType want);

}  // namespace kiln
