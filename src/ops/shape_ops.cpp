// Shape, Size, Constant, ConstantOfShape, Range, EyeLike: ops whose outputs come from shapes and
// attributes rather than input data. Shape and Size are folded when the dims are known.
#include <cmath>

#include "ops/tensor_infer_util.hpp"

namespace kiln {
namespace {

Status infer_shape_op(InferContext& ctx) {
  const Shape& s = ctx.input(0).shape;
  if (!s.has_rank()) {
    ctx.set_output(0, DType::kInt64, Shape({Dim()}));
    return Status::Ok();
  }
  const int64_t rank = static_cast<int64_t>(s.rank());
  auto clamp = [rank](int64_t v) { return std::clamp(v < 0 ? v + rank : v, int64_t{0}, rank); };
  const int64_t start = clamp(ctx.attrs().i("start", 0));
  const int64_t end = clamp(ctx.attrs().i("end", rank));
  const int64_t len = std::max<int64_t>(end - start, 0);
  ctx.set_output(0, DType::kInt64, Shape({Dim(len)}));
  std::vector<int64_t> values;
  for (int64_t i = start; i < end; ++i) {
    if (!s[static_cast<size_t>(i)].known()) return Status::Ok();
    values.push_back(s[static_cast<size_t>(i)].value);
  }
  set_int_output_value(ctx, 0, DType::kInt64, {len}, values);
  return Status::Ok();
}

Status infer_size(InferContext& ctx) {
  ctx.set_output(0, DType::kInt64, Shape::scalar());
  if (auto d = ctx.input(0).shape.to_dims()) set_int_output_value(ctx, 0, DType::kInt64, {}, {dims_numel(*d)});
  return Status::Ok();
}

Status infer_constant(InferContext& ctx) {
  KILN_ASSIGN_OR_RETURN(Tensor t, constant_attr_value(ctx.node()));
  ctx.set_output(0, t.dtype(), Shape::from_dims(t.dims()));
  ctx.set_output_value(0, std::move(t));
  return Status::Ok();
}

Status infer_constant_of_shape(InferContext& ctx) {
  const Tensor* value = ctx.attrs().tensor("value");
  if (ctx.attrs().has("value") && (!value || value->numel() != 1))
    return ctx.error("attribute 'value' must be a one-element tensor");
  const DType dtype = value ? value->dtype() : DType::kFloat32;
  KILN_ASSIGN_OR_RETURN(auto shape, int_list_input(ctx, 0, "shape"));
  if (!shape) {
    const Shape& s = ctx.input(0).shape;
    bool rank_known = s.has_rank() && s.rank() == 1 && s[0].known();
    ctx.set_output(0, dtype, rank_known ? Shape(std::vector<Dim>(static_cast<size_t>(s[0].value)))
                                        : Shape::unknown_rank());
    return Status::Ok();
  }
  for (int64_t d : *shape)
    if (d < 0) return ctx.error("shape {} has a negative dim", fmt::join(*shape, ","));
  ctx.set_output(0, dtype, Shape::from_dims(*shape));
  if (value && is_integer(dtype) && dims_numel(*shape) <= kMaxFoldElements) {
    auto v = value->to_int64_vector();
    if (v) set_int_output_value(ctx, 0, dtype, *shape, std::vector<int64_t>(static_cast<size_t>(dims_numel(*shape)), (*v)[0]));
  }
  return Status::Ok();
}

Status infer_range(InferContext& ctx) {
  const DType dtype = ctx.input(0).dtype;
  for (size_t i = 0; i < 3; ++i) {
    const TensorType& t = ctx.input(i);
    if (t.dtype != DType::kUndefined && t.dtype != dtype)
      return ctx.error("start, limit and delta must have one dtype, got {} and {}", dtype_name(dtype),
                       dtype_name(t.dtype));
    if (t.shape.is_static() && dims_numel(*t.shape.to_dims()) != 1)
      return ctx.error("input {} must be a scalar, got shape {}", i, t.shape.to_string());
  }
  const Tensor *start = ctx.value(0), *limit = ctx.value(1), *delta = ctx.value(2);
  if (!start || !limit || !delta) {
    ctx.set_output(0, dtype, Shape({Dim()}));
    return Status::Ok();
  }
  int64_t n = 0;
  if (is_integer(dtype)) {
    // Exact integer arithmetic: ceil((limit - start) / delta), at least 0.
    int64_t s = (*start->to_int64_vector())[0], l = (*limit->to_int64_vector())[0],
            d = (*delta->to_int64_vector())[0];
    if (d == 0) return ctx.error("delta must not be 0");
    int64_t span = 0;
    if (__builtin_sub_overflow(l, s, &span)) return ctx.error("limit - start overflows int64");
    n = span / d + ((span % d != 0 && ((span < 0) == (d < 0))) ? 1 : 0);
    n = std::max<int64_t>(n, 0);
    if (n <= kMaxFoldElements) {
      std::vector<int64_t> v(static_cast<size_t>(n));
      for (int64_t i = 0; i < n; ++i) v[static_cast<size_t>(i)] = s + i * d;
      set_int_output_value(ctx, 0, dtype, {n}, v);
    }
  } else {
    double d = delta->scalar_as_double();
    if (d == 0) return ctx.error("delta must not be 0");
    double len = std::ceil((limit->scalar_as_double() - start->scalar_as_double()) / d);
    if (!std::isfinite(len)) return ctx.error("start, limit and delta give a non-finite length");
    n = std::max<int64_t>(static_cast<int64_t>(len), 0);
  }
  ctx.set_output(0, dtype, Shape({Dim(n)}));
  return Status::Ok();
}

Status infer_eye_like(InferContext& ctx) {
  const TensorType& in = ctx.input(0);
  DType dtype = in.dtype;
  if (ctx.attrs().has("dtype")) {
    auto t = dtype_from_onnx_code(ctx.attrs().i("dtype"));
    if (!t || *t == DType::kString) return ctx.error("attribute dtype {} is not a supported type", ctx.attrs().i("dtype"));
    dtype = *t;
  }
  if (in.shape.has_rank() && in.shape.rank() != 2)
    return ctx.error("input must be 2-D, got shape {}", in.shape.to_string());
  ctx.set_output(0, dtype, in.shape.has_rank() ? in.shape : Shape(std::vector<Dim>(2)));
  return Status::Ok();
}

}  // namespace

Expected<Tensor> constant_attr_value(const Node& node) {
  const Attributes& a = node.attrs;
  int set = 0;
  for (const char* name : {"value", "value_float", "value_floats", "value_int", "value_ints",
                           "value_string", "value_strings", "sparse_value"})
    set += a.has(name) ? 1 : 0;
  if (set != 1) return invalid_model("{}: exactly one value attribute must be set, found {}", node.describe(), set);
  if (a.has("value_string") || a.has("value_strings") || a.has("sparse_value"))
    return unsupported("{}: string and sparse constants are not supported", node.describe());
  if (const Tensor* t = a.tensor("value")) return *t;
  if (a.has("value_float")) return Tensor::scalar<float>(a.f("value_float"));
  if (a.has("value_int")) return Tensor::scalar<int64_t>(a.i("value_int"));
  if (const auto* v = a.get_ptr<std::vector<float>>("value_floats"))
    return Tensor::from_vector<float>({static_cast<int64_t>(v->size())}, *v);
  if (const auto* v = a.get_ptr<std::vector<int64_t>>("value_ints"))
    return Tensor::from_vector<int64_t>({static_cast<int64_t>(v->size())}, *v);
  return invalid_model("{}: the value attribute has the wrong type", node.describe());
}

}  // namespace kiln

KILN_REGISTER_OP({.name = "Shape", .min_inputs = 1, .max_inputs = 1, .infer = kiln::infer_shape_op});
KILN_REGISTER_OP({.name = "Size", .min_inputs = 1, .max_inputs = 1, .infer = kiln::infer_size});
KILN_REGISTER_OP({.name = "Constant", .min_inputs = 0, .max_inputs = 0, .infer = kiln::infer_constant});
KILN_REGISTER_OP({.name = "ConstantOfShape", .min_inputs = 1, .max_inputs = 1, .infer = kiln::infer_constant_of_shape});
KILN_REGISTER_OP({.name = "Range", .min_inputs = 3, .max_inputs = 3, .infer = kiln::infer_range});
KILN_REGISTER_OP({.name = "EyeLike", .min_inputs = 1, .max_inputs = 1, .infer = kiln::infer_eye_like});
