// Helpers shared by the tensor/shape ops' inference (Reshape, Slice, Gather, Pad, Resize, ...).
#pragma once

#include <optional>
#include <vector>

#include "ops/infer_util.hpp"

namespace kiln {

// Shape arithmetic is folded into constants only for integer tensors up to this many elements.
inline constexpr int64_t kMaxFoldElements = 1024;

// True when input i is wired (InferContext::has_input is false for a wired input of unknown type).
inline bool input_wired(const InferContext& ctx, size_t i) { return ctx.node().has_input(i); }

// The output of shape arithmetic: folded (see InferContext::set_output_value) when small.
void set_int_output_value(InferContext& ctx, size_t out, DType dtype, const Dims& dims,
                          const std::vector<int64_t>& values);

// True when the input's value is known, is an integer tensor and small enough to fold.
bool foldable_int(const InferContext& ctx, size_t input);

// Product of symbolic dims: known when all are known, the symbol when it is the only non-1 dim.
Dim dim_product(const std::vector<Dim>& dims, size_t begin, size_t end);

// The values of a 1-D (or scalar) integer input, when known; errors naming the node and `what`
// ("shape", "axes", ...) when the input has another dtype or a rank above 1.
Expected<std::optional<std::vector<int64_t>>> int_list_input(const InferContext& ctx, size_t input,
                                                             const char* what);

// Normalizes a list of axes for a given rank; errors on out-of-range or repeated axes.
Expected<std::vector<int64_t>> normalize_axes(const InferContext& ctx, std::vector<int64_t> axes,
                                              int64_t rank);

// The value of a Constant node, from whichever value* attribute is set (exactly one must be).
Expected<Tensor> constant_attr_value(const Node& node);

// The DType of an ONNX TensorProto.DataType code (attributes such as EyeLike's dtype).
std::optional<DType> dtype_from_onnx_code(int64_t code);

}  // namespace kiln
