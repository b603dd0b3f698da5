#include "ops/tensor_infer_util.hpp"

#include <algorithm>

namespace kiln {

void set_int_output_value(InferContext& ctx, size_t out, DType dtype, const Dims& dims,
                          const std::vector<int64_t>& values) {
  if (static_cast<int64_t>(values.size()) > kMaxFoldElements || !is_integer(dtype)) return;
  Tensor t(dtype, dims);
  dispatch_dtype(dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    T* p = t.data<T>();
    for (size_t i = 0; i < values.size(); ++i) p[i] = static_cast<T>(values[i]);
  });
  ctx.set_output_value(out, std::move(t));
}

bool foldable_int(const InferContext& ctx, size_t input) {
  const Tensor* t = ctx.value(input);
  return t && is_integer(t->dtype()) && t->numel() <= kMaxFoldElements;
}

Dim dim_product(const std::vector<Dim>& dims, size_t begin, size_t end) {
  int64_t known = 1;
  const Dim* symbolic = nullptr;
  int unknown = 0;
  for (size_t i = begin; i < end; ++i) {
    if (dims[i].known()) {
      known *= dims[i].value;
    } else {
      ++unknown;
      symbolic = &dims[i];
    }
  }
  if (unknown == 0) return Dim(known);
  if (known == 0) return Dim(0);
  if (unknown == 1 && known == 1) return *symbolic;
  return Dim();
}

Expected<std::optional<std::vector<int64_t>>> int_list_input(const InferContext& ctx, size_t input,
                                                             const char* what) {
  const TensorType& t = ctx.input(input);
  if (t.dtype != DType::kUndefined && !is_integer(t.dtype))
    return ctx.error("input {} ({}) must be an integer tensor, got {}", input, what, dtype_name(t.dtype));
  if (t.shape.has_rank() && t.shape.rank() > 1)
    return ctx.error("input {} ({}) must be 1-D, got shape {}", input, what, t.shape.to_string());
  auto v = int_values(ctx, input);
  return v;
}

Expected<std::vector<int64_t>> normalize_axes(const InferContext& ctx, std::vector<int64_t> axes,
                                              int64_t rank) {
  const std::vector<int64_t> given = axes;
  for (int64_t& a : axes) {
    if (a < -rank || a >= rank) return ctx.error("axis {} is out of range for rank {}", a, rank);
    if (a < 0) a += rank;
  }
  std::vector<int64_t> sorted = axes;
  std::sort(sorted.begin(), sorted.end());
  if (std::adjacent_find(sorted.begin(), sorted.end()) != sorted.end())
    return ctx.error("axes {} repeat an axis", fmt::join(given, ","));
  return axes;
}

std::optional<DType> dtype_from_onnx_code(int64_t code) {
  switch (code) {
    case 1: return DType::kFloat32;
    case 2: return DType::kUInt8;
    case 3: return DType::kInt8;
    case 4: return DType::kUInt16;
    case 5: return DType::kInt16;
    case 6: return DType::kInt32;
    case 7: return DType::kInt64;
    case 8: return DType::kString;
    case 9: return DType::kBool;
    case 10: return DType::kFloat16;
    case 11: return DType::kFloat64;
    case 12: return DType::kUInt32;
    case 13: return DType::kUInt64;
    case 16: return DType::kBFloat16;
    default: return std::nullopt;
  }
}

}  // namespace kiln
