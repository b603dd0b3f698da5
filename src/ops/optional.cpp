// Optional values: Optional, OptionalHasElement, OptionalGetElement.
//
// An optional's TensorType describes its element (kind kOptionalTensor or kOptionalSequence).
// Optional without an input takes its type from the 'type' attribute, which the importer keeps as
// ints [ValueKind of the element, ONNX elem type code].
#include "ops/infer_util.hpp"
#include "ops/onnx_dtype.hpp"

namespace kiln {
namespace {

ValueKind optional_of(ValueKind k) {
  return k == ValueKind::kSequence || k == ValueKind::kOptionalSequence ? ValueKind::kOptionalSequence
                                                                        : ValueKind::kOptionalTensor;
}

ValueKind element_of(ValueKind k) {
  return k == ValueKind::kSequence || k == ValueKind::kOptionalSequence ? ValueKind::kSequence : ValueKind::kTensor;
}

Status infer_optional(InferContext& ctx) {
  if (!ctx.has_input(0)) {
    const auto type = ctx.attrs().ints("type");
    if (type.size() != 2) return ctx.error("Optional without an input needs a 'type' attribute");
    const auto kind = static_cast<ValueKind>(type[0]);
    if (kind != ValueKind::kTensor && kind != ValueKind::kSequence)
      return ctx.error("attribute 'type' must be a tensor or sequence type");
    KILN_ASSIGN_OR_RETURN(DType dt, dtype_from_onnx_code(ctx, "type", type[1]));
    ctx.set_output_type(0, TensorType{dt, Shape(), optional_of(kind)});
    return Status::Ok();
  }
  TensorType t = ctx.input(0);
  if (t.kind == ValueKind::kOptionalTensor || t.kind == ValueKind::kOptionalSequence)
    return ctx.error("input 0 is already an optional ({})", t.to_string());
  t.kind = optional_of(t.kind);
  ctx.set_output_type(0, std::move(t));
  return Status::Ok();
}

Status infer_optional_has_element(InferContext& ctx) {
  ctx.set_output(0, DType::kBool, Shape::scalar());
  return Status::Ok();
}

// Opset 18 also accepts a plain tensor or sequence, returned as is.
Status infer_optional_get_element(InferContext& ctx) {
  TensorType t = ctx.input(0);
  t.kind = element_of(t.kind);
  ctx.set_output_type(0, std::move(t));
  return Status::Ok();
}

}  // namespace
}  // namespace kiln

KILN_REGISTER_OP({.name = "Optional", .min_inputs = 0, .max_inputs = 1, .infer = kiln::infer_optional,
                  .non_tensor_values = true});
KILN_REGISTER_OP({.name = "OptionalHasElement", .min_inputs = 0, .max_inputs = 1,
                  .infer = kiln::infer_optional_has_element, .non_tensor_values = true});
KILN_REGISTER_OP({.name = "OptionalGetElement", .min_inputs = 1, .max_inputs = 1,
                  .infer = kiln::infer_optional_get_element, .non_tensor_values = true});
